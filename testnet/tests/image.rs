//! `quarry-testnet image`: the archive is a consistent OCI layout (every digest is its blob's),
//! and its one layer is enough to run: unpacked into a folder and entered with `chroot` as the
//! image's non-root user, with the image's environment, quarryd starts and writes its data
//! directory, the image's health check answers, and a relay finds a peer by host name (the
//! C library resolves names with nothing but the layer's files and the hosts file a container
//! runtime mounts). No Docker daemon is needed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::succeed;
use serde_json::Value;
use sha2::{Digest, Sha256};

mod common;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The archive's members by path.
fn members(archive: &Path) -> std::collections::HashMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(std::fs::File::open(archive).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (path, bytes)
        })
        .collect()
}

fn blob<'a>(members: &'a std::collections::HashMap<String, Vec<u8>>, digest: &Value) -> &'a [u8] {
    let digest = digest.as_str().unwrap();
    let bytes = &members[&format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))];
    assert_eq!(sha256(bytes), digest, "a blob is not what its digest says");
    bytes
}

fn build(dir: &Path) -> PathBuf {
    let archive = dir.join("image.tar");
    let testnet = Path::new(env!("CARGO_BIN_EXE_quarry-testnet"));
    succeed(
        Command::new(testnet)
            .args(["image", "--tag", "quarry:test", "--output"])
            .arg(&archive)
            .arg("--binaries")
            .arg(testnet.parent().unwrap()),
    );
    archive
}

/// A command run in `root` as the image's user, with the image's environment and `extra`.
fn in_image(
    root: &Path,
    environment: &[String],
    extra: &[(&str, String)],
    argv: &[String],
) -> Command {
    let mut command = Command::new("chroot");
    command
        .arg("--userspec=10001:10001")
        .arg(root)
        .args(argv)
        .env_clear();
    for variable in environment {
        let (name, value) = variable.split_once('=').unwrap();
        command.env(name, value);
    }
    for (name, value) in extra {
        command.env(name, value);
    }
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Stops the node when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_image_is_a_consistent_layout_whose_layer_runs_the_node_as_a_non_root_user() {
    let dir = tempfile::tempdir().unwrap();
    let archive = build(dir.path());
    let members = members(&archive);
    let index: Value = serde_json::from_slice(&members["index.json"]).unwrap();
    let descriptor = &index["manifests"][0];
    assert_eq!(
        descriptor["annotations"]["io.containerd.image.name"],
        "quarry:test"
    );
    let manifest: Value = serde_json::from_slice(blob(&members, &descriptor["digest"])).unwrap();
    let config: Value =
        serde_json::from_slice(blob(&members, &manifest["config"]["digest"])).unwrap();
    let layer = blob(&members, &manifest["layers"][0]["digest"]);
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(layer)
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][0], sha256(&unpacked).as_str());
    let docker: Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    assert_eq!(docker[0]["RepoTags"][0], "quarry:test");
    assert_eq!(config["config"]["User"], "10001:10001");

    // Only the tools, ip, their libraries and the user's files.
    let root = dir.path().join("rootfs");
    // As a container runtime unpacks it: owners kept (the data directory is the user's).
    let mut layer_archive = tar::Archive::new(unpacked.as_slice());
    layer_archive.set_preserve_ownerships(true);
    layer_archive.set_preserve_permissions(true);
    layer_archive.unpack(&root).unwrap();
    let mut files = Vec::new();
    let mut folders = vec![root.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    for file in &files {
        let allowed = file.starts_with("usr/local/bin/quarry")
            || file == "usr/sbin/ip"
            || file.starts_with("etc/")
            || file.contains(".so");
        assert!(allowed, "{file} has no business in the image");
    }
    for tool in ["quarryd", "quarry-cli", "quarry-wallet", "quarry-testnet"] {
        assert!(files.contains(&format!("usr/local/bin/{tool}")), "{tool}");
    }

    if !nix_is_root() {
        eprintln!("SKIPPED: running the image's layer needs chroot, which needs root; the layout was checked");
        return;
    }
    // The partitions' tool runs with the layer's libraries alone.
    succeed(
        Command::new("chroot")
            .arg(&root)
            .args(["/usr/sbin/ip", "-V"]),
    );
    // What a container runtime mounts: the hosts file.
    std::fs::copy("/etc/hosts", root.join("etc/hosts")).unwrap();
    let environment: Vec<String> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variable| variable.as_str().unwrap().to_owned())
        .collect();
    let (rpc, metrics) = (free_port(), free_port());
    let network = [("QUARRY_NETWORK", "regtest".to_owned())];
    let quarryd: Vec<String> = [
        "quarryd",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--rpc-bind",
        &format!("127.0.0.1:{rpc}"),
        "--metrics-bind",
        &format!("127.0.0.1:{metrics}"),
    ]
    .map(str::to_owned)
    .to_vec();
    let mut node = Running(
        in_image(&root, &environment, &network, &quarryd)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("quarryd.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    // The image's health check, as Docker would run it.
    let health: Vec<String> = config["config"]["Healthcheck"]["Test"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|word| word.as_str().unwrap().to_owned())
        .collect();
    let connect = ("QUARRY_RPC_CONNECT", format!("127.0.0.1:{rpc}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let output = in_image(
            &root,
            &environment,
            &[network[0].clone(), connect.clone()],
            &health,
        )
        .output()
        .unwrap();
        if output.status.success() {
            break String::from_utf8_lossy(&output.stdout).trim().to_owned();
        }
        let exited = node.0.try_wait().unwrap();
        assert!(
            Instant::now() < deadline && exited.is_none(),
            "the health check never passed: {}\nnode log: {}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(dir.path().join("quarryd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(answer, "0");
    // The node wrote its chain in the image's data directory, as its user.
    assert!(root.join("data/regtest").is_dir());
    // A relay to the node by host name, and a call through it.
    let relay_port = free_port();
    let relay: Vec<String> = [
        "quarry-testnet",
        "relay",
        "--listen",
        &format!("127.0.0.1:{relay_port}"),
        "--to",
        &format!("localhost:{rpc}"),
        "--delay-ms",
        "20",
    ]
    .map(str::to_owned)
    .to_vec();
    let _relay = Running(
        in_image(&root, &environment, &[], &relay)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let through_relay = ("QUARRY_RPC_CONNECT", format!("127.0.0.1:{relay_port}"));
    let uptime: Vec<String> = vec![
        "quarry-cli".into(),
        "--rpc-wait".into(),
        "10".into(),
        "getblockchaininfo".into(),
    ];
    let output = in_image(
        &root,
        &environment,
        &[network[0].clone(), through_relay],
        &uptime,
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"chain\": \"regtest\""));
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}
