//! Address index methods: the coins, history and mempool activity of addresses.

use quarry_chain::{Address, ChainReader, OutputKey, UtxoReader};
use quarry_rpc::types;
use serde_json::Value;

use super::reply;
use crate::node::Node;
use crate::rpc::error::RpcError;

pub(super) fn keys_of(addresses: &[Address]) -> Vec<(OutputKey, String)> {
    addresses
        .iter()
        .map(|address| (address.key(), address.to_string()))
        .collect()
}

pub(super) fn address_utxos(node: &Node, addresses: &[Address]) -> Result<Value, RpcError> {
    let tip = node.tip().height;
    let maturity = node.params().coinbase_maturity();
    let mut utxos = Vec::new();
    for (key, address) in keys_of(addresses) {
        for (outpoint, coin) in node.index().utxos(&key)? {
            let confirmations = tip.saturating_sub(coin.height) + 1;
            utxos.push(types::AddressUtxo {
                address: address.clone(),
                txid: outpoint.txid,
                vout: outpoint.vout,
                output_index: outpoint.vout,
                amount: coin.output.value,
                satoshis: coin.output.value.to_sat(),
                height: coin.height,
                confirmations,
                coinbase: coin.is_coinbase,
                mature: !coin.is_coinbase || confirmations >= maturity,
            });
        }
    }
    reply(utxos)
}

pub(super) fn address_history(node: &Node, addresses: &[Address]) -> Result<Value, RpcError> {
    let store = node.reader().store();
    let tip = node.tip().height;
    let mut history = Vec::new();
    for (key, address) in keys_of(addresses) {
        for entry in node.index().history(&key)? {
            let block = store.hash_at_height(entry.height)?;
            let time = match &block {
                Some(hash) => store
                    .index_entry(hash)?
                    .map_or(0, |entry| entry.header.time),
                None => 0,
            };
            history.push(types::AddressHistoryEntry {
                address: address.clone(),
                txid: entry.txid,
                height: entry.height,
                blockhash: block,
                time,
                confirmations: tip.saturating_sub(entry.height) + 1,
                received: entry.received,
                sent: entry.sent,
            });
        }
    }
    history.sort_by_key(|entry| entry.height);
    reply(history)
}

pub(super) fn address_mempool(node: &Node, addresses: &[Address]) -> Result<Value, RpcError> {
    let keys = keys_of(addresses);
    let address_of = |key: &OutputKey| {
        keys.iter()
            .find(|(wanted, _)| wanted == key)
            .map(|(_, address)| address.clone())
    };
    let store = node.reader().store();
    node.with_mempool(|pool| {
        let mut deltas = Vec::new();
        for entry in pool.entries() {
            for input in &entry.tx.inputs {
                let spent = match pool.get(&input.prevout.txid) {
                    Some(parent) => parent.tx.outputs.get(input.prevout.vout as usize).copied(),
                    None => store.coin(&input.prevout)?.map(|coin| coin.output),
                };
                if let Some((output, address)) =
                    spent.and_then(|output| Some((output, address_of(&output.pubkey)?)))
                {
                    deltas.push(types::AddressMempoolDelta {
                        address,
                        txid: entry.txid,
                        index: None,
                        amount: -i64::try_from(output.value.to_sat()).unwrap_or(i64::MAX),
                        timestamp: entry.time,
                        prevtxid: Some(input.prevout.txid),
                        prevout: Some(input.prevout.vout),
                    });
                }
            }
            for (index, output) in entry.tx.outputs.iter().enumerate() {
                if let Some(address) = address_of(&output.pubkey) {
                    deltas.push(types::AddressMempoolDelta {
                        address,
                        txid: entry.txid,
                        index: u32::try_from(index).ok(),
                        amount: i64::try_from(output.value.to_sat()).unwrap_or(i64::MAX),
                        timestamp: entry.time,
                        prevtxid: None,
                        prevout: None,
                    });
                }
            }
        }
        reply(deltas)
    })
}
