//! `quarry-testnet image`: an OCI image of the node and its tools built from the local
//! binaries, with nothing pulled from a registry. The one layer holds `quarryd`,
//! `quarry-cli`, `quarry-wallet` and `quarry-testnet`, iproute2's `ip` when this machine has
//! it (partitions in containers are blackhole routes it adds), exactly the shared libraries `ldd` says they load,
//! and a user, a group and a data directory: `FROM scratch` in effect. The archive is an OCI
//! image layout that also carries Docker's `manifest.json`, so `docker load`, `podman load`
//! and `kind load image-archive` all take it; the build is reproducible (fixed times, sorted
//! entries).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::scenario::Image;

/// The non-root user (and group) the containers run as.
pub const USER_ID: u32 = 10_001;
/// The tools the image holds, found beside `quarry-testnet`.
pub const TOOLS: [&str; 4] = ["quarryd", "quarry-cli", "quarry-wallet", "quarry-testnet"];
/// Where they go.
const BIN_DIR: &str = "usr/local/bin";
/// Where `ip` goes.
const IP_PATH: &str = "usr/sbin/ip";

/// What to build.
#[derive(Clone, Debug)]
pub struct ImageOptions {
    /// The folder holding the four tools.
    pub binaries: PathBuf,
    /// The archive to write.
    pub output: PathBuf,
    /// Its name and tag.
    pub image: Image,
    /// Remove debug information from the tools' copies (a third of the size).
    pub strip: bool,
    /// iproute2's `ip`, if it is to be included.
    pub ip: Option<PathBuf>,
}

/// What was built.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    /// Every file of the layer, by its path in the image.
    pub files: Vec<String>,
    /// The layer's size uncompressed.
    pub unpacked_bytes: u64,
    /// The layer's size compressed (what a registry or `docker load` moves).
    pub layer_bytes: u64,
    /// The manifest's digest (`sha256:…`).
    pub digest: String,
}

/// iproute2's `ip` where Debian and most distributions put it, if it is there.
pub fn find_ip() -> Option<PathBuf> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// The shared libraries `binary` loads (its dynamic loader among them), by their paths on
/// this machine, as `ldd` resolves them.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd (part of the C library's tools) to list the shared libraries")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // A static binary: ldd says so and fails.
        if text.contains("statically linked")
            || String::from_utf8_lossy(&output.stderr).contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        bail!(
            "ldd {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut libraries = Vec::new();
    for line in text.lines().map(str::trim) {
        let path = match line.split_once("=>") {
            Some((name, target)) => {
                let target = target.trim();
                if target.starts_with("not found") {
                    bail!(
                        "{} needs {}, which this machine does not have",
                        binary.display(),
                        name.trim()
                    );
                }
                target.split(" (").next().unwrap_or_default()
            }
            None => line.split(" (").next().unwrap_or_default(),
        };
        // linux-vdso is the kernel's, in no file.
        if path.starts_with('/') {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// A file of the layer.
struct Entry {
    contents: Vec<u8>,
    mode: u32,
}

fn passwd() -> String {
    format!("root:x:0:0:root:/root:/sbin/nologin\nquarry:x:{USER_ID}:{USER_ID}:Quarry:/data:/sbin/nologin\n")
}

fn group() -> String {
    format!("root:x:0:\nquarry:x:{USER_ID}:\n")
}

/// The tool at `path`, stripped of debug information when asked and `strip` is here.
fn tool_contents(path: &Path, strip: bool) -> Result<Vec<u8>> {
    if strip {
        let copy = tempfile_path(path)?;
        let stripped = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&copy)
            .arg(path)
            .status();
        if stripped.is_ok_and(|status| status.success()) {
            let contents = std::fs::read(&copy)?;
            let _ = std::fs::remove_file(&copy);
            return Ok(contents);
        }
        eprintln!(
            "note: `strip` did not run (binutils); {} goes in with its debug information",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn tempfile_path(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().context("a tool has a file name")?;
    Ok(std::env::temp_dir().join(format!(
        "quarry-image-{}-{}",
        std::process::id(),
        name.to_string_lossy()
    )))
}

/// The layer's files by path (no leading `/`).
fn layer_files(options: &ImageOptions) -> Result<BTreeMap<String, Entry>> {
    let mut files = BTreeMap::new();
    let mut elves = Vec::new();
    for tool in TOOLS {
        let path = options.binaries.join(tool);
        if !path.is_file() {
            bail!(
                "{} is missing: build the tools first (`cargo build --release --bins`, or \
                 ./scripts/run.sh) or point --binaries at their folder",
                path.display()
            );
        }
        files.insert(
            format!("{BIN_DIR}/{tool}"),
            Entry {
                contents: tool_contents(&path, options.strip)?,
                mode: 0o755,
            },
        );
        elves.push(path);
    }
    if let Some(ip) = &options.ip {
        files.insert(
            IP_PATH.to_owned(),
            Entry {
                contents: std::fs::read(ip)
                    .with_context(|| format!("cannot read {}", ip.display()))?,
                mode: 0o755,
            },
        );
        elves.push(ip.clone());
    }
    for elf in &elves {
        for library in shared_libraries(elf)? {
            let key = library.to_string_lossy().trim_start_matches('/').to_owned();
            if files.contains_key(&key) {
                continue;
            }
            // Symbolic links are followed: the image holds the file under the name asked for.
            let contents = std::fs::read(&library)
                .with_context(|| format!("cannot read {}", library.display()))?;
            files.insert(
                key,
                Entry {
                    contents,
                    mode: 0o755,
                },
            );
        }
    }
    let etc = [
        ("etc/passwd", passwd()),
        ("etc/group", group()),
        // Names from /etc/hosts first, then DNS (the container runtime mounts both files).
        ("etc/nsswitch.conf", "hosts: files dns\n".to_owned()),
    ];
    for (path, text) in etc {
        files.insert(
            path.to_owned(),
            Entry {
                contents: text.into_bytes(),
                mode: 0o644,
            },
        );
    }
    Ok(files)
}

/// A tar header with fixed times and owners, for a reproducible archive.
fn header(kind: tar::EntryType, mode: u32, size: u64, owner: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(u64::from(owner));
    header.set_gid(u64::from(owner));
    header
}

/// The layer as an uncompressed tar: folders (`/data` the user's, `/tmp` everyone's), then
/// files.
fn layer_tar(files: &BTreeMap<String, Entry>) -> Result<Vec<u8>> {
    let mut folders: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for path in files.keys() {
        let mut parent = Path::new(path).parent();
        while let Some(folder) = parent.filter(|folder| !folder.as_os_str().is_empty()) {
            folders.insert(folder.to_string_lossy().into_owned(), (0o755, 0));
            parent = folder.parent();
        }
    }
    folders.insert("data".into(), (0o755, USER_ID));
    folders.insert("tmp".into(), (0o1777, 0));
    let mut builder = tar::Builder::new(Vec::new());
    for (folder, (mode, owner)) in &folders {
        let mut header = header(tar::EntryType::Directory, *mode, 0, *owner);
        builder.append_data(&mut header, format!("{folder}/"), std::io::empty())?;
    }
    for (path, entry) in files {
        let mut header = header(
            tar::EntryType::Regular,
            entry.mode,
            entry.contents.len() as u64,
            0,
        );
        builder.append_data(&mut header, path, entry.contents.as_slice())?;
    }
    Ok(builder.into_inner()?)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The image configuration: how a container of it runs.
fn config(image: &Image, diff_id: &str) -> Value {
    let ports = crate::export::ports();
    let seconds = |s: u64| s * 1_000_000_000;
    json!({
        "architecture": architecture(),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "User": format!("{USER_ID}:{USER_ID}"),
            "Env": ["PATH=/usr/local/bin:/usr/sbin", "QUARRY_DATADIR=/data"],
            "Cmd": ["quarryd"],
            "WorkingDir": "/data",
            "Volumes": {"/data": {}},
            "ExposedPorts": {
                format!("{}/tcp", ports.p2p): {},
                format!("{}/tcp", ports.rpc): {},
                format!("{}/tcp", ports.metrics): {},
            },
            // Docker's extension of the configuration: `docker ps` shows the node healthy
            // once it answers RPC (network and credentials from the container's variables).
            "Healthcheck": {
                "Test": ["CMD", "quarry-cli", "getblockcount"],
                "Interval": seconds(30),
                "Timeout": seconds(5),
                "StartPeriod": seconds(5),
                "Retries": 3,
            },
            "Labels": {
                "org.opencontainers.image.title": "quarry",
                "org.opencontainers.image.description": "Quarry node (quarryd) and its tools",
                "org.opencontainers.image.version": image.tag,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "quarry-testnet image"}],
    })
}

/// Builds the image and writes the archive.
pub fn build(options: &ImageOptions) -> Result<BuiltImage> {
    let files = layer_files(options)?;
    let tar = layer_tar(&files)?;
    let diff_id = sha256(&tar);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&tar)?;
    let layer = encoder.finish()?;
    let layer_digest = sha256(&layer);
    let config = serde_json::to_vec(&config(&options.image, &diff_id))?;
    let config_digest = sha256(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))?;
    let manifest_digest = sha256(&manifest);
    let reference = options.image.to_string();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": reference,
                "org.opencontainers.image.ref.name": options.image.tag,
            },
        }],
    }))?;
    let blob = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    // Docker's own save format beside the layout: older `docker load` reads only this.
    let docker_manifest = serde_json::to_vec(&json!([{
        "Config": blob(&config_digest),
        "RepoTags": [reference],
        "Layers": [blob(&layer_digest)],
    }]))?;
    let mut archive = tar::Builder::new(
        std::fs::File::create(&options.output)
            .with_context(|| format!("cannot create {}", options.output.display()))?,
    );
    let members: [(String, &[u8]); 6] = [
        ("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json".into(), &index),
        ("manifest.json".into(), &docker_manifest),
        (blob(&config_digest), &config),
        (blob(&layer_digest), &layer),
        (blob(&manifest_digest), &manifest),
    ];
    for (path, bytes) in members {
        let mut header = header(tar::EntryType::Regular, 0o644, bytes.len() as u64, 0);
        archive.append_data(&mut header, path, bytes)?;
    }
    archive.into_inner()?.sync_all()?;
    Ok(BuiltImage {
        files: files.keys().cloned().collect(),
        unpacked_bytes: tar.len() as u64,
        layer_bytes: layer.len() as u64,
        digest: manifest_digest,
    })
}
