//! Statistics over blocks and the UTXO set: `getblockstats`, `estimatesmartfee` and
//! `gettxoutsetinfo`. A transaction's fee is its inputs (from the block's undo data) less its
//! outputs; fee rates are in sats per virtual byte (a Quarry transaction's size).

use quarry_chain::encode::encode;
use quarry_chain::hash::sha256d;
use quarry_chain::{Amount, Block, BlockHash, ChainReader, Txid};
use serde_json::{json, Map, Value};

use super::{invalid_parameter, not_found};
use crate::node::Node;
use crate::rpc::error::{ErrorCode, RpcError};
use crate::rpc::params::Params;
use crate::rpc::render::{self, coins};

/// One non-coinbase transaction of a block: fee (sats) and size (bytes).
#[derive(Clone, Copy, Debug)]
struct Paid {
    fee: u64,
    size: u64,
}

impl Paid {
    /// Sats per virtual byte.
    fn rate(self) -> u64 {
        self.fee / self.size.max(1)
    }
}

/// The best-chain block at a height, or the block of a hash (`getblockstats`'s first argument).
fn block_at(node: &Node, params: &Params) -> Result<(BlockHash, Block), RpcError> {
    let store = node.reader().store();
    let hash = match params.required::<Value>(0)? {
        Value::Number(height) => {
            let height = height
                .as_u64()
                .and_then(|height| u32::try_from(height).ok())
                .filter(|height| *height <= node.tip().height)
                .ok_or_else(|| invalid_parameter("Target block height after current tip"))?;
            store
                .hash_at_height(height)?
                .ok_or_else(|| not_found("Block not found"))?
        }
        _ => params.block_hash(0)?,
    };
    let block = store
        .block(&hash)?
        .ok_or_else(|| not_found("Block not found"))?;
    Ok((hash, block))
}

/// The fee and size of each non-coinbase transaction of `block`.
fn paid(node: &Node, hash: &BlockHash, block: &Block) -> Result<Vec<Paid>, RpcError> {
    let undo = node.reader().store().undo(hash)?.ok_or_else(|| {
        RpcError::new(
            ErrorCode::MiscError,
            "Can't read undo data from disk: the block is not on a chain this node connected",
        )
    })?;
    let mut spent = undo.spent.iter();
    block.transactions[1..]
        .iter()
        .map(|tx| {
            let inputs: u64 = (0..tx.inputs.len())
                .map(|_| spent.next().map_or(0, |coin| coin.output.value.to_sat()))
                .sum();
            let outputs: u64 = tx.outputs.iter().map(|out| out.value.to_sat()).sum();
            Ok(Paid {
                fee: inputs.saturating_sub(outputs),
                size: tx.encoded_size() as u64,
            })
        })
        .collect()
}

/// The value at `share` (0 to 1) of sorted `values`, Core's way (no interpolation).
fn at_share(sorted: &[u64], share: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() - 1) as f64 * share).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Fee-rate percentiles (10, 25, 50, 75, 90th) weighted by size, as Core computes them.
fn weighted_percentiles(paid: &[Paid]) -> [u64; 5] {
    let mut by_rate: Vec<Paid> = paid.to_vec();
    by_rate.sort_by_key(|p| p.rate());
    let total: u64 = by_rate.iter().map(|p| p.size).sum();
    let marks = [0.10, 0.25, 0.50, 0.75, 0.90].map(|share| (total as f64 * share) as u64);
    let mut result = [0u64; 5];
    let mut cumulative = 0;
    let mut next = 0;
    for p in &by_rate {
        cumulative += p.size;
        while next < 5 && cumulative >= marks[next] {
            result[next] = p.rate();
            next += 1;
        }
    }
    let highest = by_rate.last().map_or(0, |p| p.rate());
    for slot in result.iter_mut().skip(next) {
        *slot = highest;
    }
    result
}

pub(super) fn block_stats(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let (hash, block) = block_at(node, params)?;
    let wanted: Option<Vec<String>> = params.optional(1)?;
    let store = node.reader().store();
    let entry = store
        .index_entry(&hash)?
        .ok_or_else(|| not_found("Block not found"))?;
    let paid = paid(node, &hash, &block)?;
    let mut fees: Vec<u64> = paid.iter().map(|p| p.fee).collect();
    let mut rates: Vec<u64> = paid.iter().map(|p| p.rate()).collect();
    let mut sizes: Vec<u64> = paid.iter().map(|p| p.size).collect();
    fees.sort_unstable();
    rates.sort_unstable();
    sizes.sort_unstable();
    let count = paid.len() as u64;
    let total_fee: u64 = fees.iter().sum();
    let total_size: u64 = sizes.iter().sum();
    let ins: usize = block.transactions[1..]
        .iter()
        .map(|tx| tx.inputs.len())
        .sum();
    let outs: usize = block.transactions.iter().map(|tx| tx.outputs.len()).sum();
    let total_out: u64 = block.transactions[1..]
        .iter()
        .flat_map(|tx| &tx.outputs)
        .map(|out| out.value.to_sat())
        .sum();
    let average = |sum: u64| sum.checked_div(count).unwrap_or(0);
    let all = json!({
        "avgfee": average(total_fee),
        "avgfeerate": total_fee.checked_div(total_size).unwrap_or(0),
        "avgtxsize": average(total_size),
        "blockhash": hash.to_string(),
        "feerate_percentiles": weighted_percentiles(&paid),
        "height": entry.height,
        "ins": ins,
        "maxfee": fees.last().copied().unwrap_or(0),
        "maxfeerate": rates.last().copied().unwrap_or(0),
        "maxtxsize": sizes.last().copied().unwrap_or(0),
        "medianfee": at_share(&fees, 0.5),
        "mediantime": render::median_time(store, &entry)?,
        "mediantxsize": at_share(&sizes, 0.5),
        "minfee": fees.first().copied().unwrap_or(0),
        "minfeerate": rates.first().copied().unwrap_or(0),
        "mintxsize": sizes.first().copied().unwrap_or(0),
        "outs": outs,
        "subsidy": node.params().block_subsidy(entry.height).to_sat(),
        // No segregated witness: nothing is counted separately.
        "swtotal_size": 0,
        "swtotal_weight": 0,
        "swtxs": 0,
        "time": block.header.time,
        "total_out": total_out,
        "total_size": total_size,
        "total_weight": total_size * 4,
        "totalfee": total_fee,
        "txs": block.transactions.len(),
        "utxo_increase": outs as i64 - ins as i64,
        "utxo_increase_actual": outs as i64 - ins as i64,
    });
    let Some(wanted) = wanted else {
        return Ok(all);
    };
    let mut chosen = Map::new();
    for name in wanted {
        let value = all
            .get(&name)
            .ok_or_else(|| invalid_parameter(format!("Invalid selected statistic '{name}'")))?;
        chosen.insert(name, value.clone());
    }
    Ok(Value::Object(chosen))
}

/// Blocks `estimatesmartfee` looks back over at least.
const FEE_WINDOW_MIN: u32 = 6;

pub(super) fn estimate_smart_fee(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let target: u32 = params.required(0)?;
    if !(1..=1008).contains(&target) {
        return Err(invalid_parameter(
            "Invalid conf_target, must be between 1 and 1008",
        ));
    }
    let store = node.reader().store();
    let tip = node.tip().height;
    let window = (2 * target).max(FEE_WINDOW_MIN);
    let mut rates: Vec<u64> = Vec::new();
    for height in tip.saturating_sub(window - 1).max(1)..=tip {
        let Some(hash) = store.hash_at_height(height)? else {
            continue;
        };
        let Some(block) = store.block(&hash)? else {
            continue;
        };
        rates.extend(paid(node, &hash, &block)?.iter().map(|p| p.rate()));
    }
    if rates.is_empty() {
        return Ok(json!({
            "errors": ["Insufficient data or no feerate found"],
            "blocks": 0,
        }));
    }
    rates.sort_unstable();
    // Shorter targets ask for a higher place among recent fee rates: the median at the
    // window's length, up to the 90th percentile for the next block.
    let share = 0.5 + 0.4 / f64::from(target);
    let sats_per_vbyte = at_share(&rates, share.min(0.9));
    let min_relay = node.with_mempool(|pool| pool.config().min_relay_fee_rate.to_sat_per_kb());
    let per_kvb = (sats_per_vbyte * 1_000).max(min_relay);
    Ok(json!({
        "feerate": coins(Amount::from_sat(per_kvb)),
        "blocks": target,
    }))
}

pub(super) fn tx_out_set_info(node: &Node) -> Result<Value, RpcError> {
    let store = node.reader().store();
    let tip = node.tip();
    let coins_by_outpoint = store.utxo_set()?;
    let mut transactions = std::collections::BTreeSet::<Txid>::new();
    let mut total = 0u64;
    let mut serialized = Vec::new();
    for (outpoint, coin) in &coins_by_outpoint {
        transactions.insert(outpoint.txid);
        total = total.saturating_add(coin.output.value.to_sat());
        serialized.extend(encode(outpoint));
        serialized.extend(encode(coin));
    }
    // Core's bogosize: 50 bytes an output besides its script; a Quarry output's script
    // equivalent is 34 bytes.
    let bogosize = coins_by_outpoint.len() as u64 * (50 + 34);
    Ok(json!({
        "height": tip.height,
        "bestblock": tip.hash.to_string(),
        "txouts": coins_by_outpoint.len(),
        "bogosize": bogosize,
        // SHA-256d over every (outpoint, coin) in outpoint order, in Quarry's encoding.
        "hash_serialized_3": hex::encode(sha256d(&serialized)),
        "total_amount": coins(Amount::from_sat(total)),
        "transactions": transactions.len(),
        "disk_size": super::blockchain::dir_size(&node.data_dir().join("chain")),
    }))
}

/// `getchaintxstats`: transaction counts and rate over a window of blocks ending at a block
/// of the best chain. Counts come from reading the blocks (the index keeps none): the whole
/// chain up to that block for `txcount`.
pub(super) fn chain_tx_stats(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let store = node.reader().store();
    let final_hash = match params.optional::<String>(1)? {
        Some(_) => params.block_hash(1)?,
        None => node.tip().hash,
    };
    let entry = store
        .index_entry(&final_hash)?
        .ok_or_else(|| not_found("Block not found"))?;
    if store.hash_at_height(entry.height)? != Some(final_hash) {
        return Err(invalid_parameter("Block is not in main chain"));
    }
    let month = (30 * 24 * 3600 / node.params().target_spacing().max(1)).max(1);
    let window: u32 = match params.optional::<u32>(0)? {
        Some(count) if count >= entry.height.max(1) => {
            return Err(invalid_parameter(
                "Invalid block count: should be between 0 and the block's height - 1",
            ))
        }
        Some(count) => count,
        None => month.min(entry.height.saturating_sub(1)),
    };
    let mut txcount = 0u64;
    let mut window_txs = 0u64;
    let mut start_time = 0u32;
    for height in 0..=entry.height {
        let hash = store
            .hash_at_height(height)?
            .ok_or_else(|| not_found("Block not found"))?;
        let block = store
            .block(&hash)?
            .ok_or_else(|| not_found("Block not found"))?;
        let count = block.transactions.len() as u64;
        txcount += count;
        if height + window == entry.height {
            start_time = block.header.time;
        }
        if height + window > entry.height {
            window_txs += count;
        }
    }
    let mut answer = json!({
        "time": entry.header.time,
        "txcount": txcount,
        "window_final_block_hash": final_hash.to_string(),
        "window_final_block_height": entry.height,
        "window_block_count": window,
    });
    if window > 0 {
        let interval = i64::from(entry.header.time) - i64::from(start_time);
        answer["window_tx_count"] = json!(window_txs);
        answer["window_interval"] = json!(interval);
        if interval > 0 {
            answer["txrate"] = json!(window_txs as f64 / interval as f64);
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rate_percentiles_are_weighted_by_size() {
        let paid = [
            Paid {
                fee: 8_000,
                size: 800,
            },
            Paid {
                fee: 100,
                size: 100,
            },
            Paid {
                fee: 500,
                size: 100,
            },
        ];
        // 1,000 bytes: the 10th percentile is reached in the cheapest 100, the rest in the
        // 800 bytes at 10 sats/vB.
        assert_eq!(weighted_percentiles(&paid), [1, 10, 10, 10, 10]);
        assert_eq!(weighted_percentiles(&[]), [0; 5]);
        assert_eq!(at_share(&[1, 2, 3, 4, 5], 0.5), 3);
        assert_eq!(at_share(&[], 0.5), 0);
    }
}
