//! Multi-process tests of local testnets and the double-spend attack on real nodes. What they
//! assert does not depend on luck: with no hash power the attacker can never win, with most of
//! it and a long bound it wins with probability above 0.999 (checked against the exact model),
//! and a healed partition always ends on the chain with the most work.

use std::time::Duration;

use quarry_chain::{BlockHash, TipStatus};
use quarry_rpc::types::ChainTip;
use quarry_testnet::analysis::{exact, AttackModel};
use quarry_testnet::attack::AttackSettings;
use quarry_testnet::cluster::{links, quarryd_path, Link, Topology};
use quarry_testnet::commands::{partition_note, up, wait_for_sync, UpOptions};
use quarry_testnet::engine::EngineKind;
use quarry_testnet::experiment::{double_spend, AttackRun, StopRule};
use quarry_testnet::status;
use serde_json::json;

/// The double spend's settings with simulated proof of work (the attacks' default).
fn settings(q: f64, give_up_behind: u32) -> AttackSettings {
    AttackSettings {
        q,
        premined: false,
        give_up_behind,
        pow: quarry_chain::PowMode::Simulated,
        retarget: true,
        speedup: 1,
    }
}

/// The double spend on real nodes with `settings`, `trials` trials with `z` confirmations on
/// `parallel` testnets (or until `stop_rule` says).
fn run(
    settings: AttackSettings,
    z: u32,
    trials: u32,
    parallel: u32,
    stop_rule: StopRule,
) -> quarry_testnet::report::Report {
    let dir = tempfile::tempdir().unwrap();
    double_spend(&AttackRun {
        settings,
        confirmations: vec![z],
        trials,
        hash_rate: 20_000,
        spacing: 1,
        parallel,
        stop_rule,
        report: dir.path().join("report"),
        nodes: quarry_testnet::cluster::NodeEngine::processes(&quarryd_path(None).unwrap()),
        engine: EngineKind::Nodes,
        seed: 0,
    })
    .unwrap()
}

/// `nodes` nodes that mine only when told to, joined by `links`.
fn idle_testnet(dir: &std::path::Path, nodes: usize, links: Vec<Link>) -> UpOptions {
    UpOptions {
        dir: dir.to_path_buf(),
        nodes: UpOptions::equal_miners(nodes, 0),
        links,
        hash_rate: 20_000,
        spacing: 1,
        engine: quarry_testnet::cluster::NodeEngine::processes(&quarryd_path(None).unwrap()),
        resume: false,
        detach: false,
        pow: quarry_chain::PowMode::Real,
        partitions: Vec::new(),
    }
}

#[test]
fn an_attacker_without_hash_power_never_reverses_a_payment() {
    // Two testnets side by side, one trial each, pooled.
    let report = run(settings(0.0, 2), 1, 2, 2, StopRule::Trials);
    assert_eq!(report.trials.len(), 2);
    assert_eq!(report.testnets, 2);
    for trial in &report.trials {
        assert!(trial.delivered, "{trial:?}");
        assert!(!trial.published && !trial.reversed, "{trial:?}");
        assert!(trial.attacker_branch.is_empty());
        assert_eq!(trial.merchant_wallet_at_end.as_deref(), Some("confirmed"));
    }
    assert_eq!(report.rows[0].reversed, 0);
    assert_eq!(report.rows[0].exact, 0.0);
}

/// `--until-separated` stops as soon as the interval excludes the value, or at the maximum.
#[test]
fn a_run_stops_once_its_interval_excludes_the_value_or_at_its_maximum() {
    // No hash power: 0 of 1 already excludes 0.9 (Wilson's upper bound for 0/1 is 0.79), but
    // the run looks only from its second trial.
    let separated = StopRule::Separated {
        value: 0.9,
        min_trials: 2,
        max_trials: 20,
    };
    assert_eq!(run(settings(0.0, 2), 1, 1, 1, separated).trials.len(), 2);
    // 0 is never excluded by 0 of n: the run ends at its maximum.
    let never = StopRule::Separated {
        value: 0.0,
        min_trials: 1,
        max_trials: 2,
    };
    assert_eq!(run(settings(0.0, 2), 1, 1, 1, never).trials.len(), 2);
}

#[test]
fn an_attacker_with_most_of_the_hash_power_reverses_a_payment_and_the_merchant_sees_it_conflicted()
{
    let (q, z, bound) = (0.8, 1, 30);
    let model = AttackModel {
        q,
        z,
        premined: false,
        give_up_behind: Some(bound),
    };
    assert!(
        exact(model) > 0.999,
        "the setting must make success all but certain"
    );
    // Retargeting off and blocks five times faster than the spacing: the same race in blocks.
    let fast = AttackSettings {
        retarget: false,
        speedup: 5,
        ..settings(q, bound)
    };
    let report = run(fast, z, 1, 1, StopRule::Trials);
    let trial = &report.trials[0];
    assert!(
        trial.delivered && trial.published && trial.reversed,
        "{trial:#?}"
    );
    assert!(trial.reorg_depth >= 1);
    assert_eq!(
        trial.merchant_wallet_at_delivery.as_deref(),
        Some("confirmed")
    );
    assert_eq!(trial.merchant_wallet_at_end.as_deref(), Some("conflicted"));
    assert!(trial.attacker_branch.len() > trial.honest_branch.len());
}

#[test]
fn a_healed_partition_converges_on_the_chain_with_the_most_work() {
    let dir = tempfile::tempdir().unwrap();
    let options = idle_testnet(dir.path(), 4, Link::plain(links(Topology::Line, 4, 1)));
    let testnet = up(&options).unwrap();
    testnet.partition(&[0, 1], &[2, 3]).unwrap();
    let note = partition_note(&testnet, &[0, 1], &[2, 3]);
    assert_eq!(
        note,
        "hash-rate shares: 0.00 / 0.00 (no side mines in the background: `mine` makes the blocks)"
    );
    let bridged = partition_note(&testnet, &[0], &[2]);
    assert!(bridged.contains("n1, n3 in neither group"), "{bridged}");
    let address = |index: usize| {
        testnet.state.nodes[index]
            .address(&testnet.params)
            .to_string()
    };
    testnet.generate(0, 2, &address(0)).unwrap();
    let heavier = testnet.generate(3, 4, &address(3)).unwrap();
    // While split, the status shows both branches and the shares of the blocks found on
    // both (the funding blocks, all n0's, left out).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let split = loop {
        let snapshot = status::collect(&testnet);
        let sides: Vec<Vec<usize>> = snapshot.branches.iter().map(|b| b.nodes.clone()).collect();
        if sides == [vec![2, 3], vec![0, 1]] || std::time::Instant::now() > deadline {
            break snapshot;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let sides: Vec<Vec<usize>> = split.branches.iter().map(|b| b.nodes.clone()).collect();
    assert_eq!(sides, [vec![2, 3], vec![0, 1]], "{split:#?}");
    let shares: Vec<Option<f64>> = split.nodes.iter().map(|n| n.share_measured).collect();
    assert_eq!(
        shares,
        [Some(2.0 / 6.0), Some(0.0), Some(0.0), Some(4.0 / 6.0)]
    );
    assert!(status::render(&split).contains("2 branches"));
    testnet.heal().unwrap();
    wait_for_sync(&testnet, Duration::from_secs(120)).unwrap();
    assert_eq!(status::collect(&testnet).branches.len(), 1);
    let tip = heavier[3];
    for index in 0..4 {
        let best: BlockHash = testnet.call(index, "getbestblockhash", json!([])).unwrap();
        assert_eq!(best, tip);
    }
    let tips: Vec<ChainTip> = testnet.call(0, "getchaintips", json!([])).unwrap();
    assert!(tips.iter().any(|tip| tip.status != TipStatus::Active));
    testnet.shutdown().unwrap();
}

/// Timings where the model says every trial succeeds: a race whose offsets stay well inside
/// the link delay, and a Finney hold far shorter than the honest miner's spacing.
#[test]
fn race_and_finney_trials_reverse_payments_the_merchant_took_unconfirmed() {
    use quarry_testnet::experiment::{zero_confirmation, ZeroConfirmationRun};
    use quarry_testnet::zero_conf::Timing;
    let timings = [
        Timing::Race {
            latency_ms: 300,
            spread_ms: 100,
        },
        Timing::Finney {
            max_hold_ms: 200,
            spacing: 600,
        },
    ];
    for timing in timings {
        let dir = tempfile::tempdir().unwrap();
        let run = ZeroConfirmationRun {
            timing,
            trials: 2,
            seed: 5,
            hash_rate: 20_000,
            pow: quarry_chain::PowMode::Real,
            report: dir.path().to_path_buf(),
            nodes: quarry_testnet::cluster::NodeEngine::processes(&quarryd_path(None).unwrap()),
            engine: EngineKind::Nodes,
        };
        let report = zero_confirmation(&run).unwrap();
        assert!(report.model > 0.99, "{report:#?}");
        assert_eq!((report.trials, report.reversed), (2, 2), "{report:#?}");
        for trial in &report.trial_list {
            assert_eq!(trial.merchant_wallet_before.as_deref(), Some("unconfirmed"));
            assert_eq!(trial.merchant_wallet_after.as_deref(), Some("conflicted"));
        }
        for file in ["report.json", "report.md", "outcomes.svg"] {
            assert!(dir.path().join(file).exists(), "{file}");
        }
    }
}

#[test]
fn delayed_links_carry_blocks_through_their_relay() {
    let dir = tempfile::tempdir().unwrap();
    let options = idle_testnet(dir.path(), 2, Link::delayed(vec![(1, 0)], 100));
    let testnet = up(&options).unwrap();
    let via = testnet.state.links[0]
        .via
        .clone()
        .expect("a relay for the delayed link");
    assert!(!via.contains(&testnet.state.nodes[0].p2p));
    let address = testnet.state.nodes[0].address(&testnet.params).to_string();
    let mined = testnet.generate(0, 3, &address).unwrap();
    wait_for_sync(&testnet, Duration::from_secs(60)).unwrap();
    let best: BlockHash = testnet.call(1, "getbestblockhash", json!([])).unwrap();
    assert_eq!(best, mined[2]);
    testnet.shutdown().unwrap();
}

/// The reconvergence benchmark on a small split: every node ends on the heavier branch, the
/// lighter half having reorganised the whole of its own branch away.
#[test]
fn the_reconvergence_benchmark_ends_with_every_node_on_the_heavier_branch() {
    let dir = tempfile::tempdir().unwrap();
    let run = quarry_testnet::reconverge::SplitRun {
        nodes: 4,
        blocks: 600,
        report: dir.path().join("report"),
        quarryd: quarryd_path(None).unwrap(),
    };
    let report = quarry_testnet::reconverge::run(&run).unwrap();
    assert_eq!((report.lighter_blocks, report.heavier_blocks), (600, 601));
    let reorganised: Vec<&str> = report
        .per_node
        .iter()
        .filter(|node| node.reorganised)
        .map(|node| node.name.as_str())
        .collect();
    assert_eq!(reorganised, ["n0", "n1"]);
    assert!(report
        .per_node
        .iter()
        .all(|node| node.seconds <= report.reconverge_seconds));
    let table = quarry_testnet::reconverge::render(&report);
    assert!(table.contains("reorganised 600 deep"), "{table}");
}

/// The main job run again on the same directory: `up` replaces an earlier testnet (a new
/// genesis, which the old nodes' stores would refuse), `--resume` continues it, and a state
/// file left by nodes that died does not block the next `up`.
#[test]
fn up_replaces_or_resumes_an_earlier_testnet_and_forgets_a_dead_one() {
    let dir = tempfile::tempdir().unwrap();
    let options = idle_testnet(dir.path(), 2, Link::plain(links(Topology::Line, 2, 0)));
    let first = up(&options).unwrap();
    let first_genesis = first.params.genesis_hash();
    let address = first.state.nodes[0].address(&first.params).to_string();
    first.generate(0, 2, &address).unwrap();
    wait_for_sync(&first, Duration::from_secs(60)).unwrap();
    let height: u64 = first.call(1, "getblockcount", json!([])).unwrap();
    first.shutdown().unwrap();

    let resumed = up(&UpOptions {
        resume: true,
        ..options.clone()
    })
    .unwrap();
    assert_eq!(resumed.params.genesis_hash(), first_genesis);
    let resumed_height: u64 = resumed.call(1, "getblockcount", json!([])).unwrap();
    assert_eq!(resumed_height, height, "the chain and wallets are kept");
    let error = up(&options).unwrap_err().to_string();
    assert!(error.contains("already running"), "{error}");

    // The nodes die without `down`: their state file stays behind.
    for node in &resumed.state.nodes {
        std::process::Command::new("kill")
            .args(["-KILL", &node.pid.to_string()])
            .status()
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(1_100));
    let fresh = up(&options).unwrap();
    assert_ne!(fresh.params.genesis_hash(), first_genesis, "a new network");
    let fresh_height: u64 = fresh.call(1, "getblockcount", json!([])).unwrap();
    assert!(
        fresh_height < height,
        "{fresh_height} blocks: the old chain is gone"
    );
    fresh.shutdown().unwrap();
}

/// A node that fails to start takes down the nodes started before it: nothing is left running.
#[test]
fn a_testnet_that_fails_to_start_leaves_no_node_running() {
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("quarryd-failing-on-n1");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$*\" in *\"/n1 \"*) echo refusing >&2; exit 3;; esac\nexec {} \"$@\"\n",
            quarryd_path(None).unwrap().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let testnet_dir = dir.path().join("net");
    let options = UpOptions {
        engine: quarry_testnet::cluster::NodeEngine::processes(&wrapper),
        ..idle_testnet(&testnet_dir, 3, Link::plain(links(Topology::Line, 3, 0)))
    };
    let error = format!("{:#}", up(&options).unwrap_err());
    assert!(error.contains("n1"), "{error}");
    assert!(
        error.contains("stopped the 1 node(s) it had started"),
        "{error}"
    );
    let survivors = std::process::Command::new("pgrep")
        .args(["-f", &testnet_dir.display().to_string()])
        .output()
        .unwrap();
    assert!(
        survivors.stdout.is_empty(),
        "still running: {}",
        String::from_utf8_lossy(&survivors.stdout)
    );
}

/// Killing `quarry-testnet up` outright (SIGKILL: no handler runs) still takes its nodes down:
/// each node is told to stop when the process that started it dies.
#[test]
fn nodes_do_not_outlive_a_killed_up() {
    let dir = tempfile::tempdir().unwrap();
    let testnet_dir = dir.path().join("net");
    let mut up = std::process::Command::new(env!("CARGO_BIN_EXE_quarry-testnet"))
        .args(["up", "--nodes", "2", "--miners", "0", "--dir"])
        .arg(&testnet_dir)
        .arg("--quarryd")
        .arg(quarryd_path(None).unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = || {
        let found = std::process::Command::new("pgrep")
            .args(["-f", &format!("quarryd.*{}", testnet_dir.display())])
            .output()
            .unwrap();
        String::from_utf8_lossy(&found.stdout).lines().count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while running() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the nodes never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    up.kill().unwrap();
    up.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while running() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} quarryd processes outlived `up`",
            running()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `status --json` gives scripts the table's rows.
#[test]
fn status_prints_json_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let testnet = up(&idle_testnet(
        dir.path(),
        2,
        Link::plain(links(Topology::Line, 2, 0)),
    ))
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_quarry-testnet"))
        .args(["status", "--json", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let snapshot: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = snapshot["nodes"].as_array().expect("an array of nodes");
    assert_eq!(snapshot["branches"].as_array().map(Vec::len), Some(1));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "n0");
    let height = rows[0]["height"].as_u64().expect("a height");
    assert!(height > 0, "funded: {rows:?}");
    assert_eq!(rows[1]["peers"], 1);
    testnet.shutdown().unwrap();
}

/// `up --detach` returns with the nodes running; `down` stops them.
#[test]
fn detached_nodes_outlive_up_until_down() {
    let dir = tempfile::tempdir().unwrap();
    let testnet_tool = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_quarry-testnet"))
            .args(args)
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let started = testnet_tool(&["up", "--detach", "--nodes", "2", "--miners", "1"]);
    assert!(started.status.success(), "{started:?}");
    let status = testnet_tool(&["status", "--json"]);
    assert!(status.status.success(), "{status:?}");
    let snapshot: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    for node in snapshot["nodes"].as_array().unwrap() {
        assert!(
            node["height"].as_u64().is_some(),
            "{node} answers after up ended"
        );
    }
    let stopped = testnet_tool(&["down"]);
    assert!(stopped.status.success(), "{stopped:?}");
    let after = testnet_tool(&["status", "--json"]);
    assert!(!after.status.success(), "no testnet after down: {after:?}");
}

/// `wallet NODE …` and `cli NODE …` run the tools against one node of the testnet.
#[test]
fn wallet_and_cli_pass_through_to_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let testnet = up(&idle_testnet(
        dir.path(),
        2,
        Link::plain(links(Topology::Line, 2, 0)),
    ))
    .unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_quarry-testnet"))
            .arg(args[0])
            .arg("--dir")
            .arg(dir.path())
            .args(&args[1..])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{args:?}: {output:?}");
        stdout
    };
    let height: u64 = testnet.call(1, "getblockcount", json!([])).unwrap();
    assert_eq!(
        run(&["cli", "n1", "getblockcount"]).trim(),
        height.to_string()
    );
    let balance = run(&["wallet", "n1", "balance"]);
    assert!(balance.contains("confirmed"), "{balance}");
    assert!(
        balance.contains("10.01000000"),
        "n1 was funded with 10 coins and some for fees: {balance}"
    );
    // The funded amount can be sent on, fee included.
    let sent = run(&["send", "n1", "n0", "10"]);
    assert_eq!(sent.trim().len(), 64, "a txid: {sent}");
    testnet.shutdown().unwrap();
}
