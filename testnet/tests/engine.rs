//! The virtual-time engine through the command line, and against real nodes: a seeded run
//! gives the same trials whatever the number of threads, and the same double-spend point
//! measured on real nodes and in the engine agrees.

use std::process::Command;

use quarry_testnet::analysis::difference_interval_at;
use quarry_testnet::attack::AttackSettings;
use quarry_testnet::cluster::quarryd_path;
use quarry_testnet::engine::EngineKind;
use quarry_testnet::engine_check::check;
use quarry_testnet::experiment::{AttackRun, StopRule};
use serde_json::Value;

/// `quarry-testnet attack double-spend --engine sim --attacker-share 0.3`.
fn engine_double_spend() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quarry-testnet"));
    command.args(["attack", "double-spend", "--engine", "sim"]);
    command.args(["--attacker-share", "0.3"]);
    command
}

/// The trials of a seeded engine double spend run on `threads` threads, as JSON.
fn engine_trials(threads: &str, seed: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let output = engine_double_spend()
        .args(["--confirmations", "1,3", "--trials", "150", "--json"])
        .args(["--parallel", threads, "--seed", seed, "--report"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["engine"], "sim");
    assert!(dir.path().join("report.md").exists());
    report["trials"].clone()
}

#[test]
fn a_seeded_engine_run_reproduces_bit_for_bit_on_any_number_of_threads() {
    let one = engine_trials("1", "42");
    assert_eq!(one.as_array().unwrap().len(), 300);
    assert_eq!(one, engine_trials("2", "42"));
    assert_ne!(one, engine_trials("2", "43"));
}

#[test]
fn the_engine_refuses_settings_that_only_real_nodes_have() {
    let output = engine_double_spend()
        .args(["--pow", "real"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("real nodes only"));
}

#[test]
fn real_nodes_and_the_engine_agree_on_the_double_spend_rate() {
    let dir = tempfile::tempdir().unwrap();
    let run = AttackRun {
        settings: AttackSettings {
            q: 0.3,
            premined: false,
            give_up_behind: 6,
            pow: quarry_chain::PowMode::Simulated,
            retarget: false,
            speedup: 10,
        },
        confirmations: vec![1],
        trials: 0,
        hash_rate: 20_000,
        spacing: 1,
        parallel: 2,
        stop_rule: StopRule::Trials,
        report: dir.path().to_owned(),
        nodes: quarry_testnet::cluster::NodeEngine::processes(&quarryd_path(None).unwrap()),
        engine: EngineKind::Nodes,
        seed: 1,
    };
    let rows = check(&run, &[0.3], 40, 4_000).unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!((row.nodes.trials, row.sim.trials), (40, 4_000));
    // At 99.9% rather than the report's 95%: a sound engine fails this one run in a thousand.
    let (low, high) = difference_interval_at(
        (row.nodes.reversed, row.nodes.trials),
        (row.sim.reversed, row.sim.trials),
        3.29,
    );
    assert!(low <= 0.0 && 0.0 <= high, "{row:#?}");
    // The engine's many trials pin the exact value.
    assert!(!row.sim.exact_outside_interval, "{row:#?}");
    assert!(dir.path().join("check.json").exists());
}
