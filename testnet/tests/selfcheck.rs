//! The main job end to end: the self-check binary mines, reorganises and verifies.

use std::process::Command;

fn quarry_testnet(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quarry-testnet"))
        .args(args)
        .output()
        .expect("quarry-testnet runs")
}

#[test]
fn selfcheck_passes_on_regtest() {
    let output = quarry_testnet(&["selfcheck", "--blocks", "120", "--reorg-depth", "4"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("UTXO set after the reorganisation equals the replay  ok"));
    assert!(stdout.contains("all checks passed"));
}

#[test]
fn bad_arguments_get_clear_errors() {
    let output = quarry_testnet(&["selfcheck", "--blocks", "5"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--blocks"));

    let output = quarry_testnet(&["selfcheck", "--network", "/nonexistent/params.toml"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("'/nonexistent/params.toml' is not a network: use main, testnet or regtest"),
        "{stderr}"
    );
}

#[test]
fn an_error_is_one_readable_line_even_with_rust_backtrace_set() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_quarry-testnet"))
        .args(["status", "--dir"])
        .arg(dir.path().join("none"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
