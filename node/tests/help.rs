//! `help METHOD` describes every field a method answers: each method is called on a running
//! node with a peer, an added node, a ban, a mempool transaction and confirmed blocks, and
//! every key of its reply must appear in its help's Result section.

use quarry_chain::encode::encode;
use quarry_rpc::testing::{address, eventually, Daemon};
use serde_json::{json, Value};
use std::time::Duration;

/// The keys of a reply's object, or of the first object of an array.
fn keys(reply: &Value) -> Vec<String> {
    let object = match reply {
        Value::Array(items) => items.first().and_then(Value::as_object),
        other => other.as_object(),
    };
    object.map_or_else(Vec::new, |object| object.keys().cloned().collect())
}

#[test]
fn help_describes_every_field_each_method_answers() {
    let node = Daemon::start("node", &[]);
    let peer = Daemon::start("peer", &[]);
    let stranger = Daemon::start("stranger", &[]);
    let info = peer.rpc("getnetworkinfo", json!([]));
    let peer_address = info["p2paddresses"][0].as_str().unwrap().to_owned();
    node.rpc("addnode", json!([peer_address, "add"]));
    eventually("the peer to connect", Duration::from_secs(60), || {
        (node.rpc("getconnectioncount", json!([])).as_u64()? > 0).then_some(())
    });
    let stranger_id = stranger.rpc("getnetworkinfo", json!([]))["peerid"].clone();
    node.rpc("setban", json!([stranger_id, "add"]));

    let (coinbase, coin) = node.mature_coin();
    let coinbase_txid = json!(coinbase.txid().to_string());
    let block_hash = node.rpc("getblockhash", json!([1]));
    let unspent_coinbase =
        node.rpc("getblock", json!([node.rpc("getblockhash", json!([2]))]))["tx"][0].clone();
    let spend = Daemon::spend_of(coin);
    let spend_hex = hex::encode(encode(&spend));
    let txid = spend.txid().to_string();
    let allowed = node.rpc("testmempoolaccept", json!([[spend_hex]]));
    node.rpc("sendrawtransaction", json!([spend_hex]));
    let refused = node.rpc("testmempoolaccept", json!([[spend_hex]]));
    eventually("the index to follow", Duration::from_secs(60), || {
        let info = node.rpc("getindexinfo", json!([]));
        (info["addressindex"]["synced"] == json!(true)).then_some(())
    });

    let addresses = json!([[address(1)]]);
    let calls: Vec<(&str, Value, Value)> = vec![
        ("getblockchaininfo", json!([]), Value::Null),
        ("getmininginfo", json!([]), Value::Null),
        ("getnetworkinfo", json!([]), Value::Null),
        ("getmempoolinfo", json!([]), Value::Null),
        ("getindexinfo", json!([]), Value::Null),
        ("getchaintips", json!([]), Value::Null),
        ("getblocktemplate", json!([]), Value::Null),
        ("getblock", json!([block_hash]), Value::Null),
        ("getblockheader", json!([block_hash]), Value::Null),
        ("gettxout", json!([unspent_coinbase, 0]), Value::Null),
        ("getmempoolentry", json!([txid]), Value::Null),
        (
            "getrawtransaction",
            json!([coinbase_txid, true]),
            Value::Null,
        ),
        ("decoderawtransaction", json!([spend_hex]), Value::Null),
        ("validateaddress", json!([address(1)]), Value::Null),
        ("validateaddress", json!(["nonsense"]), Value::Null),
        ("getaddressutxos", addresses.clone(), Value::Null),
        ("getaddresshistory", addresses.clone(), Value::Null),
        ("getaddressmempool", addresses, Value::Null),
        ("getpeerinfo", json!([]), Value::Null),
        ("getaddednodeinfo", json!([]), Value::Null),
        ("listbanned", json!([]), Value::Null),
        ("testmempoolaccept", Value::Null, allowed),
        ("testmempoolaccept", Value::Null, refused),
    ];
    let mut missing = Vec::new();
    for (method, params, given) in calls {
        let reply = if params.is_null() {
            given
        } else {
            node.rpc(method, params)
        };
        let fields = keys(&reply);
        assert!(!fields.is_empty(), "{method} answered no fields: {reply}");
        let help = node.rpc("help", json!([method]));
        let help = help.as_str().unwrap();
        let result = help.split("\nResult:\n").nth(1).unwrap_or_default();
        for field in fields {
            if !result.contains(&format!("\"{field}\"")) {
                missing.push(format!("{method}: \"{field}\""));
            }
        }
    }
    assert!(missing.is_empty(), "fields missing from help: {missing:#?}");
    // The mempool entry's layout is the verbose getrawmempool's too.
    let verbose = node.rpc("getrawmempool", json!([true]));
    assert_eq!(
        keys(&verbose[&txid]),
        keys(&node.rpc("getmempoolentry", json!([txid])))
    );
}
