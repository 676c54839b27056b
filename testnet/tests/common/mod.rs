//! What the multi-process tests of `quarry-testnet` share: commands that must succeed, and
//! waiting for nodes to agree.
// Each test crate uses part of it.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `command`; its standard output, or a panic with everything it printed.
pub fn succeed(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{command:?} did not run: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Polls `done` until it holds; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The one tip (best block, height) every node has, given each node's tip (`None` if one did
/// not answer).
pub fn shared(tips: Option<Vec<(String, u64)>>) -> Option<(String, u64)> {
    let tips = tips?;
    let first = tips.first()?.clone();
    tips.iter().all(|tip| *tip == first).then_some(first)
}
