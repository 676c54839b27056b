//! The Docker engine, where a Docker daemon answers (`scripts/test.sh` installs and starts one
//! when it runs as root; elsewhere this test says loudly that it was skipped): the image built
//! from this build's binaries, a five-node testnet of containers on its own network converges,
//! a partition cuts the network for real (blackhole routes: neither side gets the other's
//! blocks) and the sides mine two chains, healing reconverges on the most work, and a
//! double-spend trial runs on containers. Only the containers and network these commands
//! create, labelled with the testnet's project, are touched; none is left behind.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{shared, succeed, wait_for};
use quarry_testnet::cluster::Testnet;
use quarry_testnet::docker::{self, Docker};
use serde_json::{json, Value};

mod common;

const IMAGE: &str = "quarry:test";

fn testnet_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quarry-testnet"));
    command.args(args);
    command
}

/// Every node's best block hash and height.
fn tips(testnet: &Testnet, nodes: &[usize]) -> Option<Vec<(String, u64)>> {
    nodes
        .iter()
        .map(|&node| {
            let info: Value = testnet.call(node, "getblockchaininfo", json!([])).ok()?;
            Some((
                info["bestblockhash"].as_str()?.to_owned(),
                info["blocks"].as_u64()?,
            ))
        })
        .collect()
}

/// The tip all of `nodes` share, if they do.
fn shared_tip(testnet: &Testnet, nodes: &[usize]) -> Option<(String, u64)> {
    shared(tips(testnet, nodes))
}

fn chain_work(testnet: &Testnet, node: usize, block: &str) -> Option<String> {
    let header: Value = testnet.call(node, "getblockheader", json!([block])).ok()?;
    Some(header["chainwork"].as_str()?.to_owned())
}

/// How long the containers get to agree.
const PATIENCE: Duration = Duration::from_secs(120);

/// Stops the testnet in `dir` however the test ends, and checks nothing of it is left.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = testnet_command(&["down", "--dir"]).arg(self.0).output();
        let _ = Docker::new(IMAGE, self.0).remove();
    }
}

#[test]
fn a_docker_testnet_converges_splits_for_real_heals_to_the_most_work_and_runs_an_attack() {
    if !docker::available() {
        eprintln!(
            "SKIPPED: no Docker daemon answers on this machine, so the Docker engine was not \
             tested (scripts/test.sh installs and starts one when it runs as root)"
        );
        return;
    }
    let binaries = Path::new(env!("CARGO_BIN_EXE_quarry-testnet"))
        .parent()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    succeed(
        testnet_command(&["image", "--load", "--tag", IMAGE, "--output"])
            .arg(dir.path().join("image.tar"))
            .arg("--binaries")
            .arg(binaries),
    );
    // Miners on both sides of the partition, one link delayed (a relay container).
    let scenario = dir.path().join("five.toml");
    std::fs::write(
        &scenario,
        "hash_rate = 1000\nspacing = 1\n\
         [[node]]\nname = \"n0\"\nshare = 0.5\n[[node]]\nname = \"n1\"\n\
         [[node]]\nname = \"n2\"\nshare = 0.5\n[[node]]\nname = \"n3\"\n[[node]]\nname = \"n4\"\n\
         [[link]]\nfrom = \"n1\"\nto = \"n0\"\n[[link]]\nfrom = \"n2\"\nto = \"n1\"\ndelay_ms = 30\n\
         [[link]]\nfrom = \"n3\"\nto = \"n2\"\n[[link]]\nfrom = \"n4\"\nto = \"n3\"\n\
         [[link]]\nfrom = \"n4\"\nto = \"n0\"\n\
         [[partition]]\nname = \"split\"\na = [\"n0\", \"n1\"]\nb = [\"n2\", \"n3\", \"n4\"]\n",
    )
    .unwrap();
    let net = dir.path().join("net");
    let _down = Down(&net);
    let started = Instant::now();
    succeed(
        testnet_command(&[
            "up",
            "--engine",
            "docker",
            "--image",
            IMAGE,
            "--pow",
            "simulated",
            "--detach",
            "--scenario",
        ])
        .arg(&scenario)
        .arg("--dir")
        .arg(&net),
    );
    eprintln!(
        "five containers up and funded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let testnet = Testnet::load(&net).unwrap();
    let docker = testnet
        .state
        .docker
        .clone()
        .expect("the state records the Docker engine");
    assert_eq!(docker.image, IMAGE);
    let all = [0, 1, 2, 3, 4];
    wait_for("the five containers share a tip", PATIENCE, || {
        shared_tip(&testnet, &all).is_some()
    });

    // The scenario's partition, cut for real: routes, not only bans.
    let said = succeed(testnet_command(&["partition", "split", "--dir"]).arg(&net));
    assert!(said.contains("partitioned n0,n1 / n2,n3,n4"), "{said}");
    // Blocks above every node's height now are mined after the cut: none can cross it.
    let height = tips(&testnet, &all)
        .and_then(|tips| tips.into_iter().map(|(_, height)| height).max())
        .expect("every node answers");
    let routes =
        succeed(Command::new("docker").args(["exec", &docker.container("n0"), "ip", "route"]));
    assert_eq!(routes.matches("blackhole").count(), 3, "{routes}");
    let (side_a, side_b) = ([0, 1], [2, 3, 4]);
    let mut split = None;
    wait_for("each side mines two blocks of its own", PATIENCE, || {
        let (Some(a), Some(b)) = (shared_tip(&testnet, &side_a), shared_tip(&testnet, &side_b))
        else {
            return false;
        };
        split = Some((a.clone(), b.clone()));
        a.0 != b.0 && a.1 >= height + 2 && b.1 >= height + 2
    });
    let ((tip_a, _), (tip_b, _)) = split.unwrap();
    assert!(
        chain_work(&testnet, 2, &tip_a).is_none(),
        "side b got side a's block"
    );
    assert!(
        chain_work(&testnet, 0, &tip_b).is_none(),
        "side a got side b's block"
    );

    succeed(testnet_command(&["heal", "--dir"]).arg(&net));
    let work_a = chain_work(&testnet, 0, &tip_a).unwrap();
    let work_b = chain_work(&testnet, 2, &tip_b).unwrap();
    let mut healed = None;
    wait_for("the five containers share a tip again", PATIENCE, || {
        healed = shared_tip(&testnet, &all);
        healed.is_some()
    });
    let work = chain_work(&testnet, 0, &healed.unwrap().0).unwrap();
    assert!(
        work >= work_a && work >= work_b,
        "{work} < {work_a} or {work_b}"
    );
    succeed(testnet_command(&["down", "--dir"]).arg(&net));
    let left = succeed(Command::new("docker").args([
        "ps",
        "--all",
        "--quiet",
        "--filter",
        &format!("label=quarry.testnet={}", docker.project),
    ]));
    assert!(left.trim().is_empty(), "containers left: {left}");

    // A double-spend trial on containers.
    let report = dir.path().join("double-spend");
    succeed(
        testnet_command(&[
            "attack",
            "double-spend",
            "--attacker-share",
            "0.3",
            "--confirmations",
            "1",
            "--trials",
            "1",
            "--speedup",
            "5",
            "--retarget",
            "off",
            "--docker",
            IMAGE,
            "--json",
            "--report",
        ])
        .arg(&report),
    );
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(written["rows"][0]["trials"], 1, "{written}");
    assert_eq!(written["trials"].as_array().map(Vec::len), Some(1));
}
