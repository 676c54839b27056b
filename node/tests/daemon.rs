//! End-to-end tests of real `quarryd` processes driven over JSON-RPC and `quarry-cli`.

use std::process::Command;
use std::time::Duration;

use base64::Engine;

use quarry_rpc::testing::{address, eventually, quarry_cli, quarryd, Daemon};
use serde_json::{json, Value};

const CONVERGE: Duration = Duration::from_secs(60);

fn utxos_of(daemon: &Daemon, address: &str) -> Vec<Value> {
    daemon
        .rpc("getaddressutxos", json!([{ "addresses": [address] }]))
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn mined_coins_show_up_for_the_address_and_mature() {
    let node = Daemon::start("miner", &[]);
    let miner = address(1);
    let hashes = node.rpc("generatetoaddress", json!([1, miner]));
    let first = hashes[0].as_str().unwrap().to_owned();
    assert_eq!(node.rpc("getblockcount", json!([])), json!(1));
    assert_eq!(node.rpc("getbestblockhash", json!([])), json!(first));

    // The index answers once it has followed the chain.
    let coins = eventually("the index to see the coinbase", CONVERGE, || {
        let coins = utxos_of(&node, &miner);
        (!coins.is_empty()).then_some(coins)
    });
    assert_eq!(coins.len(), 1);
    assert_eq!(coins[0]["amount"], json!(50.0));
    assert_eq!(coins[0]["coinbase"], json!(true));
    assert_eq!(coins[0]["mature"], json!(false));
    assert_eq!(coins[0]["confirmations"], json!(1));

    // Maturity is 3 on this network: two more blocks (to someone else) and it may be spent in
    // the next one.
    node.rpc("generatetoaddress", json!([2, address(2)]));
    let coins = eventually("the coinbase to mature", CONVERGE, || {
        let coins = utxos_of(&node, &miner);
        (coins.first()?["confirmations"] == json!(3)).then_some(coins)
    });
    assert_eq!(coins[0]["mature"], json!(true));

    // The same coin through Bitcoin Core's calls.
    let txid = coins[0]["txid"].as_str().unwrap();
    let out = node.rpc("gettxout", json!([txid, 0]));
    assert_eq!(out["value"], json!(50.0));
    assert_eq!(out["confirmations"], json!(3));
    assert_eq!(out["scriptPubKey"]["address"], json!(miner));
    let tx = node.rpc("getrawtransaction", json!([txid, true]));
    assert_eq!(tx["blockhash"], json!(first));
    assert_eq!(tx["confirmations"], json!(3));
    let block = node.rpc("getblock", json!([first]));
    assert_eq!(block["height"], json!(1));
    assert_eq!(block["confirmations"], json!(3));
    assert_eq!(block["tx"], json!([txid]));
    let history = node.rpc("getaddresshistory", json!([[miner]]));
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["received"], json!(50.0));
    let header_hex = node.rpc("getblockheader", json!([first, false]));
    assert_eq!(header_hex.as_str().unwrap().len(), 160);

    // quarry-cli finds the cookie in the data directory.
    let output = Command::new(quarry_cli())
        .args([
            "--network",
            quarry_rpc::testing::write_params(node.dir.path())
                .to_str()
                .unwrap(),
        ])
        .args(["--datadir", node.dir.path().to_str().unwrap()])
        .args(["--rpc-connect", &node.rpc.to_string()])
        .args(["getblockhash", "1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), first);
}

#[test]
fn two_nodes_joined_by_addnode_converge_both_ways() {
    let a = Daemon::start("a", &[]);
    let b = Daemon::start("b", &[]);
    a.rpc("generatetoaddress", json!([5, address(1)]));
    b.rpc("addnode", json!([a.p2p_address(), "add"]));
    let added = b
        .call("addnode", json!([a.p2p_address(), "add"]))
        .unwrap_err();
    assert_eq!(added.code, -23);
    let tip = a.rpc("getbestblockhash", json!([]));
    eventually("b to sync a's chain", CONVERGE, || {
        (b.rpc("getbestblockhash", json!([])) == tip).then_some(())
    });
    assert_eq!(a.rpc("getconnectioncount", json!([])), json!(1));
    let peers = b.rpc("getpeerinfo", json!([]));
    assert_eq!(peers[0]["inbound"], json!(false));
    assert!(peers[0]["subver"].as_str().unwrap().contains("quarry"));

    // And back: b's blocks reach a.
    b.rpc("generatetoaddress", json!([2, address(2)]));
    let tip = b.rpc("getbestblockhash", json!([]));
    eventually("a to take b's blocks", CONVERGE, || {
        (a.rpc("getbestblockhash", json!([])) == tip).then_some(())
    });
    assert_eq!(a.rpc("getblockcount", json!([])), json!(7));
}

fn tips_by_status(node: &Daemon) -> Vec<(u64, String)> {
    let mut tips: Vec<(u64, String)> = node
        .rpc("getchaintips", json!([]))
        .as_array()
        .unwrap()
        .iter()
        .map(|tip| {
            (
                tip["height"].as_u64().unwrap(),
                tip["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    tips.sort();
    tips
}

#[test]
fn a_reorganisation_forced_by_invalidateblock_shows_in_chain_tips_and_metrics() {
    let node = Daemon::start("node", &[]);
    let blocks = node.rpc("generatetoaddress", json!([3, address(1)]));
    node.rpc("invalidateblock", json!([blocks[1]]));
    assert_eq!(node.rpc("getblockcount", json!([])), json!(1));
    assert_eq!(
        tips_by_status(&node),
        vec![(1, "active".into()), (3, "invalid".into())]
    );

    // A new branch overtakes; the old one stays invalid until reconsidered.
    node.rpc("generatetoaddress", json!([3, address(2)]));
    assert_eq!(
        tips_by_status(&node),
        vec![(3, "invalid".into()), (4, "active".into())]
    );
    // Reconsidered blocks are stored but, once refused, not counted as validated until they
    // connect again: Bitcoin Core's "valid-headers".
    node.rpc("reconsiderblock", json!([blocks[1]]));
    assert_eq!(
        tips_by_status(&node),
        vec![(3, "valid-headers".into()), (4, "active".into())]
    );
    assert_eq!(node.rpc("getblockcount", json!([])), json!(4));
    let old_tip = node.rpc("getblock", json!([blocks[2]]));
    assert_eq!(old_tip["confirmations"], json!(-1));

    // Branch tips are recounted within a second of a change.
    let lines = [
        "quarry_reorgs_total 1",
        "quarry_height 4",
        "quarry_last_reorg_depth 2",
        "quarry_chain_tips{status=\"valid-headers\"} 1",
        "quarry_stale_blocks 1",
    ];
    eventually("the metrics to count the reorganisation", CONVERGE, || {
        let text = node.metrics_text();
        lines.iter().all(|line| text.contains(line)).then_some(())
    });
    // The index followed the reorganisation: the abandoned coinbases are gone.
    let coins = eventually("the index to follow the reorganisation", CONVERGE, || {
        let coins = utxos_of(&node, &address(1));
        (coins.len() == 1).then_some(coins)
    });
    assert_eq!(coins[0]["height"], json!(1));
}

#[test]
fn bad_requests_get_errors_and_the_node_keeps_serving() {
    let mut node = Daemon::start("node", &[]);
    let cookie = node.cookie();
    let call = |body: &str| node.post(body.to_owned(), Some(&cookie));

    // No credentials, or wrong ones: 401 and no data.
    let (status, body) = node.post(r#"{"method":"getblockcount"}"#, None);
    assert_eq!((status, body.as_str()), (401, ""));
    let (status, body) = node.post(r#"{"method":"getblockcount"}"#, Some("__cookie__:guess"));
    assert_eq!((status, body.as_str()), (401, ""));

    let error_of = |(status, body): (u16, String)| {
        let reply: Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{status}: {body}"));
        (status, reply["error"]["code"].as_i64().unwrap())
    };
    assert_eq!(error_of(call("{not json")), (500, -32700));
    assert_eq!(
        error_of(call(r#"{"method":"nosuchmethod","id":1}"#)),
        (404, -32601)
    );
    // A typo gets the method meant.
    let typo = node.call("getblokcount", json!([])).unwrap_err();
    assert_eq!(typo.code, -32601);
    assert!(
        typo.message.contains("did you mean getblockcount?"),
        "{typo:?}"
    );
    assert_eq!(error_of(call(r#"{"method":7,"id":1}"#)), (400, -32600));
    assert_eq!(
        error_of(call(r#"{"method":"getblockhash","params":["x"],"id":1}"#)),
        (500, -3)
    );
    assert_eq!(
        error_of(call(r#"{"method":"getblockhash","params":[999],"id":1}"#)),
        (500, -8)
    );
    assert_eq!(
        error_of(call(r#"{"method":"getblockhash","params":[],"id":1}"#)),
        (500, -1)
    );
    assert_eq!(
        error_of(call(r#"{"method":"getblock","params":["00"],"id":1}"#)),
        (500, -8)
    );
    assert_eq!(
        error_of(call(
            r#"{"method":"sendrawtransaction","params":["zz"],"id":1}"#
        )),
        (500, -22)
    );
    assert_eq!(
        error_of(call(
            r#"{"method":"sendrawtransaction","params":["0011"],"id":1}"#
        )),
        (500, -22)
    );
    assert_eq!(
        error_of(call(r#"{"method":"submitblock","params":["00"],"id":1}"#)),
        (500, -22)
    );
    assert_eq!(
        error_of(call(
            r#"{"method":"generatetoaddress","params":[1,"bc1qnope"],"id":1}"#
        )),
        (500, -5)
    );
    assert_eq!(
        error_of(call(
            r#"{"method":"getblock","params":{"blockhash":"00","nope":1},"id":1}"#
        )),
        (500, -8)
    );
    // JSON-RPC 2.0: errors come with status 200 and no `result`.
    let (status, body) = call(r#"{"jsonrpc":"2.0","method":"nosuchmethod","id":"x"}"#);
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200);
    assert_eq!(reply["error"]["code"], json!(-32601));
    assert!(reply.get("result").is_none());
    // A batch mixes both styles and skips notifications.
    let (status, body) = call(
        r#"[{"method":"getblockcount","id":1},{"jsonrpc":"2.0","method":"getblockcount","id":2},
            {"jsonrpc":"2.0","method":"getblockcount"},{"method":"nosuchmethod","id":3}]"#,
    );
    let replies: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200);
    assert_eq!(replies.as_array().unwrap().len(), 3);
    assert_eq!(replies[0], json!({"result": 0, "error": null, "id": 1}));
    assert_eq!(replies[1], json!({"jsonrpc": "2.0", "result": 0, "id": 2}));
    assert_eq!(replies[2]["error"]["code"], json!(-32601));
    // A request over the size limit is refused before it is read.
    let huge = format!(
        r#"{{"method":"getblockcount","params":["{}"]}}"#,
        "a".repeat(9 << 20)
    );
    // (The server answers 413 and closes; a client still sending may see only the close.)
    let (status, body) = call(&huge);
    assert!(status == 413 || status == 0, "{status}: {body}");

    // Still serving, still the same chain.
    node.rpc("generatetoaddress", json!([1, address(1)]));
    assert_eq!(node.rpc("getblockcount", json!([])), json!(1));

    // A second daemon on the same data directory is refused.
    let second = Command::new(quarryd())
        .args(node.base_args())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(
        message.contains("another quarryd is already using"),
        "{message}"
    );

    // `stop` shuts down cleanly; the cookie is removed; a restart finds the chain.
    assert_eq!(node.rpc("stop", json!([])), json!("Quarry server stopping"));
    assert!(node.wait_exit().success(), "{}", node.log());
    assert!(!node.data_dir().join(".cookie").exists());
    node.restart(&[]);
    assert_eq!(node.rpc("getblockcount", json!([])), json!(1));
    assert!(node.terminate().success(), "{}", node.log());
}

#[test]
fn settings_errors_are_clear_and_stop_the_daemon_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quarryd.toml");
    std::fs::write(
        &config,
        "network = \"regtest\"\n[rpc]\nbnd = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let datadir = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(quarryd()).args(args).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, message) = run(&["--datadir", datadir]);
    assert_eq!(code, Some(2));
    assert!(message.contains("unknown field `bnd`"), "{message}");
    assert!(message.contains("quarryd.toml"), "{message}");

    std::fs::remove_file(&config).unwrap();
    let (code, message) = run(&["--datadir", datadir, "--network", "regtest", "--mine"]);
    assert_eq!(code, Some(2));
    assert!(message.contains("--miner-address"), "{message}");
    let (code, message) = run(&[
        "--datadir",
        datadir,
        "--network",
        "regtest",
        "--miner-address",
        "qr1pnotanaddress",
    ]);
    assert_eq!(code, Some(2));
    assert!(message.contains("invalid miner address"), "{message}");
    let (code, message) = run(&["--datadir", datadir, "--network", "nosuchnet"]);
    assert_eq!(code, Some(2));
    assert!(
        message.contains("'nosuchnet' is not a network: use main, testnet or regtest"),
        "{message}"
    );
    assert_eq!(
        message.matches("nosuchnet").count(),
        1,
        "said once: {message}"
    );

    // quarry-cli without a daemon says what to check.
    let output = Command::new(quarry_cli())
        .args([
            "--datadir",
            datadir,
            "--network",
            "regtest",
            "--rpc-user",
            "u",
            "--rpc-password",
            "p",
        ])
        .args([
            "--rpc-connect",
            &format!("127.0.0.1:{}", quarry_rpc::testing::free_port()),
            "getblockcount",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("could not connect to the server"),
        "{message}"
    );
}

/// The hash-rate cap sets a background miner's share; blocks asked for now come at once.
#[test]
fn generate_ignores_the_background_miners_cap() {
    let node = Daemon::start("node", &["--max-hash-rate", "1", "--miner-threads", "1"]);
    let started = std::time::Instant::now();
    let hashes = node.rpc("generatetoaddress", json!([50, address(3)]));
    assert_eq!(hashes.as_array().map(Vec::len), Some(50));
    // At one hash per second, 50 blocks of about two hashes each take minutes.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_background_miner_starts_and_stops_over_rpc() {
    let node = Daemon::start(
        "node",
        &["--max-hash-rate", "20000", "--miner-threads", "1"],
    );
    let error = node.call("setgenerate", json!([true])).unwrap_err();
    assert_eq!(error.code, -8);
    node.rpc("setgenerate", json!([true, 1, address(3)]));
    assert_eq!(node.rpc("getgenerate", json!([])), json!(true));
    eventually("the miner to find two blocks", CONVERGE, || {
        (node.rpc("getblockcount", json!([])).as_u64()? >= 2).then_some(())
    });
    let info = node.rpc("getmininginfo", json!([]));
    assert_eq!(info["generate"], json!(true));
    assert!(info["networkhashps"].as_f64().unwrap() > 0.0, "{info}");
    node.rpc("setgenerate", json!([false]));
    assert_eq!(node.rpc("getgenerate", json!([])), json!(false));
    let height = node.rpc("getblockcount", json!([]));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(node.rpc("getblockcount", json!([])), height);
    let paid: Vec<Value> = node
        .rpc("getaddresshistory", json!([address(3)]))
        .as_array()
        .unwrap()
        .clone();
    assert!(!paid.is_empty());
}

#[test]
fn a_configured_user_and_password_replace_the_cookie() {
    let node = Daemon::start_with(
        "node",
        &["--rpc-user", "alice", "--rpc-password", "correct horse"],
        Some("alice:correct horse"),
    );
    assert_eq!(node.rpc("getblockcount", json!([])), json!(0));
    assert!(!node.data_dir().join(".cookie").exists());
    let (status, _) = node.post(r#"{"method":"getblockcount"}"#, Some("alice:wrong"));
    assert_eq!(status, 401);
    // python-bitcoinlib and bitcoin-cli send 1.0-style requests without a `jsonrpc` field.
    let (status, body) = node.post(
        r#"{"version":"1.1","method":"getblockcount","params":[],"id":1}"#,
        Some("alice:correct horse"),
    );
    assert_eq!(
        (status, body.trim()),
        (200, r#"{"result":0,"error":null,"id":1}"#),
        "Bitcoin Core's key order"
    );
}

#[test]
fn an_external_miner_works_from_getblocktemplate_to_submitblock() {
    use quarry_chain::block::merkle_root;
    use quarry_chain::encode::encode;
    use quarry_chain::testing::{mine, test_key};
    use quarry_chain::{Amount, Block, BlockHeader, CompactTarget, Transaction, TxOut};

    let node = Daemon::start("node", &[]);
    let template = node.rpc("getblocktemplate", json!([{"rules": []}]));
    let height = template["height"].as_u64().unwrap() as u32;
    assert_eq!(height, 1);
    let coinbase = Transaction::new_coinbase(
        height,
        0,
        b"external",
        vec![TxOut {
            value: Amount::from_sat(template["coinbasevalue"].as_u64().unwrap()),
            pubkey: test_key(9),
        }],
    );
    let (root, _) = merkle_root(vec![coinbase.txid()]);
    let bits = u32::from_str_radix(template["bits"].as_str().unwrap(), 16).unwrap();
    let mut header = BlockHeader {
        version: template["version"].as_i64().unwrap() as i32,
        prev_blockhash: template["previousblockhash"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        merkle_root: root,
        time: template["curtime"].as_u64().unwrap() as u32,
        bits: CompactTarget::from_consensus(bits),
        nonce: 0,
    };
    assert!(mine(&mut header));
    let block = Block {
        header,
        transactions: vec![coinbase],
    };
    let hex = hex::encode(encode(&block));
    assert_eq!(node.rpc("submitblock", json!([hex])), Value::Null);
    assert_eq!(
        node.rpc("getbestblockhash", json!([])),
        json!(block.block_hash().to_string())
    );
    assert_eq!(node.rpc("submitblock", json!([hex])), json!("duplicate"));

    // A block breaking a rule is answered with the reason, and changes nothing.
    let mut bad = block.clone();
    bad.header.prev_blockhash = block.block_hash();
    bad.header.nonce = 0;
    assert!(mine(&mut bad.header));
    let reason = node.rpc("submitblock", json!([hex::encode(encode(&bad))]));
    assert!(reason.is_string(), "{reason}");
    assert_eq!(node.rpc("getblockcount", json!([])), json!(1));
}

#[test]
fn a_transaction_goes_from_sendrawtransaction_through_the_mempool_into_a_block() {
    use quarry_chain::encode::encode;
    use quarry_chain::testing::{pay, signed_spend};

    let node = Daemon::start("node", &[]);
    let (coinbase, coin) = node.mature_coin();
    let genesis = quarry_rpc::testing::params().genesis_hash();
    // 50 coins: 30 to key 5, 19.999 back to key 1, 0.001 fee.
    let spend = Daemon::spend_of(coin);
    let spend_hex = hex::encode(encode(&spend));
    let txid = spend.txid().to_string();

    // 40 coins of fee is far over sendrawtransaction's default maxfeerate (0.10 per kB), as
    // Bitcoin Core refuses; the pool stays empty.
    let greedy = signed_spend(genesis, &[coin], vec![pay(5, 1_000_000_000)]);
    let greedy_hex = hex::encode(encode(&greedy));
    let refused = node
        .call("sendrawtransaction", json!([greedy_hex]))
        .unwrap_err();
    assert_eq!(refused.code, -25);
    assert!(refused.message.contains("maxfeerate"), "{refused:?}");
    let refused = node
        .call("sendrawtransaction", json!([greedy_hex, -1]))
        .unwrap_err();
    assert_eq!(refused.code, -8);
    assert_eq!(node.rpc("getrawmempool", json!([])), json!([]));

    let verdict = node.rpc("testmempoolaccept", json!([[spend_hex]]));
    assert_eq!(verdict[0]["allowed"], json!(true), "{verdict}");
    assert_eq!(verdict[0]["fees"]["base"], json!(0.001));
    assert_eq!(
        node.rpc("sendrawtransaction", json!([spend_hex])),
        json!(txid)
    );
    // Sending it again answers the txid, as Bitcoin Core does.
    assert_eq!(
        node.rpc("sendrawtransaction", json!([spend_hex])),
        json!(txid)
    );
    assert_eq!(node.rpc("getrawmempool", json!([])), json!([txid]));
    let entry = node.rpc("getmempoolentry", json!([txid]));
    assert_eq!(entry["fees"]["base"], json!(0.001));
    let info = node.rpc("getmempoolinfo", json!([]));
    assert_eq!(info["size"], json!(1));
    assert_eq!(info["bytes"], json!(spend.encoded_size()));
    let decoded = node.rpc("getrawtransaction", json!([txid, true]));
    assert_eq!(
        decoded["vout"][0]["scriptPubKey"]["address"],
        json!(address(5))
    );
    assert!(decoded.get("blockhash").is_none());

    // The spent coin is gone from gettxout's mempool view; the pool shows the address's flows.
    assert_eq!(
        node.rpc("gettxout", json!([coinbase.txid().to_string(), 0])),
        Value::Null
    );
    let flows = node.rpc("getaddressmempool", json!([[address(1)]]));
    let amounts: Vec<f64> = flows
        .as_array()
        .unwrap()
        .iter()
        .map(|flow| flow["amount"].as_f64().unwrap())
        .collect();
    assert_eq!(amounts, vec![-50.0, 19.999]);

    // A conflicting spend is refused (first seen wins by default), with Bitcoin Core's reason and code.
    let conflict = signed_spend(genesis, &[coin], vec![pay(6, 4_999_900_000)]);
    let conflict_hex = hex::encode(encode(&conflict));
    let verdict = node.rpc("testmempoolaccept", json!([[conflict_hex]]));
    assert_eq!(verdict[0]["allowed"], json!(false));
    assert_eq!(verdict[0]["reject-reason"], json!("txn-mempool-conflict"));
    let refused = node
        .call("sendrawtransaction", json!([conflict_hex]))
        .unwrap_err();
    assert_eq!(refused.code, -26);

    // Mined: out of the pool, into the index.
    let mined = node.rpc("generatetoaddress", json!([1, address(2)]));
    assert_eq!(node.rpc("getrawmempool", json!([])), json!([]));
    let confirmed = eventually("the index to see the spend", CONVERGE, || {
        let tx = node.call("getrawtransaction", json!([txid, true])).ok()?;
        (tx["blockhash"] == mined[0]).then_some(tx)
    });
    assert_eq!(confirmed["confirmations"], json!(1));
    let history = node.rpc("getaddresshistory", json!([[address(1)]]));
    assert_eq!(history[1]["txid"], json!(txid));
    assert_eq!(history[1]["sent"], json!(50.0));
    assert_eq!(history[1]["received"], json!(19.999));
    let refused = node
        .call("sendrawtransaction", json!([spend_hex]))
        .unwrap_err();
    assert_eq!(refused.code, -27, "{refused:?}");
}

#[test]
fn peers_can_be_disconnected_banned_and_unbanned_and_bans_survive_a_restart() {
    let mut a = Daemon::start("a", &[]);
    let b = Daemon::start("b", &[]);
    a.rpc("addnode", json!([b.p2p_address(), "onetry"]));
    let b_id = b.rpc("getnetworkinfo", json!([]))["peerid"].clone();
    assert_eq!(a.rpc("getpeerinfo", json!([]))[0]["peerid"], b_id);

    a.rpc("disconnectnode", json!([b_id]));
    eventually("a to drop b", CONVERGE, || {
        (a.rpc("getconnectioncount", json!([])) == json!(0)).then_some(())
    });
    let error = a.call("disconnectnode", json!([b_id])).unwrap_err();
    assert_eq!(error.code, -29);
    // Text far longer than any peer id is refused before parsing (base58 is quadratic).
    let huge = "1".repeat(100_000);
    for method in ["setban", "disconnectnode"] {
        let error = a.call(method, json!([huge, "add"])).unwrap_err();
        assert_eq!(error.code, -8, "{method}: {error:?}");
    }

    a.rpc("setban", json!([b_id, "add", 3600]));
    let bans = a.rpc("listbanned", json!([]));
    assert_eq!(bans[0]["address"], b_id);
    assert!(bans[0]["time_remaining"].as_u64().unwrap() > 3500);
    // A banned peer cannot connect.
    assert!(a
        .call("addnode", json!([b.p2p_address(), "onetry"]))
        .is_err());

    assert!(a.terminate().success());
    a.restart(&[]);
    assert_eq!(a.rpc("listbanned", json!([]))[0]["address"], b_id);
    a.rpc("setban", json!([b_id, "remove"]));
    assert_eq!(a.rpc("listbanned", json!([])), json!([]));
    let error = a.call("setban", json!([b_id, "remove"])).unwrap_err();
    assert_eq!(error.code, -30);
    a.rpc("addnode", json!([b.p2p_address(), "onetry"]));
    assert_eq!(a.rpc("getconnectioncount", json!([])), json!(1));
}

#[test]
fn generatetoaddress_gives_up_after_maxtries_and_never_holds_up_stop() {
    // The main network at its starting difficulty: about 2^24 hashes a block.
    let mut node = Daemon::start_on("main", "main", &["--miner-threads", "1"]);
    let params = quarry_chain::ChainParams::main();
    let payee = quarry_chain::Address::new(quarry_chain::testing::test_key(1), &params).to_string();
    assert_eq!(
        node.rpc("generatetoaddress", json!([1, payee, 1_000])),
        json!([]),
        "a thousand tries find no block and the call returns"
    );
    let error = node
        .call("generatetoaddress", json!([1, payee, 0]))
        .unwrap_err();
    assert_eq!(error.code, -8, "{error:?}");

    // Hours of mining asked for: `stop` ends the call with what it found and the daemon exits.
    let started = std::time::Instant::now();
    let mined = std::thread::scope(|scope| {
        let long = scope.spawn(|| node.call("generatetoaddress", json!([1_000, payee, i64::MAX])));
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(node.rpc("stop", json!([])), json!("Quarry server stopping"));
        long.join().unwrap()
    });
    let mined = mined.expect("the call answers before the server closes");
    assert!(mined.as_array().unwrap().len() < 1_000, "{mined}");
    assert!(node.wait_exit().success());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stopping took {:?}",
        started.elapsed()
    );
}

#[test]
fn generatetoaddress_beside_the_background_miner_paying_the_same_address_never_collides() {
    // Uncapped: both search at full speed (a few rounds only: on the easy test network an
    // uncapped miner dates the chain hours ahead of the clock within seconds).
    let node = Daemon::start("node", &["--miner-threads", "1"]);
    node.rpc("setgenerate", json!([true, 1, address(1)]));
    // Both mine the same template for the same address; they must not build the same block.
    for round in 0..3 {
        let mined = node.call("generatetoaddress", json!([2, address(1)]));
        assert!(mined.is_ok(), "round {round}: {mined:?}");
    }
    node.rpc("setgenerate", json!([false]));
}

/// Copies directory `from` to `to` (a store taken aside while its node is stopped).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The index must never run ahead of the chain: with the chain store rolled back under a
/// stopped node (a restored backup, a lost write-ahead log), the index rewinds or rebuilds on
/// start and answers as an index built from scratch would.
#[test]
fn an_index_ahead_of_a_rolled_back_chain_store_rewinds_to_it() {
    let mut node = Daemon::start("node", &[]);
    node.rpc("generatetoaddress", json!([5, address(1)]));
    eventually("the index to reach the tip", CONVERGE, || {
        (utxos_of(&node, &address(1)).len() == 5).then_some(())
    });
    node.rpc("stop", json!([]));
    assert!(node.wait_exit().success());
    let chain_dir = node.data_dir().join("chain");
    let backup = node.dir.path().join("chain-backup");
    copy_dir(&chain_dir, &backup);

    node.restart(&[]);
    node.rpc("generatetoaddress", json!([4, address(2)]));
    eventually("the index to reach the tip", CONVERGE, || {
        (utxos_of(&node, &address(2)).len() == 4).then_some(())
    });
    node.rpc("stop", json!([]));
    assert!(node.wait_exit().success());
    std::fs::remove_dir_all(&chain_dir).unwrap();
    copy_dir(&backup, &chain_dir);

    // (With commits synced to disk from now on: the setting changes nothing already stored.)
    node.restart(&["--sync-writes"]);
    assert_eq!(node.rpc("getblockcount", json!([])), json!(5));
    eventually(
        "the index to follow the rolled-back chain",
        CONVERGE,
        || (utxos_of(&node, &address(2)).is_empty()).then_some(()),
    );
    assert_eq!(utxos_of(&node, &address(1)).len(), 5);
    let info = node.rpc("getindexinfo", json!([]));
    assert_eq!(info["addressindex"]["synced"], json!(true), "{info}");
    assert_eq!(
        info["addressindex"]["best_block_height"],
        json!(5),
        "{info}"
    );
}

/// A full disk stops the node: mining stops, the failure is logged once and the daemon exits
/// with a message saying what to do; with space again it restarts on everything it had
/// committed.
#[test]
fn a_full_disk_stops_the_node_with_a_clear_message_and_it_restarts_with_space() {
    let mut node = Daemon::start_with_full_disk_at("node", &["--miner-threads", "1"], 1_024);
    node.rpc("setgenerate", json!([true, 1, address(1)]));
    let status = node.wait_exit();
    assert!(!status.success(), "a failed store is not a clean exit");
    let log = node.log();
    assert!(
        log.contains("the chain store failed: shutting down"),
        "{log}"
    );
    assert!(log.contains("free disk space"), "{log}");
    let refused = log.matches("mined block not accepted").count();
    assert!(refused <= 1, "the miner kept trying {refused} times");

    node.restart(&[]);
    let height = node.rpc("getblockcount", json!([])).as_u64().unwrap();
    assert!(
        height > 0,
        "the blocks committed before the disk filled are kept"
    );
    assert_eq!(
        node.rpc("getblockchaininfo", json!([]))["warnings"],
        json!([])
    );
}

#[test]
fn a_closed_pipe_ends_quarry_cli_quietly() {
    let node = Daemon::start("node", &[]);
    let cookie = node.cookie();
    let (user, password) = cookie.split_once(':').unwrap();
    // 2,000 hashes: far more than a pipe holds, so the writes after `head` exits fail.
    let command = format!(
        "{} --rpc-connect {} --rpc-user '{user}' --rpc-password '{password}' generatetoaddress 2000 {} | head -1",
        quarry_cli().display(),
        node.rpc,
        address(1)
    );
    let output = Command::new("bash")
        .args(["-c", &command])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with('['));
}

#[test]
fn a_fast_background_miner_logs_a_summary_not_a_line_per_block() {
    let node = Daemon::start("node", &["--mine", "--miner-address", &address(1)]);
    eventually("a few hundred blocks", CONVERGE, || {
        (node.rpc("getblockcount", json!([])).as_u64()? >= 300).then_some(())
    });
    let lines = node.log().matches("since the last report").count();
    assert!(lines <= 2, "{lines} mining log lines for 300 blocks");
}

#[test]
fn metrics_answer_in_the_format_the_scraper_accepts() {
    let node = Daemon::start("node", &[]);
    let scrape = |accept: &str| {
        let mut response = ureq::get(&format!("http://{}/metrics", node.metrics))
            .header("Accept", accept)
            .call()
            .unwrap();
        let content_type = response
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        (content_type, response.body_mut().read_to_string().unwrap())
    };
    let (content_type, text) = scrape("text/plain;version=0.0.4");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        text.contains("# TYPE quarry_reorgs_total counter"),
        "{text}"
    );
    assert!(!text.contains("# EOF"));
    // What Prometheus sends: OpenMetrics first.
    let (content_type, text) = scrape(
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    );
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn getblock_keys_come_in_bitcoin_cores_order() {
    let node = Daemon::start("node", &[]);
    let hashes = node.rpc("generatetoaddress", json!([2, address(1)]));
    let body = format!(
        r#"{{"method":"getblock","params":["{}", 1],"id":1}}"#,
        hashes[0].as_str().unwrap()
    );
    let (status, text) = node.post(body, Some(&node.cookie()));
    assert_eq!(status, 200, "{text}");
    let order = [
        "\"hash\"",
        "\"confirmations\"",
        "\"height\"",
        "\"version\"",
        "\"versionHex\"",
        "\"merkleroot\"",
        "\"time\"",
        "\"mediantime\"",
        "\"nonce\"",
        "\"bits\"",
        "\"difficulty\"",
        "\"chainwork\"",
        "\"nTx\"",
        "\"previousblockhash\"",
        "\"nextblockhash\"",
        "\"tx\"",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|key| {
            text.find(key)
                .unwrap_or_else(|| panic!("{key} missing: {text}"))
        })
        .collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{text}");
}

/// Reads from `stream` until the server closes it or `limit` passes; whether it closed, and
/// what it sent.
fn read_until_closed(stream: &mut std::net::TcpStream, limit: Duration) -> (bool, String) {
    use std::io::Read;
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut received = Vec::new();
    let closed = stream.read_to_end(&mut received).is_ok();
    (closed, String::from_utf8_lossy(&received).into_owned())
}

#[test]
fn slow_senders_are_cut_off_and_the_server_keeps_serving() {
    use std::io::Write;
    let node = Daemon::start("node", &["--rpc-server-timeout", "2"]);
    let cookie = node.cookie();
    // Headers that never end.
    let mut slow_headers = std::net::TcpStream::connect(node.rpc).unwrap();
    slow_headers
        .write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // A body that never arrives in full.
    let mut slow_body = std::net::TcpStream::connect(node.rpc).unwrap();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(&cookie)
    );
    write!(
        slow_body,
        "POST / HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nContent-Length: 100\r\n\r\n{{\"method\""
    )
    .unwrap();
    // Both are closed (within the 2 s asked, and a wide margin).
    let (closed, _) = read_until_closed(&mut slow_headers, Duration::from_secs(20));
    assert!(closed, "a request whose headers never end is cut off");
    let (closed, reply) = read_until_closed(&mut slow_body, Duration::from_secs(20));
    assert!(closed, "a request whose body never ends is cut off");
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    // Meanwhile and after, the server answers others.
    assert_eq!(node.rpc("getblockcount", json!([])), json!(0));
    // An empty batch gets an empty answer; wrong credentials wait, as Core's do.
    assert_eq!(node.post("[]", Some(&cookie)), (200, "[]\n".to_owned()));
    let started = std::time::Instant::now();
    let (status, _) = node.post(r#"{"method":"getblockcount"}"#, Some("__cookie__:guess"));
    assert_eq!(status, 401);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[test]
fn small_amounts_are_written_as_core_writes_them_and_not_found_errors_say_it_once() {
    let node = Daemon::start("node", &[]);
    let cookie = node.cookie();
    // A spend paying a fee of 416 sats: 0.00000416 coins, which a float printer writes 4.16e-6.
    let (_, coin) = node.mature_coin();
    let spend = quarry_chain::testing::signed_spend(
        quarry_rpc::testing::params().genesis_hash(),
        &[coin],
        vec![quarry_chain::testing::pay(5, 5_000_000_000 - 416)],
    );
    let txid = node.rpc(
        "sendrawtransaction",
        json!([hex::encode(quarry_chain::encode::encode(&spend))]),
    );
    let request = format!(r#"{{"method":"getmempoolentry","params":[{txid}],"id":1}}"#);
    let (_, body) = node.post(request, Some(&cookie));
    assert!(body.contains(r#""fee":0.00000416"#), "{body}");
    assert!(!body.contains("e-"), "{body}");
    // quarry-cli prints the same way.
    let params_file = quarry_rpc::testing::write_params(node.dir.path());
    let output = Command::new(quarry_cli())
        .args(["--network", params_file.to_str().unwrap()])
        .args(["--datadir", node.dir.path().to_str().unwrap()])
        .args(["--rpc-connect", &node.rpc.to_string()])
        .args(["getmempoolentry", txid.as_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(r#""fee": 0.00000416"#), "{text}");
    let missing = node
        .call("getblockheader", json!(["00".repeat(32)]))
        .unwrap_err();
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (-5, "Block not found")
    );
}

#[test]
fn peers_can_be_added_by_host_name() {
    let a = Daemon::start("a", &[]);
    let b = Daemon::start("b", &[]);
    // b's listen port, reached through the name `localhost` (/etc/hosts), as a container
    // reaches another by its DNS name.
    let address = b.p2p_address();
    let port = address.split('/').nth(4).unwrap();
    a.rpc("addnode", json!([format!("localhost:{port}"), "onetry"]));
    eventually("a to connect to b by name", Duration::from_secs(60), || {
        (a.rpc("getconnectioncount", json!([])) == json!(1)).then_some(())
    });
    let peer = &a.rpc("getpeerinfo", json!([]))[0];
    assert_eq!(peer["peerid"], b.rpc("getnetworkinfo", json!([]))["peerid"]);
}
