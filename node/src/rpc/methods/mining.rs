//! Mining and generating methods: templates, submitted blocks, the built-in miner, hash rates.

use quarry_chain::encode::encode;
use quarry_chain::{Acceptance, Block, ChainError, ChainReader};
use quarry_rpc::types;
use serde_json::{json, Value};

use super::{decode_hex, invalid_parameter, node_error, not_found, reply, warnings, RpcContext};
use crate::node::Node;
use crate::rpc::error::{ErrorCode, RpcError};
use crate::rpc::params::{parse_address, Params};
use crate::rpc::render::{self};

pub(super) fn get_generate(node: &Node) -> Result<Value, RpcError> {
    Ok(json!(node.mining_payout().is_some()))
}

pub(super) fn block_template(node: &Node) -> Result<Value, RpcError> {
    let template = node.block_template();
    let target = template.bits.to_target().ok_or_else(|| {
        RpcError::new(
            ErrorCode::InternalError,
            "the next block's bits do not decode",
        )
    })?;
    // Core's `depends`: the 1-based positions, in this list, of the transactions it spends.
    let position: std::collections::HashMap<quarry_chain::Txid, usize> = (1..)
        .zip(&template.transactions)
        .map(|(index, tx)| (tx.txid(), index))
        .collect();
    let transactions: Vec<Value> = node.with_mempool(|pool| {
        template
            .transactions
            .iter()
            .map(|tx| {
                let txid = tx.txid();
                let mut depends: Vec<usize> = tx
                    .inputs
                    .iter()
                    .filter_map(|input| position.get(&input.prevout.txid).copied())
                    .collect();
                depends.sort_unstable();
                depends.dedup();
                let fee = pool.get(&txid).map_or(0, |entry| entry.fee.to_sat());
                json!({
                    "data": hex::encode(encode(tx.as_ref())),
                    "txid": txid.to_string(),
                    "hash": txid.to_string(),
                    "fee": fee,
                    "size": tx.encoded_size(),
                    // No script opcodes: every Quarry spend is one signature check.
                    "sigops": tx.inputs.len(),
                    "weight": tx.encoded_size() * 4,
                    "depends": depends,
                })
            })
            .collect()
    });
    Ok(json!({
        "version": quarry_chain::BlockHeader::CURRENT_VERSION,
        "rules": [],
        // Quarry has no soft-fork deployments and no coinbase flags.
        "capabilities": ["proposal"],
        "vbavailable": {},
        "vbrequired": 0,
        "coinbaseaux": {},
        "previousblockhash": template.prev_blockhash.to_string(),
        "transactions": transactions,
        "coinbasevalue": template.coinbase_value.to_sat(),
        "target": hex::encode(target.to_u256().to_be_bytes::<32>()),
        "mintime": node.tip().next.min_time,
        "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff",
        "sizelimit": quarry_chain::encode::MAX_BLOCK_BYTES,
        "weightlimit": quarry_chain::encode::MAX_BLOCK_BYTES * 4,
        // No separate signature-check limit: a block's size bounds them.
        "sigoplimit": quarry_chain::encode::MAX_BLOCK_BYTES,
        "curtime": template.time,
        "bits": format!("{:08x}", template.bits.to_consensus()),
        "height": template.height,
    }))
}

/// Hashes per second over the `blocks` blocks ending at `height` (-1: the tip), from the
/// work they add and the time they span, as Bitcoin Core estimates it.
pub fn network_hash_rate(node: &Node, blocks: i64, height: i64) -> Result<f64, RpcError> {
    let store = node.reader().store();
    let tip = node.tip().height;
    let end = u32::try_from(height).map_or(tip, |height| height.min(tip));
    let span = u32::try_from(blocks)
        .ok()
        .filter(|blocks| *blocks > 0)
        .unwrap_or(120);
    let start = end.saturating_sub(span);
    if start == end {
        return Ok(0.0);
    }
    let entry_at = |height: u32| -> Result<quarry_chain::IndexEntry, RpcError> {
        let hash = store
            .hash_at_height(height)?
            .ok_or_else(|| RpcError::new(ErrorCode::DatabaseError, "height index gap"))?;
        store
            .index_entry(&hash)?
            .ok_or_else(|| not_found("Block not found"))
    };
    let (first, last) = (entry_at(start)?, entry_at(end)?);
    let seconds = i64::from(last.header.time) - i64::from(first.header.time);
    if seconds <= 0 {
        return Ok(0.0);
    }
    let work = last.chain_work.to_f64() - first.chain_work.to_f64();
    Ok(work / seconds as f64)
}

pub(super) fn mining_info(node: &Node) -> Result<Value, RpcError> {
    let tip = node.tip();
    let miner = node.miner();
    let min_fee = node.with_mempool(|pool| pool.config().min_relay_fee_rate.to_sat_per_kb());
    reply(types::MiningInfo {
        blocks: tip.height,
        bits: render::bits_hex(tip.header.bits),
        difficulty: render::difficulty(node.params(), tip.header.bits),
        target: render::target_hex(tip.header.bits),
        blockmintxfee: min_fee as f64 / quarry_chain::Amount::SATS_PER_COIN as f64,
        next: types::NextBlockInfo {
            height: tip.next.height,
            bits: render::bits_hex(tip.next.bits),
            difficulty: render::difficulty(node.params(), tip.next.bits),
            target: render::target_hex(tip.next.bits),
        },
        networkhashps: network_hash_rate(node, 120, -1)?,
        pooledtx: node.with_mempool(|pool| pool.len()),
        chain: node.params().name().to_owned(),
        generate: node.mining_payout().is_some(),
        genproclimit: miner.threads(),
        hashespersec: miner.hash_rate().current,
        warnings: warnings(node),
    })
}

pub(super) fn submit_block(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let block: Block = decode_hex(&params.hex(0)?, "Block")?;
    let hash = block.block_hash();
    Ok(match node.chain().submit_block(block) {
        Ok(Acceptance::Accepted) if node.tip().hash == hash => Value::Null,
        // Stored on a branch that is not (yet) the best one.
        Ok(Acceptance::Accepted) => json!("inconclusive"),
        Ok(Acceptance::AlreadyKnown) => json!("duplicate"),
        Ok(Acceptance::Orphan | Acceptance::Ignored) => json!("inconclusive"),
        Err(ChainError::InvalidBlock { source, .. }) => json!(source.to_string()),
        Err(error) => return Err(error.into()),
    })
}

pub(super) async fn generate_to_address(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let count: i64 = params.required(0)?;
    let count = usize::try_from(count)
        .ok()
        .filter(|count| *count <= 10_000)
        .ok_or_else(|| invalid_parameter("nblocks must be between 0 and 10000"))?;
    let text: String = params.required(1)?;
    let address = parse_address(&text, node.params())?;
    let max_tries: Option<i64> = params.optional(2)?;
    let max_tries = match max_tries {
        // Bitcoin Core's default.
        None => 1_000_000,
        Some(tries) => u64::try_from(tries)
            .ok()
            .filter(|tries| *tries > 0)
            .ok_or_else(|| invalid_parameter("maxtries must be positive"))?,
    };
    let hashes = node
        .generate_within(count, address.key(), max_tries)
        .await
        .map_err(node_error)?;
    Ok(hashes.iter().map(|hash| json!(hash.to_string())).collect())
}

pub(super) fn set_generate(context: &RpcContext, params: &Params) -> Result<Value, RpcError> {
    let node = &context.node;
    if !params.required::<bool>(0)? {
        node.stop_mining();
        return Ok(Value::Null);
    }
    let threads: Option<i64> = params.optional(1)?;
    let threads = match threads {
        None => None,
        // Bitcoin Core: -1 means one thread per CPU; 0 stops.
        Some(-1) => Some(0),
        Some(0) => {
            node.stop_mining();
            return Ok(Value::Null);
        }
        Some(threads) => Some(
            usize::try_from(threads)
                .ok()
                .filter(|threads| *threads <= 1_024)
                .ok_or_else(|| invalid_parameter("genproclimit must be -1 or 0 to 1024"))?,
        ),
    };
    let address = match params.optional::<String>(2)? {
        Some(text) => parse_address(&text, node.params())?,
        None => context.miner_address.ok_or_else(|| {
            invalid_parameter(
                "no address to mine to: pass one as the third parameter or start quarryd with --miner-address",
            )
        })?,
    };
    node.start_mining(address.key(), threads)
        .map_err(node_error)?;
    Ok(Value::Null)
}
