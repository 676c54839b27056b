//! Raw transaction methods: transactions decoded, or found in the mempool and the transaction index.

use std::sync::Arc;

use quarry_chain::encode::encode;
use quarry_chain::{BlockHash, ChainReader, Transaction};
use quarry_rpc::types;
use serde_json::{json, Value};

use super::{best, decode_hex, not_found, reply};
use crate::node::Node;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::render::{self};

pub(super) fn decode_raw_transaction(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let tx: Transaction = decode_hex(&params.hex(0)?, "TX")?;
    reply(render::transaction(&tx, node.params()))
}

pub(super) fn raw_transaction(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let txid = params.txid(0)?;
    let verbose = match params.raw(1) {
        Some(Value::Number(number)) => number.as_i64().unwrap_or(0) != 0,
        _ => params.or(1, false)?,
    };
    let store = node.reader().store();
    let wanted_block: Option<BlockHash> =
        params.raw(2).map(|_| params.block_hash(2)).transpose()?;
    let in_pool = node.with_mempool(|pool| pool.get(&txid).map(|entry| Arc::clone(&entry.tx)));
    let (tx, block) = match (in_pool, wanted_block) {
        (Some(tx), None) => ((*tx).clone(), None),
        (_, block) => {
            let block_hash = match block {
                Some(hash) => hash,
                None => node
                    .index()
                    .transaction_block(&txid)?
                    .ok_or_else(|| not_found("No such mempool or blockchain transaction"))?,
            };
            let block = store
                .block(&block_hash)?
                .ok_or_else(|| not_found("Block not found"))?;
            let tx = block
                .transactions
                .iter()
                .find(|tx| tx.txid() == txid)
                .cloned()
                .ok_or_else(|| not_found("No such transaction found in the provided block"))?;
            (tx, Some(block_hash))
        }
    };
    let hex = hex::encode(encode(&tx));
    if !verbose {
        return Ok(json!(hex));
    }
    let mut verbose = types::VerboseTransaction {
        decoded: render::transaction(&tx, node.params()),
        hex,
        blockhash: None,
        confirmations: None,
        time: None,
        blocktime: None,
    };
    if let Some(hash) = block {
        if let Some(entry) = store.index_entry(&hash)? {
            let confirmations = best(node).confirmations(store, &hash, entry.height)?;
            verbose.blockhash = Some(hash);
            verbose.confirmations = Some(u32::try_from(confirmations).unwrap_or(0));
            verbose.time = Some(entry.header.time);
            verbose.blocktime = Some(entry.header.time);
        }
    }
    reply(verbose)
}
