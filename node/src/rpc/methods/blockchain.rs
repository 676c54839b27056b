//! Blockchain methods: blocks, headers, tips, the chain's state and the UTXO set.

use quarry_chain::encode::encode;
use quarry_chain::{BlockHash, ChainReader, Coin, OutPoint, UtxoReader};
use quarry_rpc::types;
use serde_json::{json, Value};

use super::{best, invalid_parameter, not_found, reply, warnings};
use crate::node::Node;
use crate::rpc::error::{ErrorCode, RpcError};
use crate::rpc::params::Params;
use crate::rpc::render::{self, coins};

pub(super) fn best_block_hash(node: &Node) -> Result<Value, RpcError> {
    Ok(json!(node.tip().hash.to_string()))
}

pub(super) fn block_count(node: &Node) -> Result<Value, RpcError> {
    Ok(json!(node.tip().height))
}

pub(super) fn block_hash(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let height: i64 = params.required(0)?;
    let hash = u32::try_from(height)
        .ok()
        .map(|height| node.reader().store().hash_at_height(height))
        .transpose()?
        .flatten()
        .ok_or_else(|| invalid_parameter("Block height out of range"))?;
    Ok(json!(hash.to_string()))
}

pub(super) fn difficulty(node: &Node) -> Result<Value, RpcError> {
    Ok(json!(render::difficulty(
        node.params(),
        node.tip().header.bits
    )))
}

pub(super) fn index_info(node: &Node) -> Result<Value, RpcError> {
    let tip = node.index().tip()?;
    let height = node
        .reader()
        .store()
        .index_entry(&tip)?
        .map_or(0, |entry| entry.height);
    let state = types::IndexState {
        synced: tip == node.tip().hash,
        best_block_height: height,
    };
    reply(types::IndexInfo {
        addressindex: state,
        txindex: state,
    })
}

pub(super) fn invalidate_block(node: &Node, params: &Params) -> Result<Value, RpcError> {
    node.chain().invalidate_block(params.block_hash(0)?)?;
    Ok(Value::Null)
}

pub(super) fn reconsider_block(node: &Node, params: &Params) -> Result<Value, RpcError> {
    node.chain().reconsider_block(params.block_hash(0)?)?;
    Ok(Value::Null)
}

pub(super) fn get_block(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let hash = params.block_hash(0)?;
    let verbosity: u8 = match params.raw(1) {
        // Bitcoin Core still takes `true`/`false` here.
        Some(Value::Bool(verbose)) => u8::from(*verbose),
        _ => params.or(1, 1)?,
    };
    let store = node.reader().store();
    let entry = store
        .index_entry(&hash)?
        .ok_or_else(|| not_found("Block not found"))?;
    let block = store.block(&hash)?.ok_or_else(|| {
        RpcError::new(
            ErrorCode::MiscError,
            "Block not available (not fully downloaded)",
        )
    })?;
    if verbosity == 0 {
        return Ok(json!(hex::encode(encode(&block))));
    }
    Ok(Value::Object(render::block(
        store,
        node.params(),
        best(node),
        &entry,
        &block,
        verbosity,
    )?))
}

pub(super) fn get_block_header(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let hash = params.block_hash(0)?;
    let store = node.reader().store();
    let entry = store
        .index_entry(&hash)?
        .ok_or_else(|| not_found("Block not found"))?;
    if !params.or(1, true)? {
        return Ok(json!(hex::encode(entry.header.to_bytes())));
    }
    let tx_count = store.block(&hash)?.map(|block| block.transactions.len());
    Ok(Value::Object(render::header(
        store,
        node.params(),
        best(node),
        &hash,
        &entry,
        tx_count,
    )?))
}

pub(super) fn chain_tips(node: &Node) -> Result<Value, RpcError> {
    let tips = node.chain().chain_tips()?;
    reply(
        tips.iter()
            .map(|tip| types::ChainTip {
                height: tip.height,
                hash: tip.hash,
                branchlen: tip.branch_len,
                status: tip.status,
            })
            .collect::<Vec<_>>(),
    )
}

/// The height of the best known header (at least the tip's), from the chain's summary: cheap
/// enough for anyone who can call `getblockchaininfo`.
pub(crate) fn best_header_height(node: &Node) -> u32 {
    node.reader()
        .summary()
        .best_header
        .height
        .max(node.tip().height)
}

pub(super) fn blockchain_info(node: &Node) -> Result<Value, RpcError> {
    let tip = node.tip();
    let store = node.reader().store();
    let entry = store
        .index_entry(&tip.hash)?
        .ok_or_else(|| RpcError::new(ErrorCode::DatabaseError, "the tip has no index entry"))?;
    let headers = best_header_height(node);
    let status = *node.sync_status().borrow();
    reply(types::BlockchainInfo {
        chain: node.params().name().to_owned(),
        blocks: tip.height,
        headers,
        bestblockhash: tip.hash,
        difficulty: render::difficulty(node.params(), tip.header.bits),
        time: tip.header.time,
        mediantime: render::median_time(store, &entry)?,
        verificationprogress: if headers == 0 {
            1.0
        } else {
            f64::from(tip.height) / f64::from(headers)
        },
        initialblockdownload: !status.is_synced(),
        chainwork: hex::encode(tip.chain_work.to_be_bytes()),
        size_on_disk: dir_size(&node.data_dir().join("chain")),
        bits: render::bits_hex(tip.header.bits),
        target: render::target_hex(tip.header.bits),
        pruned: false,
        warnings: warnings(node),
    })
}

pub(super) fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .filter(|metadata| metadata.is_file())
                .map(|metadata| metadata.len())
                .sum()
        })
        .unwrap_or(0)
}

pub(super) fn coin_json(node: &Node, best: BlockHash, coin: &Coin, confirmations: u32) -> Value {
    json!({
        "bestblock": best.to_string(),
        "confirmations": confirmations,
        "value": coins(coin.output.value),
        "scriptPubKey": render::script_pubkey(coin.output.pubkey, node.params()),
        "coinbase": coin.is_coinbase,
    })
}

pub(super) fn tx_out(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let outpoint = OutPoint {
        txid: params.txid(0)?,
        vout: params.required(1)?,
    };
    let include_mempool = params.or(2, true)?;
    // One reading of the tip for the whole answer: it may move while the store is read.
    let tip = node.tip();
    if include_mempool {
        let pooled = node.with_mempool(|pool| {
            let spent = pool.spender_of(&outpoint).is_some();
            let created = pool
                .get(&outpoint.txid)
                .and_then(|entry| entry.tx.outputs.get(outpoint.vout as usize).copied());
            (spent, created)
        });
        match pooled {
            (true, _) => return Ok(Value::Null),
            (false, Some(output)) => {
                let coin = Coin {
                    output,
                    height: tip.height + 1,
                    is_coinbase: false,
                };
                return Ok(coin_json(node, tip.hash, &coin, 0));
            }
            (false, None) => {}
        }
    }
    Ok(match node.reader().store().coin(&outpoint)? {
        // A coin of a block connected after the tip was read has one confirmation, not an
        // underflow.
        Some(coin) => coin_json(
            node,
            tip.hash,
            &coin,
            tip.height.saturating_sub(coin.height) + 1,
        ),
        None => Value::Null,
    })
}

/// `getdeploymentinfo`: the block it reports at, and no deployments (Quarry's rules have no
/// soft-fork activations).
pub(super) fn deployment_info(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let hash = match params.optional::<String>(0)? {
        Some(_) => params.block_hash(0)?,
        None => node.tip().hash,
    };
    let entry = node
        .reader()
        .store()
        .index_entry(&hash)?
        .ok_or_else(|| not_found("Block not found"))?;
    Ok(json!({ "hash": hash.to_string(), "height": entry.height, "deployments": {} }))
}
