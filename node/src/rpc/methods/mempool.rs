//! Mempool methods: its entries and state, and transactions tested against it or sent into it.

use std::collections::BTreeSet;

use quarry_chain::{Amount, Transaction, Txid};
use quarry_mempool::{MempoolError, PoolEntry, TipContext};
use serde_json::{json, Map, Value};

use super::{decode_hex, invalid_parameter, node_error, not_found};
use crate::node::{Node, NodeError};
use crate::rpc::error::{ErrorCode, RpcError};
use crate::rpc::params::Params;
use crate::rpc::render::coins;

pub(super) fn get_mempool_entry(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let txid = params.txid(0)?;
    node.with_mempool(|pool| pool.get(&txid).map(|entry| mempool_entry(pool, entry)))
        .ok_or_else(|| not_found("Transaction not in mempool"))
}

pub(super) fn mempool_entry(pool: &quarry_mempool::Mempool, entry: &PoolEntry) -> Value {
    let ancestors = pool.ancestors(&entry.txid);
    let descendants = pool.descendants(&entry.txid);
    let txids = |set: &BTreeSet<Txid>| set.iter().map(ToString::to_string).collect::<Vec<_>>();
    // Core counts the entry itself among its ancestors and its descendants.
    let package = |set: &BTreeSet<Txid>| {
        set.iter()
            .filter_map(|txid| pool.get(txid))
            .fold((entry.size, entry.fee), |(size, fee), other| {
                (size + other.size, fee.checked_add(other.fee).unwrap_or(fee))
            })
    };
    let (ancestor_size, ancestor_fee) = package(&ancestors);
    let (descendant_size, descendant_fee) = package(&descendants);
    json!({
        "vsize": entry.size,
        "weight": entry.size * 4,
        "time": entry.time,
        "height": entry.height,
        "fee": coins(entry.fee),
        "fees": {
            "base": coins(entry.fee),
            "modified": coins(entry.fee),
            "ancestor": coins(ancestor_fee),
            "descendant": coins(descendant_fee),
        },
        "ancestorcount": ancestors.len() + 1,
        "ancestorsize": ancestor_size,
        "descendantcount": descendants.len() + 1,
        "descendantsize": descendant_size,
        "wtxid": entry.txid.to_string(),
        "depends": txids(&entry.parents),
        "spentby": txids(&entry.children),
        "bip125-replaceable": true,
        "unbroadcast": false,
    })
}

/// `getmempoolancestors` / `getmempooldescendants`: the relatives of a mempool transaction,
/// as txids or, verbose, as entries by txid.
pub(super) fn mempool_relatives(
    node: &Node,
    params: &Params,
    relatives: fn(&quarry_mempool::Mempool, &Txid) -> BTreeSet<Txid>,
) -> Result<Value, RpcError> {
    let txid = params.txid(0)?;
    let verbose: bool = params.or(1, false)?;
    node.with_mempool(|pool| {
        pool.get(&txid)?;
        let related = relatives(pool, &txid);
        Some(if verbose {
            let entries: Map<String, Value> = related
                .iter()
                .filter_map(|txid| pool.get(txid))
                .map(|entry| (entry.txid.to_string(), mempool_entry(pool, entry)))
                .collect();
            Value::Object(entries)
        } else {
            related.iter().map(|txid| json!(txid.to_string())).collect()
        })
    })
    .ok_or_else(|| not_found("Transaction not in mempool"))
}

pub(super) fn mempool_info(node: &Node) -> Value {
    node.with_mempool(|pool| {
        let config = pool.config();
        let min_fee = coins(Amount::from_sat(config.min_relay_fee_rate.to_sat_per_kb()));
        json!({
            "loaded": true,
            "size": pool.len(),
            "bytes": pool.bytes(),
            "usage": pool.bytes(),
            "total_fee": coins(pool.total_fee()),
            "maxmempool": config.max_bytes,
            "mempoolminfee": min_fee,
            "minrelaytxfee": min_fee,
            // A replacement pays the minimum relay fee for its own bytes on top.
            "incrementalrelayfee": min_fee,
            "unbroadcastcount": 0,
            "fullrbf": true,
            "permitbaremultisig": false,
            "maxdatacarriersize": 0,
            "orphans": pool.orphan_count(),
        })
    })
}

pub(super) fn raw_mempool(node: &Node, verbose: bool) -> Value {
    node.with_mempool(|pool| {
        if verbose {
            let entries: Map<String, Value> = pool
                .entries()
                .into_iter()
                .map(|entry| (entry.txid.to_string(), mempool_entry(pool, entry)))
                .collect();
            Value::Object(entries)
        } else {
            pool.entries()
                .iter()
                .map(|entry| json!(entry.txid.to_string()))
                .collect()
        }
    })
}

pub(super) fn decode_transaction(params: &Params) -> Result<Transaction, RpcError> {
    decode_hex(&params.hex(0)?, "TX")
}

/// Bitcoin Core's default `maxfeerate` of `sendrawtransaction`: 0.10 coins per 1,000 bytes.
const DEFAULT_MAX_FEE_RATE: f64 = 0.10;

pub(super) async fn send_raw_transaction(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let tx = decode_transaction(params)?;
    let txid = tx.txid();
    let max_fee_rate: f64 = params.optional(1)?.unwrap_or(DEFAULT_MAX_FEE_RATE);
    if !(max_fee_rate >= 0.0 && max_fee_rate.is_finite()) {
        return Err(invalid_parameter(
            "maxfeerate must be a number of coins per 1,000 bytes, 0 for no limit",
        ));
    }
    if max_fee_rate > 0.0 {
        let tip = node.tip();
        let context = TipContext {
            height: tip.height,
            genesis: node.params().genesis_hash(),
            coinbase_maturity: node.params().coinbase_maturity(),
        };
        // A transaction the pool refuses is refused below with the pool's own error.
        let checked =
            node.with_mempool(|pool| pool.test_accept(&tx, node.reader().store(), &context));
        if let Ok(accepted) = checked {
            let max_sats_per_kvb = max_fee_rate * 100_000_000.0;
            let sats_per_kvb = accepted.fee.to_sat() as f64 * 1_000.0 / accepted.size as f64;
            if sats_per_kvb > max_sats_per_kvb {
                return Err(RpcError::new(
                    ErrorCode::VerifyError,
                    "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
                ));
            }
        }
    }
    match node.submit_transaction(tx).await {
        Ok(accepted) => Ok(json!(accepted.txid.to_string())),
        // Bitcoin Core answers the txid for a transaction it already has.
        Err(NodeError::Mempool(MempoolError::AlreadyInPool { .. })) => Ok(json!(txid.to_string())),
        Err(NodeError::Mempool(MempoolError::MissingInputs { .. }))
            if node.index().transaction_block(&txid)?.is_some() =>
        {
            Err(RpcError::new(
                ErrorCode::VerifyAlreadyInChain,
                "Transaction already in block chain",
            ))
        }
        Err(error) => Err(node_error(error)),
    }
}

pub(super) fn test_mempool_accept(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let raw: Vec<String> = params.required(0)?;
    let tip = node.tip();
    let context = TipContext {
        height: tip.height,
        genesis: node.params().genesis_hash(),
        coinbase_maturity: node.params().coinbase_maturity(),
    };
    raw.iter()
        .map(|text| {
            let bytes = hex::decode(text).map_err(|error| {
                RpcError::new(
                    ErrorCode::DeserializationError,
                    format!("TX decode failed: {error}"),
                )
            })?;
            let tx: Transaction = decode_hex(&bytes, "TX")?;
            let txid = tx.txid().to_string();
            let verdict =
                node.with_mempool(|pool| pool.test_accept(&tx, node.reader().store(), &context));
            Ok(match verdict {
                Ok(accepted) => json!({
                    "txid": txid,
                    "wtxid": txid,
                    "allowed": true,
                    "vsize": accepted.size,
                    "fees": { "base": coins(accepted.fee) },
                }),
                Err(error) => json!({
                    "txid": txid,
                    "wtxid": txid,
                    "allowed": false,
                    "reject-reason": error.reason(),
                    "reject-details": error.to_string(),
                }),
            })
        })
        .collect()
}
