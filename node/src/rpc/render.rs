//! Blocks, headers and transactions as JSON, with Bitcoin Core's field names: hashes in
//! reversed hex, amounts in coins, `scriptPubKey.address` for outputs.

use quarry_chain::{
    Address, Amount, Block, BlockHash, ChainParams, ChainReader, IndexEntry, StoreError,
    Transaction,
};
use quarry_rpc::types::{DecodedInput, DecodedOutput, DecodedTransaction, ScriptPubKey};
use serde_json::{json, Map, Value};

/// An amount in coins, as a JSON number.
pub fn coins(amount: Amount) -> Value {
    json!(amount.to_sat() as f64 / Amount::SATS_PER_COIN as f64)
}

/// The difficulty of `bits` relative to the network's easiest target.
pub fn difficulty(params: &ChainParams, bits: quarry_chain::CompactTarget) -> f64 {
    bits.to_target()
        .map_or(0.0, |target| target.difficulty(params.pow_limit()))
}

/// A transaction as `decoderawtransaction` shows it.
pub fn transaction(tx: &Transaction, params: &ChainParams) -> DecodedTransaction {
    let txid = tx.txid();
    let size = tx.encoded_size();
    let vin = tx
        .inputs
        .iter()
        .map(|input| {
            if tx.is_coinbase() {
                DecodedInput::Coinbase {
                    coinbase: hex::encode(&input.witness),
                }
            } else {
                DecodedInput::Spend {
                    txid: input.prevout.txid,
                    vout: input.prevout.vout,
                    txinwitness: vec![hex::encode(&input.witness)],
                }
            }
        })
        .collect();
    let vout = (0..)
        .zip(&tx.outputs)
        .map(|(n, output)| DecodedOutput {
            value: output.value,
            n,
            script_pubkey: ScriptPubKey {
                address: Address::new(output.pubkey, params).to_string(),
                hex: output.pubkey.to_string(),
                kind: "witness_v1_taproot".into(),
            },
        })
        .collect();
    DecodedTransaction {
        txid,
        hash: txid,
        version: tx.version,
        size,
        vsize: size,
        weight: size * 4,
        locktime: 0,
        vin,
        vout,
    }
}

/// Where a block stands relative to the best chain.
#[derive(Clone, Copy, Debug)]
pub struct BestChain {
    /// Height of the best tip.
    pub tip_height: u32,
}

impl BestChain {
    /// Confirmations of the block `hash` at `height`: -1 if it is not on the best chain.
    pub fn confirmations<R: ChainReader + ?Sized>(
        self,
        store: &R,
        hash: &BlockHash,
        height: u32,
    ) -> Result<i64, StoreError> {
        Ok(if store.hash_at_height(height)? == Some(*hash) {
            i64::from(self.tip_height) - i64::from(height) + 1
        } else {
            -1
        })
    }
}

/// The median time of the 11 blocks ending at `entry`.
pub fn median_time<R: ChainReader + ?Sized>(
    store: &R,
    entry: &IndexEntry,
) -> Result<u32, StoreError> {
    let mut times = vec![entry.header.time];
    let mut current = *entry;
    while times.len() < 11 && current.height > 0 {
        match store.index_entry(&current.header.prev_blockhash)? {
            Some(parent) => {
                times.push(parent.header.time);
                current = parent;
            }
            None => break,
        }
    }
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

/// A block header as `getblockheader` shows it; `tx_count` when the body is known.
pub fn header<R: ChainReader + ?Sized>(
    store: &R,
    params: &ChainParams,
    best: BestChain,
    hash: &BlockHash,
    entry: &IndexEntry,
    tx_count: Option<usize>,
) -> Result<Map<String, Value>, StoreError> {
    let confirmations = best.confirmations(store, hash, entry.height)?;
    let mut object = Map::new();
    let mut put = |key: &str, value: Value| {
        object.insert(key.to_owned(), value);
    };
    let header = &entry.header;
    put("hash", json!(hash.to_string()));
    put("confirmations", json!(confirmations));
    put("height", json!(entry.height));
    put("version", json!(header.version));
    put("versionHex", json!(format!("{:08x}", header.version)));
    put("merkleroot", json!(header.merkle_root.to_string()));
    put("time", json!(header.time));
    put("mediantime", json!(median_time(store, entry)?));
    put("nonce", json!(header.nonce));
    put("bits", json!(format!("{:08x}", header.bits.to_consensus())));
    put("difficulty", json!(difficulty(params, header.bits)));
    put(
        "chainwork",
        json!(hex::encode(entry.chain_work.to_be_bytes())),
    );
    if let Some(count) = tx_count {
        put("nTx", json!(count));
    }
    if entry.height > 0 {
        put(
            "previousblockhash",
            json!(header.prev_blockhash.to_string()),
        );
    }
    if confirmations > 0 {
        if let Some(next) = store.hash_at_height(entry.height + 1)? {
            put("nextblockhash", json!(next.to_string()));
        }
    }
    Ok(object)
}

/// A block as `getblock` shows it at verbosity 1 (txids) or 2 (decoded transactions).
pub fn block<R: ChainReader + ?Sized>(
    store: &R,
    params: &ChainParams,
    best: BestChain,
    entry: &IndexEntry,
    block: &Block,
    verbosity: u8,
) -> Result<Map<String, Value>, StoreError> {
    let hash = block.block_hash();
    let mut object = header(
        store,
        params,
        best,
        &hash,
        entry,
        Some(block.transactions.len()),
    )?;
    let size = block.encoded_size();
    object.insert("size".into(), json!(size));
    object.insert("strippedsize".into(), json!(size));
    object.insert("weight".into(), json!(size * 4));
    let transactions: Vec<Value> = block
        .transactions
        .iter()
        .map(|tx| {
            if verbosity >= 2 {
                serde_json::to_value(transaction(tx, params))
                    .expect("a decoded transaction serialises")
            } else {
                json!(tx.txid().to_string())
            }
        })
        .collect();
    object.insert("tx".into(), Value::Array(transactions));
    Ok(object)
}
