//! Conformance with Bitcoin Core 30's response shapes, checked by a maintained typed client
//! (`corepc-client`'s v30 types): every method quarryd implements is called on a node with a
//! peer, an added node, a ban, a mempool entry and confirmed transactions, and its answer
//! must deserialise into Core's type. Calls whose arguments are Bitcoin types (addresses,
//! transactions) go through the client's generic `call` with quarryd's own values.

use corepc_client::client_sync::v30::Client;
use corepc_client::client_sync::Auth;
use corepc_client::types::v30 as core;
use quarry_chain::testing::{pay, signed_spend, test_keypair, Spendable};
use quarry_rpc::testing::{address, eventually, params, Daemon};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

/// A node in the state the typed calls need: one peer, one added node, one ban, mempool
/// entries (a parent and its child) and confirmed transactions.
fn busy_node() -> (Daemon, Daemon, Value, Value, String) {
    let node = Daemon::start("node", &[]);
    let peer = Daemon::start("peer", &[]);
    let banned = Daemon::start("banned", &[]);
    node.rpc("addnode", json!([peer.p2p_address(), "add"]));
    eventually("the peer to connect", Duration::from_secs(60), || {
        (node.rpc("getconnectioncount", json!([])) == json!(1)).then_some(())
    });
    let banned_id = banned.rpc("getnetworkinfo", json!([]))["peerid"].clone();
    node.rpc("setban", json!([banned_id, "add", 3_600]));
    let (_, coin) = node.mature_coin();
    let confirmed = Daemon::spend_of(coin);
    let confirmed_hex = hex::encode(quarry_chain::encode::encode(&confirmed));
    let confirmed_id = node.rpc("sendrawtransaction", json!([confirmed_hex]));
    node.rpc("generatetoaddress", json!([1, address(3)]));
    let (_, coin) = node.mature_coin();
    let pending = Daemon::spend_of(coin);
    let pending_hex = hex::encode(quarry_chain::encode::encode(&pending));
    let pending_id = node.rpc("sendrawtransaction", json!([pending_hex.clone()]));
    // Its child, spending the change back to key 1 before it confirms.
    let change = Spendable::output_of(&pending, 1, test_keypair(1));
    let child = signed_spend(
        params().genesis_hash(),
        &[change],
        vec![pay(6, 1_999_800_000)],
    );
    node.rpc(
        "sendrawtransaction",
        json!([hex::encode(quarry_chain::encode::encode(&child))]),
    );
    (node, peer, confirmed_id, pending_id, pending_hex)
}

/// A JSON value's shape: objects with their keys (map keys that are hashes become `<hash>`),
/// arrays as their first element's shape, scalars as their type.
fn shape(value: &Value) -> Value {
    match value {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("boolean"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| {
                    let is_hash = key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit());
                    let key = if is_hash {
                        "<hash>".to_owned()
                    } else {
                        key.clone()
                    };
                    (key, shape(value))
                })
                .collect(),
        ),
    }
}

/// Compares `answer`'s shape with `tests/snapshots/NAME.json`, reviewed against Core 30's help
/// text; `QUARRY_UPDATE_SNAPSHOTS=1` writes the snapshot instead (review the diff).
fn check_snapshot(name: &str, answer: &Value) -> Result<(), String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.json"));
    let actual = serde_json::to_string_pretty(&shape(answer)).unwrap() + "\n";
    if std::env::var_os("QUARRY_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return Ok(());
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == actual => Ok(()),
        Ok(expected) => Err(format!(
            "{name}: the shape changed from {}:\n{expected}\nto:\n{actual}\n(QUARRY_UPDATE_SNAPSHOTS=1 rewrites it)",
            path.display()
        )),
        Err(_) => Err(format!(
            "{name}: no snapshot at {} (QUARRY_UPDATE_SNAPSHOTS=1 writes it)",
            path.display()
        )),
    }
}

/// A typed call: the method's answer deserialised into Core's type for it.
type TypedCall = fn(&Client, &str, &[Value]) -> Result<(), String>;

fn typed<T: DeserializeOwned>(client: &Client, method: &str, args: &[Value]) -> Result<(), String> {
    client
        .call::<T>(method, args)
        .map(drop)
        .map_err(|error| error.to_string())
}

#[test]
fn every_typed_core_call_deserialises() {
    let (node, _peer, confirmed, pending, pending_hex) = busy_node();
    let cookie = node.cookie();
    let (user, password) = cookie.split_once(':').unwrap();
    let client = Client::new_with_auth(
        &format!("http://{}", node.rpc),
        Auth::UserPass(user.into(), password.into()),
    )
    .unwrap();
    let best = node.rpc("getbestblockhash", json!([]));
    let calls: Vec<(&str, Value, TypedCall)> = vec![
        (
            "getbestblockhash",
            json!([]),
            typed::<core::GetBestBlockHash>,
        ),
        ("getblockcount", json!([]), typed::<core::GetBlockCount>),
        ("getblockhash", json!([1]), typed::<core::GetBlockHash>),
        (
            "getblockchaininfo",
            json!([]),
            typed::<core::GetBlockchainInfo>,
        ),
        (
            "getblockheader",
            json!([best, true]),
            typed::<core::GetBlockHeaderVerbose>,
        ),
        (
            "getblock",
            json!([best, 1]),
            typed::<core::GetBlockVerboseOne>,
        ),
        ("getchaintips", json!([]), typed::<core::GetChainTips>),
        ("getdifficulty", json!([]), typed::<core::GetDifficulty>),
        ("getmempoolinfo", json!([]), typed::<core::GetMempoolInfo>),
        ("getrawmempool", json!([]), typed::<core::GetRawMempool>),
        (
            "getrawmempool",
            json!([true]),
            typed::<core::GetRawMempoolVerbose>,
        ),
        (
            "getmempoolentry",
            json!([pending]),
            typed::<core::GetMempoolEntry>,
        ),
        (
            "gettxout",
            json!([pending, 0, true]),
            typed::<core::GetTxOut>,
        ),
        ("getindexinfo", json!([]), typed::<core::GetIndexInfo>),
        ("getmininginfo", json!([]), typed::<core::GetMiningInfo>),
        (
            "getblocktemplate",
            json!([{"rules": ["segwit"]}]),
            typed::<core::GetBlockTemplate>,
        ),
        (
            "getconnectioncount",
            json!([]),
            typed::<core::GetConnectionCount>,
        ),
        ("getnetworkinfo", json!([]), typed::<core::GetNetworkInfo>),
        ("getpeerinfo", json!([]), typed::<core::GetPeerInfo>),
        (
            "getaddednodeinfo",
            json!([]),
            typed::<core::GetAddedNodeInfo>,
        ),
        ("listbanned", json!([]), typed::<core::ListBanned>),
        (
            "getrawtransaction",
            json!([confirmed, true]),
            typed::<core::GetRawTransactionVerbose>,
        ),
        (
            "decoderawtransaction",
            json!([pending_hex]),
            typed::<core::DecodeRawTransaction>,
        ),
        (
            "testmempoolaccept",
            json!([[pending_hex]]),
            typed::<core::TestMempoolAccept>,
        ),
        (
            "validateaddress",
            json!([address(4)]),
            typed::<core::ValidateAddress>,
        ),
        (
            "getmempoolancestors",
            json!([pending]),
            typed::<core::GetMempoolAncestors>,
        ),
        (
            "getmempooldescendants",
            json!([pending, true]),
            typed::<core::GetMempoolDescendantsVerbose>,
        ),
        (
            "getdeploymentinfo",
            json!([]),
            typed::<core::GetDeploymentInfo>,
        ),
        (
            "waitfornewblock",
            json!([1]),
            typed::<core::WaitForNewBlock>,
        ),
        (
            "waitforblockheight",
            json!([1, 1]),
            typed::<core::WaitForBlockHeight>,
        ),
        ("getblockstats", json!([best]), typed::<core::GetBlockStats>),
        (
            "estimatesmartfee",
            json!([2]),
            typed::<core::EstimateSmartFee>,
        ),
        ("gettxoutsetinfo", json!([]), typed::<core::GetTxOutSetInfo>),
        ("getrpcinfo", json!([]), typed::<core::GetRpcInfo>),
        (
            "getmemoryinfo",
            json!([]),
            typed::<core::GetMemoryInfoStats>,
        ),
        ("getchaintxstats", json!([]), typed::<core::GetChainTxStats>),
        ("getnettotals", json!([]), typed::<core::GetNetTotals>),
        ("ping", json!([]), typed::<()>),
        (
            "generatetoaddress",
            json!([1, address(3)]),
            typed::<core::GenerateToAddress>,
        ),
    ];
    let mut failures: Vec<String> = Vec::new();
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    for (method, params, call) in calls {
        let args = params.as_array().cloned().unwrap_or_default();
        if let Err(error) = call(&client, method, &args) {
            failures.push(format!("{method} {params}: {error}"));
        }
        // The same call again, untyped, against the reviewed snapshot of its shape.
        let count = seen.entry(method).or_default();
        *count += 1;
        let name = match count {
            1 => method.to_owned(),
            n => format!("{method}-{n}"),
        };
        if let Err(difference) = check_snapshot(&name, &node.rpc(method, params.clone())) {
            failures.push(difference);
        }
    }
    assert!(
        failures.is_empty(),
        "{} typed or snapshot checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn statistics_mempool_relatives_and_waits_answer_what_happened() {
    let (node, _peer, confirmed, pending, _) = busy_node();
    // The confirmed spend paid 0.001 coins (100,000 sats) in a block of its own.
    let holder = node.rpc("getrawtransaction", json!([confirmed, true]))["blockhash"].clone();
    let stats = node.rpc(
        "getblockstats",
        json!([holder, ["totalfee", "txs", "ins", "outs"]]),
    );
    assert_eq!(
        stats,
        json!({"totalfee": 100_000, "txs": 2, "ins": 1, "outs": 3})
    );
    // The peer's traffic is counted.
    let totals = node.rpc("getnettotals", json!([]));
    assert!(totals["totalbytesrecv"].as_u64().unwrap() > 0, "{totals}");
    assert!(totals["totalbytessent"].as_u64().unwrap() > 0, "{totals}");
    // getrpcinfo sees itself; getchaintxstats counts every transaction of the chain.
    let info = node.rpc("getrpcinfo", json!([]));
    assert_eq!(
        info["active_commands"][0]["method"],
        json!("getrpcinfo"),
        "{info}"
    );
    let tip = node.rpc("getblockcount", json!([])).as_u64().unwrap();
    let counted: u64 = (0..=tip)
        .map(|height| {
            let hash = node.rpc("getblockhash", json!([height]));
            node.rpc("getblockheader", json!([hash]))["nTx"]
                .as_u64()
                .unwrap()
        })
        .sum();
    let stats = node.rpc("getchaintxstats", json!([2]));
    assert_eq!(stats["txcount"], json!(counted));
    assert_eq!(stats["window_block_count"], json!(2));
    let fee = node.rpc("estimatesmartfee", json!([1]));
    assert_eq!(fee["blocks"], json!(1));
    assert!(fee["feerate"].as_f64().unwrap() > 0.0, "{fee}");
    let descendants = node.rpc("getmempooldescendants", json!([pending]));
    assert_eq!(
        descendants.as_array().map(Vec::len),
        Some(1),
        "{descendants}"
    );
    let child = descendants[0].clone();
    assert_eq!(
        node.rpc("getmempoolancestors", json!([child])),
        json!([pending])
    );
    // The template lists the parent before the child, and the child depends on it.
    let template = node.rpc("getblocktemplate", json!([]));
    let listed: Vec<Value> = template["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tx| tx["txid"].clone())
        .collect();
    assert_eq!(listed, vec![pending.clone(), child.clone()]);
    assert_eq!(template["transactions"][1]["depends"], json!([1]));
    let entry = node.rpc("getmempoolentry", json!([pending]));
    assert_eq!(entry["descendantcount"], json!(2));
    assert!(entry["fees"]["descendant"].as_f64() > entry["fees"]["base"].as_f64());

    // A wait ends when a block arrives, not at its timeout.
    let height = node.rpc("getblockcount", json!([])).as_u64().unwrap();
    let waited = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| node.rpc("waitforblockheight", json!([height + 1, 60_000])));
        std::thread::sleep(Duration::from_millis(300));
        node.rpc("generatetoaddress", json!([1, address(3)]));
        waiter.join().unwrap()
    });
    assert_eq!(waited["height"], json!(height + 1));
    assert_eq!(waited["hash"], node.rpc("getbestblockhash", json!([])));
    // One that times out answers the tip it has.
    let timed_out = node.rpc("waitfornewblock", json!([50]));
    assert_eq!(timed_out["height"], json!(height + 1));

    // A block adds exactly its subsidy to the UTXO set's amount (fees only move coins), and
    // the set's hash changes with it.
    let before = node.rpc("gettxoutsetinfo", json!([]));
    let mined = node.rpc("generatetoaddress", json!([1, address(3)]));
    let after = node.rpc("gettxoutsetinfo", json!([]));
    let subsidy = node.rpc("getblockstats", json!([mined[0], ["subsidy"]]))["subsidy"]
        .as_f64()
        .unwrap();
    let grown = after["total_amount"].as_f64().unwrap() - before["total_amount"].as_f64().unwrap();
    assert!(
        (grown * 1e8 - subsidy).abs() < 0.5,
        "{grown} coins against {subsidy} sats"
    );
    assert_ne!(after["hash_serialized_3"], before["hash_serialized_3"]);
}
