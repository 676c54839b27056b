//! The Compose export run for real without a Docker daemon: every service in a network
//! namespace this test creates (its own `eth0` on a bridge in a switch namespace of the
//! test's own, so no firewall of the host's, Docker's among them, stands between; the
//! export's fixed address; the project's host names in the namespace's hosts file), started with exactly the command,
//! environment and volumes `compose.yaml` gives it (container paths mapped to folders), relays
//! in their dialler's namespace as `network_mode: service:…` says. Five nodes find each other
//! by name and converge; the export's partition script, run with `QUARRY_EXEC="ip netns
//! exec"` in place of `docker compose exec -T`, cuts the network for real and the two sides
//! mine two chains; `heal.sh` reconnects them and every node ends on the most work.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{shared, succeed, wait_for};
use serde_json::Value;

mod common;

/// Runs `program args`, panicking with its output if it fails.
fn run(program: &str, args: &[&str]) {
    succeed(Command::new(program).args(args));
}

/// The namespaces and the processes of the test, removed however it ends (with a namespace
/// go its links).
struct Lab {
    namespaces: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for namespace in &self.namespaces {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(namespace));
        }
    }
}

/// Whether this machine lets the test make network namespaces (root, iproute2).
fn namespaces_available() -> bool {
    let probe = format!("qprobe{}", std::process::id());
    let made = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if made {
        let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    }
    made
}

fn scenario(prefix: &str) -> String {
    let node = |index: usize| format!("{prefix}-{index}");
    let mut text = String::from("hash_rate = 1000\nspacing = 1\n");
    for index in 0..5 {
        let share = if index == 0 || index == 2 { 0.5 } else { 0.0 };
        text.push_str(&format!(
            "[[node]]\nname = \"{}\"\nshare = {share}\n",
            node(index)
        ));
    }
    for (from, to, delay) in [(1, 0, 0), (2, 1, 30), (3, 2, 0), (4, 3, 0), (4, 0, 0)] {
        text.push_str(&format!(
            "[[link]]\nfrom = \"{}\"\nto = \"{}\"\ndelay_ms = {delay}\n",
            node(from),
            node(to)
        ));
    }
    text.push_str(&format!(
        "[[partition]]\nname = \"split\"\na = [\"{}\", \"{}\"]\nb = [\"{}\", \"{}\", \"{}\"]\n",
        node(0),
        node(1),
        node(2),
        node(3),
        node(4)
    ));
    text
}

/// A node's RPC, called from the switch namespace.
struct Rpc {
    address: String,
    password: String,
    cli: PathBuf,
    switch: String,
}

impl Rpc {
    fn call(&self, method: &str, args: &[&str]) -> Option<Value> {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.switch])
            .arg(&self.cli)
            .args(["--rpc-connect", &self.address, "--rpc-user", "quarry"])
            .env("QUARRY_RPC_PASSWORD", &self.password)
            .arg(method)
            .args(args)
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Some(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn tip(&self) -> Option<(String, u64)> {
        let info = self.call("getblockchaininfo", &[])?;
        Some((
            info["bestblockhash"].as_str()?.to_owned(),
            info["blocks"].as_u64()?,
        ))
    }

    /// The chain work of `block`, if this node has its header.
    fn work(&self, block: &str) -> Option<String> {
        let header = self.call("getblockheader", &[block])?;
        Some(header["chainwork"].as_str()?.to_owned())
    }
}

/// The one tip all `nodes` share, if they do.
fn shared_tip(nodes: &[&Rpc]) -> Option<(String, u64)> {
    shared(nodes.iter().map(|node| node.tip()).collect())
}

#[test]
fn a_compose_export_converges_splits_on_its_partition_and_heals_to_the_most_work() {
    if !namespaces_available() {
        eprintln!(
            "SKIPPED: this test runs the Compose export in network namespaces, which needs root \
             and iproute2; it did not run"
        );
        return;
    }
    let pid = std::process::id();
    let prefix = format!("q{pid}");
    let dir = tempfile::tempdir().unwrap();
    let scenario_file = dir.path().join("lab.toml");
    std::fs::write(&scenario_file, scenario(&prefix)).unwrap();
    let testnet = Path::new(env!("CARGO_BIN_EXE_quarry-testnet"));
    let binaries = testnet.parent().unwrap();
    let project = dir.path().join("project");
    succeed(
        Command::new(testnet)
            .args(["export", "--pow", "simulated", "--scenario"])
            .arg(&scenario_file)
            .arg("--compose")
            .arg(&project),
    );
    let compose: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(project.join("compose.yaml")).unwrap())
            .unwrap();
    let password = std::fs::read_to_string(project.join(".env"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("QUARRY_RPC_PASSWORD="))
        .unwrap()
        .to_owned();
    let services = compose["services"].as_object().unwrap();
    // The nodes: services with an address of their own.
    let addresses: BTreeMap<String, String> = services
        .iter()
        .filter_map(|(name, service)| {
            let address = service["networks"]["quarry"]["ipv4_address"].as_str()?;
            Some((name.clone(), address.to_owned()))
        })
        .collect();
    assert_eq!(addresses.len(), 5);

    let mut lab = Lab {
        namespaces: Vec::new(),
        children: Vec::new(),
    };
    let switch = format!("q{pid}-switch");
    run("ip", &["netns", "add", &switch]);
    lab.namespaces.push(switch.clone());
    let in_switch = |args: &[&str]| {
        let mut all = vec!["-n", switch.as_str()];
        all.extend(args);
        run("ip", &all);
    };
    in_switch(&["link", "add", "bridge", "type", "bridge"]);
    in_switch(&["addr", "add", "10.213.0.1/24", "dev", "bridge"]);
    in_switch(&["link", "set", "bridge", "up"]);
    in_switch(&["link", "set", "lo", "up"]);
    let mut hosts = String::from("127.0.0.1 localhost\n");
    for (name, address) in &addresses {
        hosts.push_str(&format!("{address} {name}\n"));
    }
    for (number, (name, address)) in addresses.iter().enumerate() {
        run("ip", &["netns", "add", name]);
        lab.namespaces.push(name.clone());
        let port = format!("port{number}");
        in_switch(&[
            "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", name,
        ]);
        in_switch(&["link", "set", &port, "master", "bridge", "up"]);
        run(
            "ip",
            &[
                "-n",
                name,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ],
        );
        run("ip", &["-n", name, "link", "set", "eth0", "up"]);
        run("ip", &["-n", name, "link", "set", "lo", "up"]);
        // `ip netns exec` mounts /etc/netns/NAME/hosts over /etc/hosts: the project's names.
        let etc = Path::new("/etc/netns").join(name);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("hosts"), &hosts).unwrap();
    }

    // Every service but the attack's (behind a profile), as Compose would start it.
    for (name, service) in services {
        if service.get("profiles").is_some() {
            continue;
        }
        let namespace = match service["network_mode"].as_str() {
            Some(mode) => mode.strip_prefix("service:").unwrap().to_owned(),
            None => name.clone(),
        };
        // Volumes: `./x` is the project's file, a named volume a folder of the test's.
        let mut mounts = Vec::new();
        for volume in service["volumes"].as_array().unwrap_or(&Vec::new()) {
            let parts: Vec<&str> = volume.as_str().unwrap().split(':').collect();
            let host = match parts[0].strip_prefix("./") {
                Some(file) => project.join(file),
                None => {
                    let folder = dir.path().join("volumes").join(parts[0]);
                    std::fs::create_dir_all(&folder).unwrap();
                    folder
                }
            };
            mounts.push((parts[1].to_owned(), host));
        }
        let mut command = Command::new("ip");
        let argv: Vec<String> = service["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|word| word.as_str().unwrap().to_owned())
            .collect();
        command
            .args(["netns", "exec", &namespace])
            .arg(binaries.join(&argv[0]))
            .args(&argv[1..])
            .env_clear();
        for (variable, value) in service["environment"]
            .as_object()
            .unwrap_or(&Default::default())
        {
            let value = value.as_str().unwrap();
            let value = if value.starts_with("${QUARRY_RPC_PASSWORD") {
                password.clone()
            } else {
                match mounts.iter().find(|(inside, _)| inside == value) {
                    Some((_, host)) => host.display().to_string(),
                    None => value.to_owned(),
                }
            };
            command.env(variable, value);
        }
        let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
        lab.children.push(
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }

    let cli = binaries.join("quarry-cli");
    let nodes: Vec<Rpc> = addresses
        .values()
        .map(|address| Rpc {
            address: format!("{address}:19443"),
            password: password.clone(),
            cli: cli.clone(),
            switch: switch.clone(),
        })
        .collect();
    let all: Vec<&Rpc> = nodes.iter().collect();
    let logs = || {
        addresses
            .keys()
            .map(|name| {
                let log = std::fs::read_to_string(dir.path().join(format!("{name}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                format!("{name}: {}", tail.join(" | "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Converged: one tip everywhere, a few blocks up.
    let deadline = Duration::from_secs(120);
    let mut converged = None;
    wait_for(
        "the five nodes share a tip at height 4 or more",
        deadline,
        || {
            converged = shared_tip(&all).filter(|(_, height)| *height >= 4);
            converged.is_some()
        },
    );
    assert!(converged.is_some());

    // The partition: two chains, neither side seeing the other's blocks.
    let script = project.join("partitions/split.sh");
    succeed(Command::new(&script).env("QUARRY_EXEC", "ip netns exec"));
    // Blocks above every node's height now are mined after the cut: none can cross it.
    let split_height = all
        .iter()
        .filter_map(|node| node.tip().map(|(_, height)| height))
        .max()
        .expect("the nodes answer");
    let (side_a, side_b) = (&all[..2], &all[2..]);
    let mut split = None;
    wait_for(
        &format!("each side mines two blocks of its own\n{}", logs()),
        deadline,
        || {
            let (Some(a), Some(b)) = (shared_tip(side_a), shared_tip(side_b)) else {
                return false;
            };
            split = Some((a.clone(), b.clone()));
            a.0 != b.0 && a.1 >= split_height + 2 && b.1 >= split_height + 2
        },
    );
    let ((tip_a, _), (tip_b, _)) = split.unwrap();
    assert!(
        side_b[0].work(&tip_a).is_none(),
        "side b has side a's tip: the cut leaks"
    );
    assert!(
        side_a[0].work(&tip_b).is_none(),
        "side a has side b's tip: the cut leaks"
    );

    // Healed: one tip again, with at least the work of either side's chain.
    succeed(Command::new(project.join("heal.sh")).env("QUARRY_EXEC", "ip netns exec"));
    let work_a = side_a[0].work(&tip_a).unwrap();
    let work_b = side_b[0].work(&tip_b).unwrap();
    let mut healed = None;
    wait_for(
        &format!("the five nodes share a tip again\n{}", logs()),
        deadline,
        || {
            healed = shared_tip(&all);
            healed.is_some()
        },
    );
    let (tip, _) = healed.unwrap();
    let work = all[0].work(&tip).unwrap();
    // Chain work is fixed-width hex: compared as text, it compares as a number.
    assert_eq!(work.len(), work_a.len());
    assert!(
        work >= work_a && work >= work_b,
        "{work} < {work_a} or {work_b}"
    );
}
