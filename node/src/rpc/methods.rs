//! Every RPC method: its name, parameters and one-line summary (for `help` and parameter
//! matching), and its implementation on the running [`Node`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quarry_chain::encode::{decode, encode};
use quarry_chain::{
    Acceptance, Address, Amount, Block, BlockHash, ChainError, ChainReader, Coin, OutPoint,
    OutputKey, TipStatus, Transaction, Txid, UtxoReader,
};
use quarry_mempool::{MempoolError, PoolEntry, TipContext};
use quarry_network::{Multiaddr, PeerId};
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::error::{ErrorCode, RpcError};
use super::params::{parse_address, Params};
use super::render::{self, coins, BestChain};
use crate::node::{Node, NodeError};

/// One parameter of a method.
#[derive(Debug)]
pub struct Param {
    /// Its name, as Bitcoin Core names it (for named calls).
    pub name: &'static str,
    /// Whether it must be given.
    pub required: bool,
}

const fn required(name: &'static str) -> Param {
    Param {
        name,
        required: true,
    }
}

const fn optional(name: &'static str) -> Param {
    Param {
        name,
        required: false,
    }
}

/// One method.
#[derive(Debug)]
pub struct MethodInfo {
    /// Its name.
    pub name: &'static str,
    /// Its section in `help`.
    pub category: &'static str,
    /// Its parameters, in positional order.
    pub params: &'static [Param],
    /// What it does, in one line.
    pub summary: &'static str,
}

impl MethodInfo {
    /// `name "required" ( optional )`, as Bitcoin Core's help shows it.
    pub fn usage(&self) -> String {
        let mut usage = self.name.to_owned();
        for param in self.params {
            if param.required {
                usage.push_str(&format!(" {}", param.name));
            } else {
                usage.push_str(&format!(" ( {} )", param.name));
            }
        }
        usage
    }
}

macro_rules! methods {
    ($($name:literal, $category:literal, [$($param:expr),*], $summary:literal;)*) => {
        /// Every method the node answers, by category.
        pub const METHODS: &[MethodInfo] = &[$(MethodInfo {
            name: $name,
            category: $category,
            params: &[$($param),*],
            summary: $summary,
        }),*];
    };
}

methods! {
    "getbestblockhash", "Blockchain", [], "Hash of the tip of the best chain.";
    "getblock", "Blockchain", [required("blockhash"), optional("verbosity")],
        "A block: hex (verbosity 0), with txids (1, default) or with decoded transactions (2).";
    "getblockchaininfo", "Blockchain", [], "State of the chain: height, headers, tip, difficulty, work, sync progress.";
    "getblockcount", "Blockchain", [], "Height of the best chain.";
    "getblockhash", "Blockchain", [required("height")], "Hash of the best chain's block at a height.";
    "getblockheader", "Blockchain", [required("blockhash"), optional("verbose")],
        "A block header: decoded (default) or as hex.";
    "getchaintips", "Blockchain", [], "Every branch tip with its height, branch length and status.";
    "getdifficulty", "Blockchain", [], "Difficulty of the tip (1 at the network's easiest target).";
    "getmempoolentry", "Blockchain", [required("txid")], "A mempool transaction's fee, size, time and relatives.";
    "getmempoolinfo", "Blockchain", [], "Mempool size, bytes, fees and policy limits.";
    "getrawmempool", "Blockchain", [optional("verbose")], "Txids in the mempool, or entries by txid when verbose.";
    "gettxout", "Blockchain", [required("txid"), required("n"), optional("include_mempool")],
        "An unspent output (null when spent or unknown).";
    "getindexinfo", "Blockchain", [], "Height each index has reached.";
    "invalidateblock", "Blockchain", [required("blockhash")], "Marks a block and its descendants invalid; the chain moves to the best other branch.";
    "reconsiderblock", "Blockchain", [required("blockhash")], "Removes an invalidity mark set by invalidateblock and its descendants.";
    "getaddressutxos", "Addressindex", [required("addresses")],
        "Confirmed unspent outputs of addresses, from the address index.";
    "getaddresshistory", "Addressindex", [required("addresses")],
        "Confirmed transactions paying or spending addresses, oldest first, with amounts.";
    "getaddressmempool", "Addressindex", [required("addresses")],
        "Mempool outputs paying and inputs spending addresses.";
    "getblocktemplate", "Mining", [optional("template_request")], "A block template to mine on (BIP22 fields).";
    "getmininginfo", "Mining", [], "Height, difficulty, network and local hash rate, mining state.";
    "getnetworkhashps", "Mining", [optional("nblocks"), optional("height")],
        "Network hashes per second estimated over the last nblocks (default 120).";
    "submitblock", "Mining", [required("hexdata")], "Submits a mined block; null when accepted, else the reason.";
    "generatetoaddress", "Generating", [required("nblocks"), required("address"), optional("maxtries")],
        "Mines blocks now, paying an address; returns their hashes.";
    "setgenerate", "Generating", [required("generate"), optional("genproclimit"), optional("address")],
        "Starts (true) or stops (false) background mining; genproclimit sets threads.";
    "getgenerate", "Generating", [], "Whether the background miner runs.";
    "addnode", "Network", [required("node"), required("command")],
        "add (kept connected), remove, or onetry a peer address (multiaddr or host:port).";
    "disconnectnode", "Network", [optional("address"), optional("nodeid")], "Disconnects a peer by address or peer id.";
    "getaddednodeinfo", "Network", [optional("node")], "Peers added with addnode and whether they are connected.";
    "getconnectioncount", "Network", [], "Number of connected peers.";
    "getnetworkinfo", "Network", [], "Version, peer id, listen addresses, connection counts.";
    "getpeerinfo", "Network", [], "Connected peers: address, direction, agent, misbehaviour score.";
    "listbanned", "Network", [], "Banned peers with the end of each ban and its reason.";
    "setban", "Network", [required("subnet"), required("command"), optional("bantime"), optional("absolute")],
        "add or remove a ban of a peer (peer id or address of a connected peer).";
    "clearbanned", "Network", [], "Lifts every ban.";
    "decoderawtransaction", "Rawtransactions", [required("hexstring")], "Decodes a transaction's hex.";
    "getrawtransaction", "Rawtransactions", [required("txid"), optional("verbose"), optional("blockhash")],
        "A mempool or confirmed transaction (from the transaction index): hex, or decoded when verbose.";
    "sendrawtransaction", "Rawtransactions", [required("hexstring"), optional("maxfeerate")],
        "Validates a transaction into the mempool and relays it; returns its txid.";
    "testmempoolaccept", "Rawtransactions", [required("rawtxs"), optional("maxfeerate")],
        "Whether transactions would be accepted into the mempool, without adding them.";
    "validateaddress", "Util", [required("address")], "Whether an address is valid for this network, and its key.";
    "help", "Control", [optional("command")], "Lists methods, or describes one.";
    "stop", "Control", [], "Shuts the node down cleanly.";
    "uptime", "Control", [], "Seconds since the node started.";
}

/// What the methods work with.
#[derive(Debug)]
pub struct RpcContext {
    /// The node.
    pub node: Arc<Node>,
    /// Where `setgenerate` pays when no address is given (the daemon's `--miner-address`).
    pub miner_address: Option<Address>,
    /// Set to `true` by `stop`.
    pub stop: watch::Sender<bool>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn invalid_parameter(message: impl Into<String>) -> RpcError {
    RpcError::new(ErrorCode::InvalidParameter, message)
}

fn not_found(what: &str) -> RpcError {
    RpcError::new(ErrorCode::InvalidAddressOrKey, format!("{what} not found"))
}

fn decode_hex<T: bincode::Decode<()>>(bytes: &[u8], what: &str) -> Result<T, RpcError> {
    decode(bytes).map_err(|error| {
        RpcError::new(
            ErrorCode::DeserializationError,
            format!("{what} decode failed: {error}"),
        )
    })
}

fn node_error(error: NodeError) -> RpcError {
    match error {
        NodeError::Mempool(error) => mempool_error(&error),
        NodeError::Chain(error) => error.into(),
        NodeError::Store(error) => error.into(),
        NodeError::Network(error) => error.into(),
        other => RpcError::new(ErrorCode::MiscError, other.to_string()),
    }
}

fn mempool_error(error: &MempoolError) -> RpcError {
    let code = match error {
        MempoolError::MissingInputs { .. } => ErrorCode::VerifyError,
        MempoolError::Store(_) => ErrorCode::DatabaseError,
        _ => ErrorCode::VerifyRejected,
    };
    RpcError::new(code, format!("{}: {error}", error.reason()))
}

/// The method whose name is within a few typos of `name` (Levenshtein distance at most 3),
/// the closest first.
fn closest_method(name: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut diagonal = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let substitution = diagonal + usize::from(ca != *cb);
                diagonal = row[j + 1];
                row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
            }
        }
        row[b.len()]
    }
    let name = name.to_ascii_lowercase();
    METHODS
        .iter()
        .map(|method| (distance(&name, method.name), method.name))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, name)| name)
}

/// Runs the method `name` with `raw` parameters.
pub async fn call(
    context: &Arc<RpcContext>,
    name: &str,
    raw: Option<Value>,
) -> Result<Value, RpcError> {
    let method = METHODS
        .iter()
        .find(|method| method.name == name)
        .ok_or_else(|| {
            let message = match closest_method(name) {
                Some(close) => format!("Method not found (did you mean {close}?)"),
                None => "Method not found".to_owned(),
            };
            RpcError::new(ErrorCode::MethodNotFound, message)
        })?;
    let params = Params::new(method, raw)?;
    let node = &context.node;
    match method.name {
        "generatetoaddress" => generate_to_address(node, &params).await,
        "sendrawtransaction" => send_raw_transaction(node, &params).await,
        "getpeerinfo" => peer_info(node).await,
        "getconnectioncount" => Ok(json!(node.client().peers().await?.len())),
        "getnetworkinfo" => network_info(node).await,
        "addnode" => add_node(node, &params).await,
        "disconnectnode" => disconnect_node(node, &params).await,
        "getaddednodeinfo" => added_node_info(node, &params).await,
        "setban" => set_ban(node, &params).await,
        "listbanned" => list_banned(node).await,
        "clearbanned" => clear_banned(node).await,
        "stop" => {
            context.stop.send_replace(true);
            Ok(json!("Quarry server stopping"))
        }
        _ => {
            let context = Arc::clone(context);
            tokio::task::spawn_blocking(move || call_blocking(&context, method, &params))
                .await
                .map_err(|join| RpcError::new(ErrorCode::InternalError, join.to_string()))?
        }
    }
}

/// Methods that read the store or wait for the chain actor: run on a blocking thread.
fn call_blocking(
    context: &RpcContext,
    method: &MethodInfo,
    params: &Params,
) -> Result<Value, RpcError> {
    let node = &context.node;
    match method.name {
        "getbestblockhash" => Ok(json!(node.tip().hash.to_string())),
        "getblock" => get_block(node, params),
        "getblockchaininfo" => blockchain_info(node),
        "getblockcount" => Ok(json!(node.tip().height)),
        "getblockhash" => {
            let height: i64 = params.required(0)?;
            let hash = u32::try_from(height)
                .ok()
                .map(|height| node.reader().store().hash_at_height(height))
                .transpose()?
                .flatten()
                .ok_or_else(|| invalid_parameter("Block height out of range"))?;
            Ok(json!(hash.to_string()))
        }
        "getblockheader" => get_block_header(node, params),
        "getchaintips" => chain_tips(node),
        "getdifficulty" => Ok(json!(render::difficulty(
            node.params(),
            node.tip().header.bits
        ))),
        "getmempoolentry" => {
            let txid = params.txid(0)?;
            node.with_mempool(|pool| pool.get(&txid).map(|entry| mempool_entry(pool, entry)))
                .ok_or_else(|| not_found("Transaction not in mempool"))
        }
        "getmempoolinfo" => Ok(mempool_info(node)),
        "getrawmempool" => Ok(raw_mempool(node, params.or(0, false)?)),
        "gettxout" => tx_out(node, params),
        "getindexinfo" => {
            let tip = node.index().tip()?;
            let height = node
                .reader()
                .store()
                .index_entry(&tip)?
                .map_or(0, |entry| entry.height);
            Ok(json!({
                "addressindex": { "synced": tip == node.tip().hash, "best_block_height": height },
                "txindex": { "synced": tip == node.tip().hash, "best_block_height": height },
            }))
        }
        "invalidateblock" => {
            node.chain().invalidate_block(params.block_hash(0)?)?;
            Ok(Value::Null)
        }
        "reconsiderblock" => {
            node.chain().reconsider_block(params.block_hash(0)?)?;
            Ok(Value::Null)
        }
        "getaddressutxos" => address_utxos(node, &params.addresses(0, node.params())?),
        "getaddresshistory" => address_history(node, &params.addresses(0, node.params())?),
        "getaddressmempool" => address_mempool(node, &params.addresses(0, node.params())?),
        "getblocktemplate" => block_template(node),
        "getmininginfo" => mining_info(node),
        "getnetworkhashps" => {
            let blocks: i64 = params.or(0, 120)?;
            let height: i64 = params.or(1, -1)?;
            Ok(json!(network_hash_rate(node, blocks, height)?))
        }
        "submitblock" => submit_block(node, params),
        "setgenerate" => set_generate(context, params),
        "getgenerate" => Ok(json!(node.mining_payout().is_some())),
        "decoderawtransaction" => {
            let tx: Transaction = decode_hex(&params.hex(0)?, "TX")?;
            Ok(Value::Object(render::transaction(&tx, node.params())))
        }
        "getrawtransaction" => raw_transaction(node, params),
        "testmempoolaccept" => test_mempool_accept(node, params),
        "validateaddress" => {
            let text: String = params.required(0)?;
            Ok(match Address::parse(&text, node.params()) {
                Ok(address) => json!({
                    "isvalid": true,
                    "address": address.to_string(),
                    "pubkey": address.key().to_string(),
                    "iswitness": true,
                    "witness_version": 1,
                }),
                Err(error) => json!({ "isvalid": false, "error": error.to_string() }),
            })
        }
        "help" => help(params.optional(0)?),
        "uptime" => Ok(json!(node.started().elapsed().as_secs())),
        other => Err(RpcError::new(
            ErrorCode::InternalError,
            format!("{other} has no implementation"),
        )),
    }
}

fn best(node: &Node) -> BestChain {
    BestChain {
        tip_height: node.tip().height,
    }
}

fn get_block(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let hash = params.block_hash(0)?;
    let verbosity: u8 = match params.raw(1) {
        // Bitcoin Core still takes `true`/`false` here.
        Some(Value::Bool(verbose)) => u8::from(*verbose),
        _ => params.or(1, 1)?,
    };
    let store = node.reader().store();
    let entry = store
        .index_entry(&hash)?
        .ok_or_else(|| not_found("Block"))?;
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

fn get_block_header(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let hash = params.block_hash(0)?;
    let store = node.reader().store();
    let entry = store
        .index_entry(&hash)?
        .ok_or_else(|| not_found("Block"))?;
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

fn status_name(status: TipStatus) -> &'static str {
    match status {
        TipStatus::Active => "active",
        TipStatus::ValidFork => "valid-fork",
        TipStatus::ValidHeaders => "valid-headers",
        TipStatus::HeadersOnly => "headers-only",
        TipStatus::Invalid => "invalid",
    }
}

fn chain_tips(node: &Node) -> Result<Value, RpcError> {
    let tips = node.chain().chain_tips()?;
    Ok(tips
        .iter()
        .map(|tip| {
            json!({
                "height": tip.height,
                "hash": tip.hash.to_string(),
                "branchlen": tip.branch_len,
                "status": status_name(tip.status),
            })
        })
        .collect())
}

/// The height of the best known header (at least the tip's), from the chain's summary: cheap
/// enough for anyone who can call `getblockchaininfo`.
fn best_header_height(node: &Node) -> u32 {
    node.reader()
        .summary()
        .best_header
        .height
        .max(node.tip().height)
}

fn blockchain_info(node: &Node) -> Result<Value, RpcError> {
    let tip = node.tip();
    let store = node.reader().store();
    let entry = store
        .index_entry(&tip.hash)?
        .ok_or_else(|| RpcError::new(ErrorCode::DatabaseError, "the tip has no index entry"))?;
    let headers = best_header_height(node);
    let status = *node.sync_status().borrow();
    Ok(json!({
        "chain": node.params().name(),
        "blocks": tip.height,
        "headers": headers,
        "bestblockhash": tip.hash.to_string(),
        "difficulty": render::difficulty(node.params(), tip.header.bits),
        "time": tip.header.time,
        "mediantime": render::median_time(store, &entry)?,
        "verificationprogress": if headers == 0 { 1.0 } else { f64::from(tip.height) / f64::from(headers) },
        "initialblockdownload": !status.is_synced(),
        "chainwork": hex::encode(tip.chain_work.to_be_bytes()),
        "size_on_disk": dir_size(&node.data_dir().join("chain")),
        "pruned": false,
        "warnings": warnings(node),
    }))
}

/// What getblockchaininfo, getmininginfo and getnetworkinfo warn about: a failed chain store.
fn warnings(node: &Node) -> String {
    node.reader()
        .store_failure()
        .map(|failure| {
            format!("the chain store failed ({failure}); quarryd is shutting down: free disk space or repair the disk, then restart")
        })
        .unwrap_or_default()
}

fn dir_size(path: &std::path::Path) -> u64 {
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

fn mempool_entry(pool: &quarry_mempool::Mempool, entry: &PoolEntry) -> Value {
    let ancestors = pool.ancestors(&entry.txid);
    let descendants = pool.descendants(&entry.txid);
    let txids = |set: &BTreeSet<Txid>| set.iter().map(ToString::to_string).collect::<Vec<_>>();
    json!({
        "vsize": entry.size,
        "weight": entry.size * 4,
        "time": entry.time,
        "fee": coins(entry.fee),
        "fees": { "base": coins(entry.fee), "modified": coins(entry.fee) },
        "ancestorcount": ancestors.len() + 1,
        "descendantcount": descendants.len() + 1,
        "depends": txids(&entry.parents),
        "spentby": txids(&entry.children),
        "bip125-replaceable": true,
    })
}

fn mempool_info(node: &Node) -> Value {
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
            "orphans": pool.orphan_count(),
        })
    })
}

fn raw_mempool(node: &Node, verbose: bool) -> Value {
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

fn coin_json(node: &Node, best: BlockHash, coin: &Coin, confirmations: u32) -> Value {
    json!({
        "bestblock": best.to_string(),
        "confirmations": confirmations,
        "value": coins(coin.output.value),
        "scriptPubKey": {
            "address": Address::new(coin.output.pubkey, node.params()).to_string(),
            "hex": coin.output.pubkey.to_string(),
            "type": "witness_v1_taproot",
        },
        "coinbase": coin.is_coinbase,
    })
}

fn tx_out(node: &Node, params: &Params) -> Result<Value, RpcError> {
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

fn keys_of(addresses: &[Address]) -> Vec<(OutputKey, String)> {
    addresses
        .iter()
        .map(|address| (address.key(), address.to_string()))
        .collect()
}

fn address_utxos(node: &Node, addresses: &[Address]) -> Result<Value, RpcError> {
    let tip = node.tip().height;
    let maturity = node.params().coinbase_maturity();
    let mut utxos = Vec::new();
    for (key, address) in keys_of(addresses) {
        for (outpoint, coin) in node.index().utxos(&key)? {
            let confirmations = tip.saturating_sub(coin.height) + 1;
            utxos.push(json!({
                "address": address,
                "txid": outpoint.txid.to_string(),
                "vout": outpoint.vout,
                "outputIndex": outpoint.vout,
                "amount": coins(coin.output.value),
                "satoshis": coin.output.value.to_sat(),
                "height": coin.height,
                "confirmations": confirmations,
                "coinbase": coin.is_coinbase,
                "mature": !coin.is_coinbase || confirmations >= maturity,
            }));
        }
    }
    Ok(Value::Array(utxos))
}

fn address_history(node: &Node, addresses: &[Address]) -> Result<Value, RpcError> {
    let store = node.reader().store();
    let tip = node.tip().height;
    let mut history = Vec::new();
    for (key, address) in keys_of(addresses) {
        for entry in node.index().history(&key)? {
            let block = store.hash_at_height(entry.height)?;
            history.push(json!({
                "address": address,
                "txid": entry.txid.to_string(),
                "height": entry.height,
                "blockhash": block.map(|hash| hash.to_string()),
                "confirmations": tip.saturating_sub(entry.height) + 1,
                "received": coins(entry.received),
                "sent": coins(entry.sent),
            }));
        }
    }
    history.sort_by_key(|entry| entry["height"].as_u64());
    Ok(Value::Array(history))
}

fn address_mempool(node: &Node, addresses: &[Address]) -> Result<Value, RpcError> {
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
                    deltas.push(json!({
                        "address": address,
                        "txid": entry.txid.to_string(),
                        "amount": -(output.value.to_sat() as f64) / Amount::SATS_PER_COIN as f64,
                        "timestamp": entry.time,
                        "prevtxid": input.prevout.txid.to_string(),
                        "prevout": input.prevout.vout,
                    }));
                }
            }
            for (index, output) in entry.tx.outputs.iter().enumerate() {
                if let Some(address) = address_of(&output.pubkey) {
                    deltas.push(json!({
                        "address": address,
                        "txid": entry.txid.to_string(),
                        "index": index,
                        "amount": coins(output.value),
                        "timestamp": entry.time,
                    }));
                }
            }
        }
        Ok(Value::Array(deltas))
    })
}

fn block_template(node: &Node) -> Result<Value, RpcError> {
    let template = node.block_template();
    let target = template.bits.to_target().ok_or_else(|| {
        RpcError::new(
            ErrorCode::InternalError,
            "the next block's bits do not decode",
        )
    })?;
    let transactions: Vec<Value> = node.with_mempool(|pool| {
        template
            .transactions
            .iter()
            .map(|tx| {
                let txid = tx.txid();
                let fee = pool.get(&txid).map_or(0, |entry| entry.fee.to_sat());
                json!({
                    "data": hex::encode(encode(tx.as_ref())),
                    "txid": txid.to_string(),
                    "hash": txid.to_string(),
                    "fee": fee,
                    "size": tx.encoded_size(),
                    "depends": [],
                })
            })
            .collect()
    });
    Ok(json!({
        "version": quarry_chain::BlockHeader::CURRENT_VERSION,
        "rules": [],
        "previousblockhash": template.prev_blockhash.to_string(),
        "transactions": transactions,
        "coinbasevalue": template.coinbase_value.to_sat(),
        "target": hex::encode(target.to_u256().to_be_bytes::<32>()),
        "mintime": node.tip().next.min_time,
        "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff",
        "sizelimit": quarry_chain::encode::MAX_BLOCK_BYTES,
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
        store.index_entry(&hash)?.ok_or_else(|| not_found("Block"))
    };
    let (first, last) = (entry_at(start)?, entry_at(end)?);
    let seconds = i64::from(last.header.time) - i64::from(first.header.time);
    if seconds <= 0 {
        return Ok(0.0);
    }
    let work = last.chain_work.to_f64() - first.chain_work.to_f64();
    Ok(work / seconds as f64)
}

fn mining_info(node: &Node) -> Result<Value, RpcError> {
    let tip = node.tip();
    let miner = node.miner();
    Ok(json!({
        "blocks": tip.height,
        "difficulty": render::difficulty(node.params(), tip.header.bits),
        "networkhashps": network_hash_rate(node, 120, -1)?,
        "pooledtx": node.with_mempool(|pool| pool.len()),
        "chain": node.params().name(),
        "generate": node.mining_payout().is_some(),
        "genproclimit": miner.threads(),
        "hashespersec": miner.hash_rate().current,
        "warnings": warnings(node),
    }))
}

fn submit_block(node: &Node, params: &Params) -> Result<Value, RpcError> {
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

async fn generate_to_address(node: &Node, params: &Params) -> Result<Value, RpcError> {
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

fn set_generate(context: &RpcContext, params: &Params) -> Result<Value, RpcError> {
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

fn decode_transaction(params: &Params) -> Result<Transaction, RpcError> {
    decode_hex(&params.hex(0)?, "TX")
}

/// Bitcoin Core's default `maxfeerate` of `sendrawtransaction`: 0.10 coins per 1,000 bytes.
const DEFAULT_MAX_FEE_RATE: f64 = 0.10;

async fn send_raw_transaction(node: &Node, params: &Params) -> Result<Value, RpcError> {
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

fn test_mempool_accept(node: &Node, params: &Params) -> Result<Value, RpcError> {
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
                    "allowed": true,
                    "vsize": accepted.size,
                    "fees": { "base": coins(accepted.fee) },
                }),
                Err(error) => json!({
                    "txid": txid,
                    "allowed": false,
                    "reject-reason": error.reason(),
                    "reject-details": error.to_string(),
                }),
            })
        })
        .collect()
}

fn raw_transaction(node: &Node, params: &Params) -> Result<Value, RpcError> {
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
                .ok_or_else(|| not_found("Block"))?;
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
    let mut object = render::transaction(&tx, node.params());
    object.insert("hex".into(), json!(hex));
    if let Some(hash) = block {
        if let Some(entry) = store.index_entry(&hash)? {
            object.insert("blockhash".into(), json!(hash.to_string()));
            object.insert(
                "confirmations".into(),
                json!(best(node).confirmations(store, &hash, entry.height)?.max(0)),
            );
            object.insert("time".into(), json!(entry.header.time));
            object.insert("blocktime".into(), json!(entry.header.time));
        }
    }
    Ok(Value::Object(object))
}

async fn peer_info(node: &Node) -> Result<Value, RpcError> {
    let peers = node.client().peers().await?;
    Ok(peers
        .iter()
        .enumerate()
        .map(|(id, peer)| {
            json!({
                "id": id,
                "peerid": peer.peer.to_string(),
                "addr": peer.address.to_string(),
                "inbound": peer.inbound,
                "connection_type": if peer.inbound { "inbound" } else { "outbound-full-relay" },
                "subver": peer.agent.clone().unwrap_or_default(),
                "misbehavior_score": peer.score,
            })
        })
        .collect())
}

async fn network_info(node: &Node) -> Result<Value, RpcError> {
    let peers = node.client().peers().await?;
    let inbound = peers.iter().filter(|peer| peer.inbound).count();
    let listening = node.client().listen_addresses().await?;
    let peer_id = node.client().local_peer_id();
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "subversion": format!("/quarry:{}/", env!("CARGO_PKG_VERSION")),
        "peerid": peer_id.to_string(),
        "networkactive": true,
        "connections": peers.len(),
        "connections_in": inbound,
        "connections_out": peers.len() - inbound,
        "localaddresses": listening
            .iter()
            .map(|address| format!("{address}/p2p/{peer_id}"))
            .collect::<Vec<_>>(),
        "warnings": warnings(node),
    }))
}

/// The longest peer id or address accepted: longer than any real one, short enough that
/// parsing (base58 decoding is quadratic) costs nothing.
const MAX_PEER_TEXT: usize = 256;

/// Refuses text too long to be a peer id or address, before anything parses it.
fn check_peer_text(text: &str) -> Result<(), RpcError> {
    if text.len() > MAX_PEER_TEXT {
        return Err(invalid_parameter(format!(
            "a peer id or address of {} characters; real ones have at most {MAX_PEER_TEXT}",
            text.len()
        )));
    }
    Ok(())
}

/// A peer address: a multiaddr, or `host:port` (IPv4, `[IPv6]` or a DNS name).
fn parse_peer_address(text: &str) -> Result<Multiaddr, RpcError> {
    check_peer_text(text)?;
    let invalid = |why: &str| {
        RpcError::new(
            ErrorCode::InvalidIpOrSubnet,
            format!("'{text}' is not a peer address ({why}); use a multiaddr such as /ip4/127.0.0.1/tcp/9333 or host:port"),
        )
    };
    if text.starts_with('/') {
        return text.parse().map_err(|_| invalid("bad multiaddr"));
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
    let port: u16 = port.parse().map_err(|_| invalid("bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let address = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => format!("/ip4/{ip}/tcp/{port}"),
        Ok(std::net::IpAddr::V6(ip)) => format!("/ip6/{ip}/tcp/{port}"),
        Err(_) if !host.is_empty() => format!("/dns/{host}/tcp/{port}"),
        Err(_) => return Err(invalid("no host")),
    };
    address.parse().map_err(|_| invalid("bad host"))
}

async fn add_node(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let text: String = params.required(0)?;
    let command: String = params.required(1)?;
    let address = parse_peer_address(&text)?;
    match command.as_str() {
        "add" => {
            if !node.add_node(address) {
                return Err(RpcError::new(
                    ErrorCode::NodeAlreadyAdded,
                    "Error: Node already added",
                ));
            }
        }
        "remove" => {
            if !node.remove_added_node(&address) {
                return Err(RpcError::new(
                    ErrorCode::NodeNotAdded,
                    "Error: Node could not be removed. It has not been added previously.",
                ));
            }
        }
        "onetry" => {
            node.client().dial(address).await.map_err(|error| {
                RpcError::new(
                    ErrorCode::ClientNotConnected,
                    format!("Error: cannot connect: {error}"),
                )
            })?;
        }
        other => {
            return Err(invalid_parameter(format!(
                "command must be add, remove or onetry, not '{other}'"
            )))
        }
    }
    Ok(Value::Null)
}

/// The connected peer named by `text`: its peer id, or the address it is connected on.
async fn find_peer(node: &Node, text: &str) -> Result<Option<PeerId>, RpcError> {
    check_peer_text(text)?;
    if let Ok(peer) = text.parse::<PeerId>() {
        return Ok(Some(peer));
    }
    let address = parse_peer_address(text)?;
    let peers = node.client().peers().await?;
    Ok(peers
        .iter()
        .find(|peer| {
            peer.address == address || peer.address.to_string().starts_with(&address.to_string())
        })
        .map(|peer| peer.peer))
}

async fn disconnect_node(node: &Node, params: &Params) -> Result<Value, RpcError> {
    if params.raw(1).is_some() {
        return Err(invalid_parameter(
            "nodeid is not supported: pass the peer's address or peer id (getpeerinfo shows both)",
        ));
    }
    let text: String = params
        .optional(0)?
        .ok_or_else(|| invalid_parameter("Need an address or a peer id"))?;
    let peer = find_peer(node, &text).await?;
    let disconnected = match peer {
        Some(peer) => node.client().disconnect(peer).await?,
        None => false,
    };
    if !disconnected {
        return Err(RpcError::new(
            ErrorCode::NodeNotConnected,
            "Node not found in connected nodes",
        ));
    }
    Ok(Value::Null)
}

async fn added_node_info(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let only: Option<String> = params.optional(0)?;
    let only = only.map(|text| parse_peer_address(&text)).transpose()?;
    let peers = node.client().peers().await?;
    let added = node.added_nodes();
    if let Some(only) = &only {
        if !added.contains(only) {
            return Err(RpcError::new(
                ErrorCode::NodeNotAdded,
                "Error: Node has not been added.",
            ));
        }
    }
    Ok(added
        .iter()
        .filter(|address| only.as_ref().is_none_or(|only| only == *address))
        .map(|address| {
            let connected = peers
                .iter()
                .any(|peer| peer.address.to_string().starts_with(&address.to_string()));
            json!({ "addednode": address.to_string(), "connected": connected })
        })
        .collect())
}

async fn set_ban(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let text: String = params.required(0)?;
    let command: String = params.required(1)?;
    let peer = find_peer(node, &text).await?.ok_or_else(|| {
        RpcError::new(
            ErrorCode::InvalidIpOrSubnet,
            format!("Error: '{text}' is neither a peer id nor the address of a connected peer"),
        )
    })?;
    match command.as_str() {
        "add" => {
            let seconds: i64 = params.or(2, 0)?;
            let absolute: bool = params.or(3, false)?;
            let seconds = match (seconds, absolute) {
                (seconds, _) if seconds < 0 => {
                    return Err(invalid_parameter("bantime must not be negative"))
                }
                (0, _) => 24 * 60 * 60,
                (until, true) => u64::try_from(until).unwrap_or(0).saturating_sub(now()),
                (seconds, false) => u64::try_from(seconds).unwrap_or(0),
            };
            if seconds == 0 {
                return Err(invalid_parameter(
                    "Error: Absolute timestamp is in the past",
                ));
            }
            node.client().ban(peer, Duration::from_secs(seconds))?;
        }
        "remove" => {
            if !node.client().unban(peer).await? {
                return Err(RpcError::new(
                    ErrorCode::InvalidIpOrSubnet,
                    "Error: Unban failed. Requested address/subnet was not previously manually banned.",
                ));
            }
        }
        other => {
            return Err(invalid_parameter(format!(
                "command must be add or remove, not '{other}'"
            )))
        }
    }
    node.save_bans().await.map_err(node_error)?;
    Ok(Value::Null)
}

async fn list_banned(node: &Node) -> Result<Value, RpcError> {
    let bans = node.client().bans().await?;
    let now = now();
    Ok(bans
        .iter()
        .map(|ban| {
            json!({
                "address": ban.peer.to_string(),
                "banned_until": ban.until,
                "time_remaining": ban.until.saturating_sub(now),
                "reason": ban.reason.to_string(),
            })
        })
        .collect())
}

async fn clear_banned(node: &Node) -> Result<Value, RpcError> {
    for ban in node.client().bans().await? {
        node.client().unban(ban.peer).await?;
    }
    node.save_bans().await.map_err(node_error)?;
    Ok(Value::Null)
}

fn help(command: Option<String>) -> Result<Value, RpcError> {
    if let Some(name) = command {
        let method = METHODS
            .iter()
            .find(|method| method.name == name)
            .ok_or_else(|| {
                RpcError::new(
                    ErrorCode::MiscError,
                    format!("help: unknown command: {name}"),
                )
            })?;
        return Ok(json!(format!("{}\n\n{}", method.usage(), method.summary)));
    }
    let mut text = String::new();
    let mut category = "";
    for method in METHODS {
        if method.category != category {
            category = method.category;
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!("== {category} ==\n"));
        }
        text.push_str(&format!("{:<60} {}\n", method.usage(), method.summary));
    }
    Ok(json!(text.trim_end()))
}

/// Sets the metrics' gauges from the node's current state, before a scrape.
pub async fn refresh_metrics(node: &Arc<Node>) -> Result<(), RpcError> {
    let peers = node.client().peers().await?.len();
    let reading = Arc::clone(node);
    tokio::task::spawn_blocking(move || {
        let node = &reading;
        let metrics = node.metrics();
        let tip = node.tip();
        let summary = node.reader().summary();
        metrics.height.set(i64::from(tip.height));
        metrics.headers.set(i64::from(best_header_height(node)));
        metrics.tips.clear();
        for (status, count) in &summary.tips {
            metrics
                .tips
                .get_or_create(&crate::metrics::TipLabels {
                    status: status_name(*status).into(),
                })
                .set(*count as i64);
        }
        metrics.stale_blocks.set(summary.stale_tips() as i64);
        metrics.orphan_blocks.set(summary.orphans as i64);
        metrics
            .store_failed
            .set(i64::from(node.reader().store_failure().is_some()));
        let (count, bytes) = node.with_mempool(|pool| (pool.len(), pool.bytes()));
        metrics.mempool_transactions.set(count as i64);
        metrics.mempool_bytes.set(bytes as i64);
        metrics.peers.set(peers as i64);
        metrics
            .local_hash_rate
            .set(node.miner().hash_rate().current);
        metrics
            .network_hash_rate
            .set(network_hash_rate(node, 120, -1)?);
        metrics
            .difficulty
            .set(render::difficulty(node.params(), tip.next.bits));
        Ok(())
    })
    .await
    .map_err(|join| RpcError::new(ErrorCode::InternalError, join.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_are_multiaddrs_or_host_and_port() {
        let parse = |text| parse_peer_address(text).map(|address| address.to_string());
        assert_eq!(parse("127.0.0.1:9333").unwrap(), "/ip4/127.0.0.1/tcp/9333");
        assert_eq!(parse("[::1]:9333").unwrap(), "/ip6/::1/tcp/9333");
        assert_eq!(
            parse("seed.example:9333").unwrap(),
            "/dns/seed.example/tcp/9333"
        );
        assert_eq!(parse("/ip4/10.0.0.1/tcp/1").unwrap(), "/ip4/10.0.0.1/tcp/1");
        for bad in ["127.0.0.1", "host:port", ":9333", "/nonsense"] {
            assert_eq!(
                parse(bad).unwrap_err().code,
                ErrorCode::InvalidIpOrSubnet,
                "{bad}"
            );
        }
    }

    #[test]
    fn every_method_has_a_summary_and_help_lists_them_all() {
        let Value::String(text) = help(None).unwrap() else {
            panic!("help is text")
        };
        for method in METHODS {
            assert!(!method.summary.is_empty(), "{}", method.name);
            assert!(text.contains(&method.usage()), "{}", method.name);
        }
        for required in [
            "getblockchaininfo",
            "getblockcount",
            "getbestblockhash",
            "getblockhash",
            "getblock",
            "getblockheader",
            "getchaintips",
            "getdifficulty",
            "getmininginfo",
            "getnetworkhashps",
            "invalidateblock",
            "reconsiderblock",
            "getrawmempool",
            "getmempoolinfo",
            "getmempoolentry",
            "testmempoolaccept",
            "sendrawtransaction",
            "getrawtransaction",
            "gettxout",
            "getpeerinfo",
            "getconnectioncount",
            "addnode",
            "disconnectnode",
            "setban",
            "listbanned",
            "generatetoaddress",
            "getblocktemplate",
            "submitblock",
            "setgenerate",
            "stop",
        ] {
            assert!(
                METHODS.iter().any(|method| method.name == required),
                "{required}"
            );
        }
        assert_eq!(
            help(Some("getblock".into())).unwrap(),
            json!("getblock blockhash ( verbosity )\n\nA block: hex (verbosity 0), with txids (1, default) or with decoded transactions (2).")
        );
    }
}
