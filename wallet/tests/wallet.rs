//! The wallet against real `quarryd` processes: funding, paying, confirming, bumping fees,
//! conflicts after a reorganisation, and every kind of mistake refused without a change.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use quarry_rpc::testing::{address, eventually, Daemon};
use serde_json::json;

const WALLET: &str = env!("CARGO_BIN_EXE_quarry-wallet");
const PASSPHRASE: &str = "correct horse battery staple";
const WAIT: Duration = Duration::from_secs(60);

/// A wallet file in its own directory, used through the `quarry-wallet` binary.
struct TestWallet {
    dir: tempfile::TempDir,
}

impl TestWallet {
    fn path(&self) -> PathBuf {
        self.dir.path().join("wallet.json")
    }

    /// Runs `quarry-wallet` against `node` with `args`, and the right passphrase.
    fn run(&self, node: &Daemon, args: &[&str]) -> Output {
        self.run_with(node, args, PASSPHRASE, None)
    }

    fn run_with(
        &self,
        node: &Daemon,
        args: &[&str],
        passphrase: &str,
        rpc: Option<&str>,
    ) -> Output {
        let rpc = rpc.map_or_else(|| node.rpc.to_string(), str::to_owned);
        Command::new(WALLET)
            .args([
                "--network",
                quarry_rpc::testing::write_params(node.dir.path())
                    .to_str()
                    .unwrap(),
            ])
            .args(["--datadir", node.dir.path().to_str().unwrap()])
            .args(["--rpc-connect", &rpc])
            .args(["--wallet", self.path().to_str().unwrap()])
            .args(args)
            .env("QUARRY_WALLET_PASSPHRASE", passphrase)
            .output()
            .unwrap()
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, node: &Daemon, args: &[&str]) -> String {
        let output = self.run(node, args);
        assert!(
            output.status.success(),
            "quarry-wallet {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs and expects failure; returns stderr.
    fn fails(&self, node: &Daemon, args: &[&str]) -> String {
        let output = self.run(node, args);
        assert!(!output.status.success(), "quarry-wallet {args:?} succeeded");
        String::from_utf8(output.stderr).unwrap()
    }

    /// Creates the wallet; returns its first address.
    fn create(node: &Daemon) -> (Self, String) {
        let (wallet, first, _) = Self::create_with_words(node);
        (wallet, first)
    }

    /// Creates the wallet; returns its first address and its seed words.
    fn create_with_words(node: &Daemon) -> (Self, String, String) {
        let wallet = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = wallet.ok(node, &["create"]);
        let first = first_address(&out);
        assert!(out.contains("Write down these 24 words"));
        // Printed numbered, four to a line: ` 1. word      2. word ...`.
        let words: Vec<&str> = out
            .lines()
            .filter(|line| line.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .flat_map(|line| line.split_whitespace())
            .filter(|token| !token.ends_with('.'))
            .collect();
        assert_eq!(words.len(), 24, "no numbered seed words in:\n{out}");
        assert!(out.contains(" 1. ") && out.contains("24. "), "{out}");
        let words = words.join(" ");
        (wallet, first, words)
    }

    /// The balance lines as (confirmed, unconfirmed, immature).
    fn balance(&self, node: &Daemon) -> (String, String, String) {
        let out = self.ok(node, &["balance"]);
        let field = |name: &str| {
            out.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|rest| rest.trim().to_owned())
                .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
        };
        (field("confirmed"), field("unconfirmed"), field("immature"))
    }

    fn history(&self, node: &Daemon) -> Vec<(String, String, String, String)> {
        let out = self.ok(node, &["history"]);
        out.lines()
            .skip(1)
            .map(|line| {
                // txid, amount, confirmations, height, date (`-`, or day and minute), status.
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (height, status_at) = (fields[3], if fields[4] == "-" { 5 } else { 6 });
                if fields[2] != "0" {
                    assert!(height.parse::<u32>().is_ok(), "a height: {line}");
                    assert!(
                        fields[4].len() == 10 && fields[4].starts_with("20"),
                        "a date: {line}"
                    );
                } else {
                    assert_eq!((height, fields[4]), ("-", "-"), "{line}");
                }
                (
                    fields[0].to_owned(),
                    fields[1].to_owned(),
                    fields[2].to_owned(),
                    fields[status_at..].join(" "),
                )
            })
            .collect()
    }
}

fn first_address(out: &str) -> String {
    out.lines()
        .find_map(|line| line.strip_prefix("First address: "))
        .unwrap_or_else(|| panic!("no address in:\n{out}"))
        .to_owned()
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Waits until the node's index shows `blocks` blocks.
fn wait_for_index(node: &Daemon) {
    let height = node.rpc("getblockcount", json!([]));
    eventually("the index to catch up", WAIT, || {
        let info = node.rpc("getindexinfo", json!([]));
        (info["addressindex"]["best_block_height"] == height).then_some(())
    });
}

fn fee_of(send_output: &str) -> f64 {
    let line = send_output
        .lines()
        .find(|line| line.starts_with("fee"))
        .unwrap_or_else(|| panic!("no fee line in:\n{send_output}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn rbf_config(node_dir: &Path) -> String {
    let path = node_dir.join("rbf.toml");
    std::fs::write(&path, "[mempool]\nreplacement = \"replace-by-fee\"\n").unwrap();
    path.display().to_string()
}

#[test]
fn mine_mature_pay_confirm_and_bump_a_fee() {
    let dir = tempfile::tempdir().unwrap();
    let config = rbf_config(dir.path());
    let node = Daemon::start("node", &["--conf", &config]);
    let (a, a_address) = TestWallet::create(&node);
    let (b, b_address) = TestWallet::create(&node);
    assert_ne!(a_address, b_address);

    node.rpc("generatetoaddress", json!([1, a_address]));
    wait_for_index(&node);
    assert_eq!(
        a.balance(&node),
        (
            "0.00000000".into(),
            "0.00000000".into(),
            "50.00000000".into()
        )
    );
    node.rpc("generatetoaddress", json!([2, address(9)]));
    wait_for_index(&node);
    assert_eq!(a.balance(&node).0, "50.00000000");

    let sent = a.ok(
        &node,
        &["send", &b_address, "10", "--fee-rate", "2", "--yes"],
    );
    let fee = fee_of(&sent);
    assert!(fee > 0.0 && fee < 0.001, "{sent}");
    let txid = sent.lines().last().unwrap().to_owned();
    assert_eq!(node.rpc("getrawmempool", json!([])), json!([txid]));
    let change = 40.0 - fee;
    assert_eq!(
        a.balance(&node),
        (
            "0.00000000".into(),
            format!("{change:.8}"),
            "0.00000000".into()
        )
    );
    assert_eq!(b.balance(&node).1, "10.00000000");

    // A higher fee replaces it; the extra comes out of the change.
    let bumped = a.ok(&node, &["bump-fee", &txid, "--fee-rate", "5", "--yes"]);
    let new_txid = bumped.lines().last().unwrap().to_owned();
    assert_ne!(new_txid, txid);
    assert_eq!(node.rpc("getrawmempool", json!([])), json!([new_txid]));
    let history = a.history(&node);
    assert!(
        history
            .iter()
            .any(|(id, _, _, status)| *id == txid && *status == format!("replaced by {new_txid}")),
        "{history:?}"
    );

    // One confirmation: both balances settle.
    node.rpc("generatetoaddress", json!([1, address(9)]));
    wait_for_index(&node);
    let (confirmed, unconfirmed, _) = a.balance(&node);
    let paid: f64 = 50.0 - confirmed.parse::<f64>().unwrap();
    assert!(paid > 10.0 + fee && paid < 10.01, "{confirmed}");
    assert_eq!(unconfirmed, "0.00000000");
    assert_eq!(
        b.balance(&node),
        (
            "10.00000000".into(),
            "0.00000000".into(),
            "0.00000000".into()
        )
    );
    // The same for scripts.
    let balance: serde_json::Value =
        serde_json::from_str(&b.ok(&node, &["balance", "--json"])).unwrap();
    assert_eq!(
        balance,
        json!({"confirmed": 10.0, "unconfirmed": 0.0, "immature": 0.0, "total": 10.0})
    );
    let listed: serde_json::Value =
        serde_json::from_str(&b.ok(&node, &["history", "--json"])).unwrap();
    assert_eq!(listed[0]["txid"], json!(new_txid));
    assert_eq!(listed[0]["amount"], json!(10.0));
    assert_eq!(listed[0]["confirmations"], json!(1));
    assert_eq!(listed[0]["status"], json!("confirmed"));
    let coins: serde_json::Value =
        serde_json::from_str(&b.ok(&node, &["utxos", "--json"])).unwrap();
    assert_eq!(coins[0]["txid"], json!(new_txid));
    assert_eq!(coins[0]["amount"], json!(10.0));
    assert_eq!(coins[0]["mature"], json!(true));
    let history = b.history(&node);
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0],
        (
            new_txid.clone(),
            "+10.00000000".into(),
            "1".into(),
            "confirmed".into()
        )
    );
    let history = a.history(&node);
    let payment = history.iter().find(|(id, ..)| *id == new_txid).unwrap();
    assert_eq!((payment.2.as_str(), payment.3.as_str()), ("1", "confirmed"));
    assert!(payment.1.starts_with("-10.0"), "{payment:?}");
    let coinbase = history
        .iter()
        .find(|(id, ..)| *id != new_txid && *id != txid)
        .unwrap();
    assert_eq!(coinbase.1, "+50.00000000");

    // Addresses: a new one is handed out and listed.
    let fresh = a.ok(&node, &["address", "new"]).trim().to_owned();
    let list = a.ok(&node, &["address", "list"]);
    assert!(list.contains(&a_address) && list.contains(&fresh), "{list}");
    let utxos = b.ok(&node, &["utxos"]);
    assert!(
        utxos.contains("10.00000000") && utxos.contains(&b_address),
        "{utxos}"
    );
}

#[test]
fn mistakes_get_clear_errors_and_change_nothing() {
    let node = Daemon::start("node", &[]);
    let (a, a_address, words) = TestWallet::create_with_words(&node);
    node.rpc("generatetoaddress", json!([1, a_address]));
    node.rpc("generatetoaddress", json!([2, address(9)]));
    wait_for_index(&node);
    let before = file_bytes(&a.path());
    let mempool = || node.rpc("getrawmempool", json!([]));

    let error = a.fails(&node, &["send", &address(5), "1000", "--yes"]);
    assert!(
        error.contains("insufficient funds") && error.contains("50.00000000 spendable"),
        "{error}"
    );
    let mut typo = address(5);
    typo.replace_range(10..11, if &typo[10..11] == "q" { "p" } else { "q" });
    let error = a.fails(&node, &["send", &typo, "1", "--yes"]);
    assert!(error.contains("not a valid address"), "{error}");
    let other_network = quarry_chain::Address::new(
        quarry_chain::testing::test_key(5),
        &quarry_chain::ChainParams::regtest(),
    )
    .to_string();
    let error = a.fails(&node, &["send", &other_network, "1", "--yes"]);
    assert!(error.contains("another network"), "{error}");
    let error = a.fails(&node, &["send", &address(5), "1.123456789", "--yes"]);
    assert!(error.contains("invalid amount"), "{error}");
    let error = a.fails(&node, &["send", &address(5), "21000001", "--yes"]);
    assert_eq!(
        error.matches("more than 21,000,000 coins").count(),
        1,
        "the cause is said once: {error}"
    );
    let output = a.run_with(
        &node,
        &["send", &address(5), "1", "--yes"],
        "wrong passphrase",
        None,
    );
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && error.contains("wrong passphrase"),
        "{error}"
    );
    let unreachable = format!("127.0.0.1:{}", quarry_rpc::testing::free_port());
    let output = a.run_with(&node, &["balance"], PASSPHRASE, Some(&unreachable));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && error.contains("cannot connect"),
        "{error}"
    );
    assert!(error.contains("is quarryd running"), "{error}");
    let error = a.fails(&node, &["create"]);
    assert!(error.contains("already exists"), "{error}");

    assert_eq!(
        file_bytes(&a.path()),
        before,
        "the wallet file is untouched"
    );
    assert_eq!(mempool(), json!([]), "nothing was sent");
    assert_eq!(a.balance(&node).0, "50.00000000");

    // An address the first copy handed out and that was paid (a block's reward).
    let paid = a.ok(&node, &["address", "new"]).trim().to_owned();
    node.rpc("generatetoaddress", json!([1, paid]));
    wait_for_index(&node);

    // The words restore the same wallet elsewhere, coins included; bad words are refused.
    let restored = TestWallet {
        dir: tempfile::tempdir().unwrap(),
    };
    let error = restored.fails(&node, &["restore", "--seed", "not a seed at all"]);
    assert!(
        error.contains("invalid seed") && !error.contains("not a seed at all"),
        "{error}"
    );
    assert!(!restored.path().exists());
    // The words as separate arguments, in capitals: the same wallet.
    let shouted = words.to_uppercase();
    let mut restore = vec!["restore"];
    restore.extend(shouted.split(' '));
    let out = restored.ok(&node, &restore);
    assert_eq!(first_address(&out), a_address);
    assert_eq!(restored.balance(&node).0, "50.00000000");
    assert!(!out.contains(&words), "restore does not echo the words");
    // The restored copy never hands out an address the chain shows in use.
    let fresh = restored.ok(&node, &["address", "new"]).trim().to_owned();
    assert_ne!(fresh, paid);
    assert_eq!(
        node.rpc("getaddresshistory", json!([{ "addresses": [fresh] }])),
        json!([]),
        "{fresh} is unused"
    );
}

#[test]
fn a_payment_undone_by_a_conflicting_spend_on_the_other_side_of_a_partition_shows_conflicted() {
    let n1 = Daemon::start("n1", &[]);
    let n2 = Daemon::start("n2", &[]);
    let (a, a_address) = TestWallet::create(&n1);
    let (b, b_address) = TestWallet::create(&n1);
    n1.rpc("addnode", json!([n2.p2p_address(), "onetry"]));
    // One mature coin for A, seen by both nodes.
    n1.rpc("generatetoaddress", json!([1, a_address]));
    n1.rpc("generatetoaddress", json!([2, address(9)]));
    let tip = n1.rpc("getbestblockhash", json!([]));
    eventually("n2 to sync", WAIT, || {
        (n2.rpc("getbestblockhash", json!([])) == tip).then_some(())
    });
    wait_for_index(&n1);
    wait_for_index(&n2);

    // Partition.
    let n2_id = n2.rpc("getnetworkinfo", json!([]))["peerid"].clone();
    n1.rpc("setban", json!([n2_id, "add", 3600]));
    eventually("the link to drop", WAIT, || {
        (n2.rpc("getconnectioncount", json!([])) == json!(0)).then_some(())
    });

    // A pays B through n1, confirmed there; B sees it.
    let sent = a.ok(&n1, &["send", &b_address, "10", "--yes"]);
    let paid = sent.lines().last().unwrap().to_owned();
    n1.rpc("generatetoaddress", json!([1, address(9)]));
    wait_for_index(&n1);
    assert_eq!(b.balance(&n1).0, "10.00000000");
    assert_eq!(b.history(&n1)[0].3, "confirmed");

    // Through n2, which never saw that payment, the same coin goes elsewhere; n2's side mines
    // more blocks.
    let a_on_n2 = a.run_with(&n2, &["send", &address(7), "20", "--yes"], PASSPHRASE, None);
    assert!(
        a_on_n2.status.success(),
        "{}",
        String::from_utf8_lossy(&a_on_n2.stderr)
    );
    let conflicting = String::from_utf8_lossy(&a_on_n2.stdout)
        .lines()
        .last()
        .unwrap()
        .to_owned();
    n2.rpc("generatetoaddress", json!([2, address(9)]));

    // Heal: n1 reorganises onto n2's longer chain.
    n1.rpc("setban", json!([n2_id, "remove"]));
    n1.rpc("addnode", json!([n2.p2p_address(), "onetry"]));
    let tip = n2.rpc("getbestblockhash", json!([]));
    eventually("n1 to reorganise", WAIT, || {
        (n1.rpc("getbestblockhash", json!([])) == tip).then_some(())
    });
    wait_for_index(&n1);

    let history = a.history(&n1);
    let status = |id: &str| {
        history
            .iter()
            .find(|(txid, ..)| txid == id)
            .map(|line| line.3.clone())
    };
    assert_eq!(status(&paid).as_deref(), Some("conflicted"), "{history:?}");
    assert_eq!(
        status(&conflicting).as_deref(),
        Some("confirmed"),
        "{history:?}"
    );
    let history = b.history(&n1);
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        (history[0].0.as_str(), history[0].3.as_str()),
        (paid.as_str(), "conflicted")
    );
    assert_eq!(b.balance(&n1).0, "0.00000000");
}
