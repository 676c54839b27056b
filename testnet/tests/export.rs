//! `quarry-testnet export`: the Kubernetes manifests validate offline against the Kubernetes
//! schemas (PyPI's `kubernetes-validate`, which `scripts/test.sh` installs), and both exports
//! carry every node, every link with its delay and every partition of the scenario.

use std::path::Path;
use std::process::Command;

use common::succeed;
use serde_json::Value;

mod common;

/// Seven nodes: three miners, delayed and plain links (a chain with a shortcut), a node
/// configuration, resources, one node not scraped, two partitions.
const SCENARIO: &str = r#"
hash_rate = 1000
spacing = 5
delay_ms = 40
[image]
repository = "registry.example/quarry"
tag = "test"
[[node]]
name = "miner-a"
share = 0.5
config = "log_level = \"debug\"\n[mempool]\nmax_size_mb = 50\n"
resources = { requests = { cpu = "100m", memory = "128Mi" }, limits = { memory = "512Mi" } }
[[node]]
name = "miner-b"
share = 0.3
[[node]]
name = "miner-c"
share = 0.2
[[node]]
name = "relay-1"
[[node]]
name = "relay-2"
metricsExport = false
[[node]]
name = "merchant"
[[node]]
name = "observer"
[[link]]
from = "miner-b"
to = "miner-a"
[[link]]
from = "miner-c"
to = "miner-b"
delay_ms = 0
[[link]]
from = "relay-1"
to = "miner-a"
delay_ms = 250
[[link]]
from = "relay-2"
to = "relay-1"
[[link]]
from = "merchant"
to = "relay-2"
delay_ms = 5
[[link]]
from = "observer"
to = "merchant"
[[link]]
from = "observer"
to = "miner-c"
delay_ms = 0
[[partition]]
name = "halves"
a = ["miner-a", "miner-b", "relay-1"]
b = ["miner-c", "relay-2", "merchant", "observer"]
[[partition]]
name = "lone-miner"
a = ["miner-a"]
b = ["miner-b", "miner-c", "relay-1", "relay-2", "merchant", "observer"]
"#;

/// (dialler, listener, delay ms) of every link above.
const LINKS: [(&str, &str, u64); 7] = [
    ("miner-b", "miner-a", 40),
    ("miner-c", "miner-b", 0),
    ("relay-1", "miner-a", 250),
    ("relay-2", "relay-1", 40),
    ("merchant", "relay-2", 5),
    ("observer", "merchant", 40),
    ("observer", "miner-c", 0),
];

const NODES: [&str; 7] = [
    "miner-a", "miner-b", "miner-c", "relay-1", "relay-2", "merchant", "observer",
];

fn export(dir: &Path, what: &str) {
    let scenario = dir.join("lab.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    succeed(
        Command::new(env!("CARGO_BIN_EXE_quarry-testnet"))
            .args(["export", "--scenario"])
            .arg(&scenario)
            .arg(what)
            .arg(dir.join("out")),
    );
}

/// Every YAML document of `path`, as JSON.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("---\n")
        .filter(|document| !document.trim().is_empty())
        .map(|document| serde_yaml_ng::from_str(document).unwrap())
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|item| item.as_str().unwrap().to_owned())
        .collect()
}

/// The value after `flag` in a command line, each time it appears.
fn after(command: &[String], flag: &str) -> Vec<String> {
    command
        .windows(2)
        .filter(|pair| pair[0] == flag)
        .map(|pair| pair[1].clone())
        .collect()
}

/// Where `dialler` connects to reach `listener` (host:port), and the delay in between, from a
/// node's quarryd command and its relays' commands (`relays`: each relay's command).
fn reaches(quarryd: &[String], relays: &[Vec<String>]) -> Vec<(String, u64)> {
    after(quarryd, "--bootnode")
        .into_iter()
        .map(|address| {
            let parts: Vec<&str> = address.split('/').collect();
            let target = format!("{}:{}", parts[2], parts[4]);
            match relays
                .iter()
                .find(|relay| after(relay, "--listen") == [target.clone()])
            {
                Some(relay) => (
                    after(relay, "--to")[0].clone(),
                    after(relay, "--delay-ms")[0].parse().unwrap(),
                ),
                None => (target, 0),
            }
        })
        .collect()
}

fn expected_reach(host: impl Fn(&str) -> String, dialler: &str) -> Vec<(String, u64)> {
    let mut links: Vec<(String, u64)> = LINKS
        .iter()
        .filter(|(from, _, _)| *from == dialler)
        .map(|(_, to, delay)| (format!("{}:19444", host(to)), *delay))
        .collect();
    links.sort();
    links
}

#[test]
fn the_kubernetes_manifests_validate_against_the_schemas() {
    let dir = tempfile::tempdir().unwrap();
    export(dir.path(), "--kubernetes");
    let out = dir.path().join("out");
    let files = ["quarry.yaml", "attack-job.yaml", "partitions/halves.yaml"];
    let validated = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "--no-warn"])
        .args(files)
        .current_dir(&out)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "kubernetes-validate did not run ({error}): install it with \
                 `pip install kubernetes-validate` (scripts/test.sh does)"
            )
        });
    assert!(
        validated.status.success(),
        "{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
    // The validator does refuse what Kubernetes would: a replica count as text.
    let manifest = std::fs::read_to_string(out.join("quarry.yaml")).unwrap();
    std::fs::write(
        out.join("broken.yaml"),
        manifest.replacen("replicas: 1", "replicas: one", 1),
    )
    .unwrap();
    let refused = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "broken.yaml"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

#[test]
fn the_kubernetes_manifests_hold_every_node_link_delay_and_partition() {
    let dir = tempfile::tempdir().unwrap();
    export(dir.path(), "--kubernetes");
    let out = dir.path().join("out");
    let manifests = documents(&out.join("quarry.yaml"));
    let kind = |kind: &str| -> Vec<&Value> {
        manifests
            .iter()
            .filter(|document| document["kind"] == kind)
            .collect()
    };
    let service = kind("Service")[0];
    assert_eq!(service["spec"]["clusterIP"], "None");
    let params = kind("ConfigMap")[0]["data"]["params.toml"]
        .as_str()
        .unwrap();
    assert!(params.contains("pow = \"simulated\""), "{params}");
    let sets = kind("StatefulSet");
    let names: Vec<&str> = sets
        .iter()
        .map(|set| set["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, NODES);
    for set in sets {
        let name = set["metadata"]["name"].as_str().unwrap();
        assert_eq!(set["spec"]["serviceName"], "quarry");
        let pod = &set["spec"]["template"];
        let containers = pod["spec"]["containers"].as_array().unwrap();
        assert!(containers
            .iter()
            .all(|container| container["image"] == "registry.example/quarry:test"));
        let quarryd = strings(&containers[0]["command"]);
        let relays: Vec<Vec<String>> = containers[1..]
            .iter()
            .map(|container| strings(&container["command"]))
            .collect();
        let mut reached = reaches(&quarryd, &relays);
        reached.sort();
        assert_eq!(
            reached,
            expected_reach(|node| format!("{node}-0.quarry"), name),
            "{name}"
        );
        let scraped = pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true";
        assert_eq!(scraped, name != "relay-2", "{name}");
        let miner = after(&quarryd, "--max-hash-rate");
        match name {
            "miner-a" => {
                assert_eq!(miner, ["500"]);
                assert_eq!(
                    containers[0]["resources"]["limits"]["memory"], "512Mi",
                    "{name}"
                );
            }
            "miner-b" => assert_eq!(miner, ["300"]),
            "miner-c" => assert_eq!(miner, ["200"]),
            _ => assert!(miner.is_empty(), "{name}"),
        }
    }
    let config = kind("ConfigMap")[0]["data"]["miner-a.toml"]
        .as_str()
        .unwrap();
    assert!(config.contains("max_size_mb = 50"));
    // Each partition: a policy per side admitting peers from that side only.
    for (partition, a) in [
        ("halves", vec!["miner-a", "miner-b", "relay-1"]),
        ("lone-miner", vec!["miner-a"]),
    ] {
        let policies = documents(&out.join(format!("partitions/{partition}.yaml")));
        assert_eq!(policies.len(), 2);
        let b: Vec<&str> = NODES.iter().copied().filter(|n| !a.contains(n)).collect();
        for (policy, side) in policies.iter().zip([a.clone(), b]) {
            assert_eq!(policy["kind"], "NetworkPolicy");
            let selected = strings(&policy["spec"]["podSelector"]["matchExpressions"][0]["values"]);
            let admitted = strings(
                &policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]
                    ["values"],
            );
            assert_eq!(selected, side, "{partition}");
            assert_eq!(admitted, side, "{partition}");
        }
    }
    let job = documents(&out.join("attack-job.yaml"));
    assert!(job.iter().any(|document| document["kind"] == "Job"));
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("grafana/quarry-nodes.json")).unwrap(),
    )
    .unwrap();
    assert!(dashboard["panels"]
        .as_array()
        .is_some_and(|panels| !panels.is_empty()));
}

#[test]
fn the_compose_project_holds_every_node_link_delay_and_partition() {
    let dir = tempfile::tempdir().unwrap();
    export(dir.path(), "--compose");
    let out = dir.path().join("out");
    let project: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(out.join("compose.yaml")).unwrap())
            .unwrap();
    let services = project["services"].as_object().unwrap();
    let address = |node: &str| {
        services[node]["networks"]["quarry"]["ipv4_address"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for name in NODES {
        let service = &services[name];
        assert_eq!(service["hostname"], name);
        let quarryd = strings(&service["command"]);
        let relays: Vec<Vec<String>> = services
            .values()
            .filter(|relay| relay["network_mode"] == format!("service:{name}"))
            .map(|relay| strings(&relay["command"]))
            .collect();
        let mut reached = reaches(&quarryd, &relays);
        reached.sort();
        assert_eq!(reached, expected_reach(str::to_owned, name), "{name}");
    }
    let env = std::fs::read_to_string(out.join(".env")).unwrap();
    assert!(env.starts_with("COMPOSE_PROJECT_NAME=lab\n"), "{env}");
    let password = env
        .lines()
        .find_map(|line| line.strip_prefix("QUARRY_RPC_PASSWORD="));
    assert!(
        password.is_some_and(|password| password.len() == 32),
        "{env}"
    );
    // Each partition's script cuts every pair across it, both ways, and no pair within a side.
    for (partition, a) in [
        ("halves", vec!["miner-a", "miner-b", "relay-1"]),
        ("lone-miner", vec!["miner-a"]),
    ] {
        let script =
            std::fs::read_to_string(out.join(format!("partitions/{partition}.sh"))).unwrap();
        let cuts: Vec<(String, Vec<String>)> = script
            .lines()
            .filter_map(|line| line.strip_prefix("cut "))
            .map(|line| {
                let mut words = line.split(' ').map(str::to_owned);
                (words.next().unwrap(), words.collect())
            })
            .collect();
        assert_eq!(cuts.len(), NODES.len(), "{partition}");
        for (node, dropped) in cuts {
            let mut expected: Vec<String> = NODES
                .iter()
                .filter(|other| a.contains(other) != a.contains(&node.as_str()))
                .map(|other| address(other))
                .collect();
            expected.sort();
            let mut dropped = dropped;
            dropped.sort();
            assert_eq!(dropped, expected, "{partition}: {node}");
        }
    }
}

#[test]
fn names_a_cluster_cannot_take_are_refused_with_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("bad.toml");
    std::fs::write(&scenario, "[[node]]\nname = \"Miner_A\"\nshare = 1.0\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_quarry-testnet"))
        .args(["export", "--scenario"])
        .arg(&scenario)
        .arg("--kubernetes")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("'Miner_A'") && message.contains("lowercase"),
        "{message}"
    );
    assert!(!dir.path().join("out").exists());
}
