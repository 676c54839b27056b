//! Every RPC method in one table: its name, parameters and one-line summary (for `help` and
//! parameter matching) beside the handler that implements it, so a method cannot be listed
//! without one. The handlers live in one file per Bitcoin Core category.

mod addressindex;
mod blockchain;
mod control;
mod mempool;
mod mining;
mod network;
mod rawtransactions;
mod results;
mod stats;
mod wait;

pub(crate) use blockchain::best_header_height;
pub use mining::network_hash_rate;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use quarry_chain::encode::decode;
use quarry_mempool::MempoolError;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::error::{ErrorCode, RpcError};
use super::params::Params;
use super::render::BestChain;
use crate::node::{Node, NodeError};
use quarry_chain::Address;

/// One parameter of a method.
#[derive(Debug)]
pub struct Param {
    /// Its name, as Bitcoin Core names it (for named calls).
    pub name: &'static str,
    /// Whether it must be given.
    pub required: bool,
    /// Its type, default and meaning, for `help METHOD`.
    pub doc: &'static str,
}

const fn required(name: &'static str, doc: &'static str) -> Param {
    Param {
        name,
        required: true,
        doc,
    }
}

const fn optional(name: &'static str, doc: &'static str) -> Param {
    Param {
        name,
        required: false,
        doc,
    }
}

/// What a method answers.
pub type Reply = Result<Value, RpcError>;

/// The answer of a method that awaits the network task.
pub type PendingReply<'a> = Pin<Box<dyn Future<Output = Reply> + Send + 'a>>;

/// A method's implementation.
#[derive(Clone, Copy)]
pub enum Handler {
    /// Reads the store or waits for the chain actor: runs on a blocking thread.
    Blocking(fn(&RpcContext, &Params) -> Reply),
    /// Talks to the network task: runs on the runtime.
    Async(for<'a> fn(&'a RpcContext, &'a Params) -> PendingReply<'a>),
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Blocking(_) => "Handler::Blocking",
            Self::Async(_) => "Handler::Async",
        })
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
    /// What implements it.
    pub handler: Handler,
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

    /// What `help METHOD` prints, laid out as Bitcoin Core's help: usage, summary, numbered
    /// arguments, the result's fields.
    pub fn describe(&self) -> String {
        let mut text = format!("{}\n\n{}\n", self.usage(), self.summary);
        if !self.params.is_empty() {
            text.push_str("\nArguments:\n");
            let width = self.params.iter().map(|p| p.name.len()).max().unwrap_or(0);
            for (i, param) in self.params.iter().enumerate() {
                let need = if param.required {
                    "required"
                } else {
                    "optional"
                };
                text.push_str(&format!(
                    "{}. {:<width$}  ({need}) {}\n",
                    i + 1,
                    param.name,
                    param.doc
                ));
            }
        }
        text.push_str("\nResult:\n");
        text.push_str(&results::result_of(self.name).concat());
        text
    }
}

macro_rules! methods {
    ($($name:literal, $category:literal, [$($param:expr),*], $summary:literal => $handler:expr;)*) => {
        /// Every method the node answers, by category.
        pub const METHODS: &[MethodInfo] = &[$(MethodInfo {
            name: $name,
            category: $category,
            params: &[$($param),*],
            summary: $summary,
            handler: $handler,
        }),*];
    };
}

methods! {
    "getbestblockhash", "Blockchain", [], "Hash of the tip of the best chain."
        => Handler::Blocking(|c, _| blockchain::best_block_hash(&c.node));
    "getblock", "Blockchain", [required("blockhash", "string: the block's hash"), optional("verbosity", "number, default 1: 0 for hex, 1 for an object with txids, 2 with decoded transactions")],
        "A block: hex (verbosity 0), with txids (1, default) or with decoded transactions (2)."
        => Handler::Blocking(|c, p| blockchain::get_block(&c.node, p));
    "getblockchaininfo", "Blockchain", [], "State of the chain: height, headers, tip, difficulty, work, sync progress."
        => Handler::Blocking(|c, _| blockchain::blockchain_info(&c.node));
    "getblockcount", "Blockchain", [], "Height of the best chain."
        => Handler::Blocking(|c, _| blockchain::block_count(&c.node));
    "getblockhash", "Blockchain", [required("height", "number: a height of the best chain")], "Hash of the best chain's block at a height."
        => Handler::Blocking(|c, p| blockchain::block_hash(&c.node, p));
    "getblockheader", "Blockchain", [required("blockhash", "string: the block's hash"), optional("verbose", "boolean, default true: an object, or false for hex")],
        "A block header: decoded (default) or as hex."
        => Handler::Blocking(|c, p| blockchain::get_block_header(&c.node, p));
    "getchaintips", "Blockchain", [], "Every branch tip with its height, branch length and status."
        => Handler::Blocking(|c, _| blockchain::chain_tips(&c.node));
    "getdifficulty", "Blockchain", [], "Difficulty of the tip (1 at the network's easiest target)."
        => Handler::Blocking(|c, _| blockchain::difficulty(&c.node));
    "getmempoolentry", "Blockchain", [required("txid", "string: a mempool transaction's id")], "A mempool transaction's fee, size, time and relatives."
        => Handler::Blocking(|c, p| mempool::get_mempool_entry(&c.node, p));
    "getmempoolancestors", "Blockchain", [required("txid", "string: a mempool transaction's id"), optional("verbose", "boolean, default false: entries by txid instead of txids")],
        "The mempool transactions a mempool transaction spends from, directly or not."
        => Handler::Blocking(|c, p| mempool::mempool_relatives(&c.node, p, quarry_mempool::Mempool::ancestors));
    "getmempooldescendants", "Blockchain", [required("txid", "string: a mempool transaction's id"), optional("verbose", "boolean, default false: entries by txid instead of txids")],
        "The mempool transactions spending from a mempool transaction, directly or not."
        => Handler::Blocking(|c, p| mempool::mempool_relatives(&c.node, p, quarry_mempool::Mempool::descendants));
    "getdeploymentinfo", "Blockchain", [optional("blockhash", "string, default the tip: the block to report at")],
        "Soft-fork deployments at a block: Quarry has none, so the list is empty."
        => Handler::Blocking(|c, p| blockchain::deployment_info(&c.node, p));
    "waitfornewblock", "Blockchain", [optional("timeout", "number, default 0: milliseconds to wait (0: up to an hour)")],
        "Waits for the tip to change, or the timeout; returns the tip then."
        => Handler::Blocking(|c, p| wait::for_new_block(&c.node, p));
    "waitforblockheight", "Blockchain", [required("height", "number: the height to wait for"), optional("timeout", "number, default 0: milliseconds to wait (0: up to an hour)")],
        "Waits for the best chain to reach a height, or the timeout; returns the tip then."
        => Handler::Blocking(|c, p| wait::for_block_height(&c.node, p));
    "getblockstats", "Blockchain", [required("hash_or_height", "string or number: the block's hash, or its height on the best chain"), optional("stats", "array of strings, default all: the statistics to give")],
        "Fee, size and output statistics of a block (fees from its undo data, rates in sats/vB)."
        => Handler::Blocking(|c, p| stats::block_stats(&c.node, p));
    "getchaintxstats", "Blockchain", [optional("nblocks", "number, default one month of blocks: the window's size"), optional("blockhash", "string, default the tip: the window's last block")],
        "Transactions in the chain up to a block, and their count and rate over a window before it."
        => Handler::Blocking(|c, p| stats::chain_tx_stats(&c.node, p));
    "gettxoutsetinfo", "Blockchain", [optional("hash_type", "string, ignored: the hash is always hash_serialized_3 of Quarry's encoding")],
        "The UTXO set: count, total amount, and a hash of its contents (an audit of the supply)."
        => Handler::Blocking(|c, _| stats::tx_out_set_info(&c.node));
    "getmempoolinfo", "Blockchain", [], "Mempool size, bytes, fees and policy limits."
        => Handler::Blocking(|c, _| Ok(mempool::mempool_info(&c.node)));
    "getrawmempool", "Blockchain", [optional("verbose", "boolean, default false: entries by txid instead of txids")], "Txids in the mempool, or entries by txid when verbose."
        => Handler::Blocking(|c, p| Ok(mempool::raw_mempool(&c.node, p.or(0, false)?)));
    "gettxout", "Blockchain", [required("txid", "string: the transaction's id"), required("n", "number: the output's index"), optional("include_mempool", "boolean, default true: an output spent in the mempool counts as spent")],
        "An unspent output (null when spent or unknown)."
        => Handler::Blocking(|c, p| blockchain::tx_out(&c.node, p));
    "getindexinfo", "Blockchain", [], "Height each index has reached."
        => Handler::Blocking(|c, _| blockchain::index_info(&c.node));
    "invalidateblock", "Blockchain", [required("blockhash", "string: the block to mark invalid")], "Marks a block and its descendants invalid; the chain moves to the best other branch."
        => Handler::Blocking(|c, p| blockchain::invalidate_block(&c.node, p));
    "reconsiderblock", "Blockchain", [required("blockhash", "string: the block to reconsider")], "Removes an invalidity mark set by invalidateblock and its descendants."
        => Handler::Blocking(|c, p| blockchain::reconsider_block(&c.node, p));
    "getaddressutxos", "Addressindex", [required("addresses", "array of strings, or {\"addresses\": [...]}: the addresses")],
        "Confirmed unspent outputs of addresses, from the address index."
        => Handler::Blocking(|c, p| addressindex::address_utxos(&c.node, &p.addresses(0, c.node.params())?));
    "getaddresshistory", "Addressindex", [required("addresses", "array of strings, or {\"addresses\": [...]}: the addresses")],
        "Confirmed transactions paying or spending addresses, oldest first, with amounts."
        => Handler::Blocking(|c, p| addressindex::address_history(&c.node, &p.addresses(0, c.node.params())?));
    "getaddressmempool", "Addressindex", [required("addresses", "array of strings, or {\"addresses\": [...]}: the addresses")],
        "Mempool outputs paying and inputs spending addresses."
        => Handler::Blocking(|c, p| addressindex::address_mempool(&c.node, &p.addresses(0, c.node.params())?));
    "estimatesmartfee", "Util", [required("conf_target", "number: blocks within which to confirm (1 to 1008)"), optional("estimate_mode", "string, ignored: unset, economical or conservative")],
        "A fee rate from the last max(2 × conf_target, 6) blocks' fee rates: their median, up to the 90th percentile for the next block."
        => Handler::Blocking(|c, p| stats::estimate_smart_fee(&c.node, p));
    "getblocktemplate", "Mining", [optional("template_request", "object, ignored: BIP22 capabilities (accepted for compatibility)")], "A block template to mine on (BIP22 fields)."
        => Handler::Blocking(|c, _| mining::block_template(&c.node));
    "getmininginfo", "Mining", [], "Height, difficulty, network and local hash rate, mining state."
        => Handler::Blocking(|c, _| mining::mining_info(&c.node));
    "getnetworkhashps", "Mining", [optional("nblocks", "number, default 120: blocks to average over (-1: since the last retarget)"), optional("height", "number, default -1: estimate at this height (-1: the tip)")],
        "Network hashes per second estimated over the last nblocks (default 120)."
        => Handler::Blocking(|c, p| Ok(json!(mining::network_hash_rate(&c.node, p.or(0, 120)?, p.or(1, -1)?)?)));
    "submitblock", "Mining", [required("hexdata", "string: the block, hex")], "Submits a mined block; null when accepted, else the reason."
        => Handler::Blocking(|c, p| mining::submit_block(&c.node, p));
    "generatetoaddress", "Generating", [required("nblocks", "number: blocks to mine"), required("address", "string: where the coinbases pay"), optional("maxtries", "number, default unlimited: nonces to try in all")],
        "Mines blocks now, paying an address; returns their hashes."
        => Handler::Async(|c, p| Box::pin(mining::generate_to_address(&c.node, p)));
    "setgenerate", "Generating", [required("generate", "boolean: true starts, false stops"), optional("genproclimit", "number, default as configured: mining threads (0: one per CPU)"), optional("address", "string, default --miner-address: where the coinbases pay")],
        "Starts (true) or stops (false) background mining; genproclimit sets threads."
        => Handler::Blocking(mining::set_generate);
    "getgenerate", "Generating", [], "Whether the background miner runs."
        => Handler::Blocking(|c, _| mining::get_generate(&c.node));
    "addnode", "Network", [required("node", "string: a multiaddr (/ip4/…/tcp/…/p2p/…) or host:port"), required("command", "string: add, remove or onetry")],
        "add (kept connected), remove, or onetry a peer address (multiaddr or host:port)."
        => Handler::Async(|c, p| Box::pin(network::add_node(&c.node, p)));
    "disconnectnode", "Network", [optional("address", "string: the peer's address"), optional("nodeid", "string: the peer's id (instead of the address)")], "Disconnects a peer by address or peer id."
        => Handler::Async(|c, p| Box::pin(network::disconnect_node(&c.node, p)));
    "getaddednodeinfo", "Network", [optional("node", "string, default all: only this added node")], "Peers added with addnode and whether they are connected."
        => Handler::Async(|c, p| Box::pin(network::added_node_info(&c.node, p)));
    "getconnectioncount", "Network", [], "Number of connected peers."
        => Handler::Async(|c, _| Box::pin(network::connection_count(&c.node)));
    "getnetworkinfo", "Network", [], "Version, peer id, listen addresses, connection counts."
        => Handler::Async(|c, _| Box::pin(network::network_info(&c.node)));
    "getpeerinfo", "Network", [], "Connected peers: address, direction, agent, misbehaviour score."
        => Handler::Async(|c, _| Box::pin(network::peer_info(&c.node)));
    "listbanned", "Network", [], "Banned peers with the end of each ban and its reason."
        => Handler::Async(|c, _| Box::pin(network::list_banned(&c.node)));
    "setban", "Network", [required("subnet", "string: a peer id, or the address of a connected peer"), required("command", "string: add or remove"), optional("bantime", "number, default 86400: seconds (or the end, with absolute)"), optional("absolute", "boolean, default false: bantime is a Unix time")],
        "add or remove a ban of a peer (peer id or address of a connected peer)."
        => Handler::Async(|c, p| Box::pin(network::set_ban(&c.node, p)));
    "clearbanned", "Network", [], "Lifts every ban."
        => Handler::Async(|c, _| Box::pin(network::clear_banned(&c.node)));
    "decoderawtransaction", "Rawtransactions", [required("hexstring", "string: the transaction, hex")], "Decodes a transaction's hex."
        => Handler::Blocking(|c, p| rawtransactions::decode_raw_transaction(&c.node, p));
    "getrawtransaction", "Rawtransactions", [required("txid", "string: the transaction's id"), optional("verbose", "boolean, default false: decoded, with its block, instead of hex"), optional("blockhash", "string: look in this block only")],
        "A mempool or confirmed transaction (from the transaction index): hex, or decoded when verbose."
        => Handler::Blocking(|c, p| rawtransactions::raw_transaction(&c.node, p));
    "sendrawtransaction", "Rawtransactions", [required("hexstring", "string: the signed transaction, hex"), optional("maxfeerate", "number, default 0.10: the highest fee rate accepted, coins per kvB (0: no limit)")],
        "Validates a transaction into the mempool and relays it; returns its txid."
        => Handler::Async(|c, p| Box::pin(mempool::send_raw_transaction(&c.node, p)));
    "testmempoolaccept", "Rawtransactions", [required("rawtxs", "array of strings: signed transactions, hex"), optional("maxfeerate", "number, default 0.10: the highest fee rate accepted, coins per kvB")],
        "Whether transactions would be accepted into the mempool, without adding them."
        => Handler::Blocking(|c, p| mempool::test_mempool_accept(&c.node, p));
    "validateaddress", "Util", [required("address", "string: the address")], "Whether an address is valid for this network, and its key."
        => Handler::Blocking(|c, p| control::validate_address(&c.node, p));
    "help", "Control", [optional("command", "string: a method to describe")], "Lists methods, or describes one."
        => Handler::Blocking(|_, p| control::help(p.optional(0)?));
    "stop", "Control", [], "Shuts the node down cleanly."
        => Handler::Blocking(|c, _| control::stop(c));
    "getnettotals", "Network", [], "Bytes received and sent over every connection since the node started."
        => Handler::Blocking(|c, _| Ok(network::net_totals(&c.node)));
    "ping", "Network", [], "Accepted for compatibility: libp2p's ping protocol already measures every peer every 15 s. Returns null."
        => Handler::Blocking(|_, _| Ok(Value::Null));
    "getrpcinfo", "Control", [], "The calls being answered, with how long each has run."
        => Handler::Blocking(|c, _| Ok(control::rpc_info(c)));
    "getmemoryinfo", "Control", [optional("mode", "string, default stats: stats (mallocinfo is not available)")],
        "Locked-memory statistics: Quarry locks no memory, so every count is 0."
        => Handler::Blocking(|_, p| control::memory_info(p));
    "uptime", "Control", [], "Seconds since the node started."
        => Handler::Blocking(|c, _| control::uptime(&c.node));
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
    /// The calls being answered, for `getrpcinfo`.
    pub active: ActiveCalls,
}

/// The calls being answered: method and start, by a number each call draws.
#[derive(Debug, Default)]
pub struct ActiveCalls {
    next: std::sync::atomic::AtomicU64,
    calls: std::sync::Mutex<std::collections::BTreeMap<u64, (&'static str, std::time::Instant)>>,
}

impl ActiveCalls {
    fn calls(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::BTreeMap<u64, (&'static str, std::time::Instant)>,
    > {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a call of `method` until the returned guard is dropped.
    fn start(&self, method: &'static str) -> ActiveCall<'_> {
        let number = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.calls()
            .insert(number, (method, std::time::Instant::now()));
        ActiveCall {
            calls: self,
            number,
        }
    }

    /// Each call in progress: its method and microseconds so far, oldest first.
    pub fn snapshot(&self) -> Vec<(&'static str, u128)> {
        self.calls()
            .values()
            .map(|(method, since)| (*method, since.elapsed().as_micros()))
            .collect()
    }
}

/// A call in progress; dropping it (the call ended, or its client went away) forgets it.
struct ActiveCall<'a> {
    calls: &'a ActiveCalls,
    number: u64,
}

impl Drop for ActiveCall<'_> {
    fn drop(&mut self) {
        self.calls.calls().remove(&self.number);
    }
}

/// A typed reply as the JSON the server sends.
fn reply(value: impl Serialize) -> Result<Value, RpcError> {
    serde_json::to_value(value)
        .map_err(|error| RpcError::new(ErrorCode::InternalError, error.to_string()))
}

fn invalid_parameter(message: impl Into<String>) -> RpcError {
    RpcError::new(ErrorCode::InvalidParameter, message)
}

/// Core's -5 error, worded as Core words it ("Block not found", "Transaction not in mempool").
fn not_found(message: &str) -> RpcError {
    RpcError::new(ErrorCode::InvalidAddressOrKey, message)
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

fn best(node: &Node) -> BestChain {
    BestChain {
        tip_height: node.tip().height,
    }
}

/// What getblockchaininfo, getmininginfo and getnetworkinfo warn about: a failed chain store.
/// What the node warns about, one message each (Core 28's array).
fn warnings(node: &Node) -> Vec<String> {
    node.reader()
        .store_failure()
        .map(|failure| {
            format!("the chain store failed ({failure}); quarryd is shutting down: free disk space or repair the disk, then restart")
        })
        .into_iter()
        .collect()
}

/// Answers the call of method `name` with the raw `params`.
pub async fn call(context: &Arc<RpcContext>, name: &str, raw: Option<Value>) -> Reply {
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
    let _active = context.active.start(method.name);
    match method.handler {
        Handler::Async(handler) => handler(context, &params).await,
        Handler::Blocking(handler) => {
            let context = Arc::clone(context);
            tokio::task::spawn_blocking(move || handler(&context, &params))
                .await
                .map_err(|join| RpcError::new(ErrorCode::InternalError, join.to_string()))?
        }
    }
}
