//! Real `quarryd` processes on loopback for end-to-end tests, and a JSON-RPC client for them.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use quarry_chain::testing::{test_key, unit_params};
use quarry_chain::{Address, ChainParams};
use serde_json::{json, Value};
use tempfile::TempDir;

/// A binary of the workspace: Cargo's path when the test belongs to the crate that builds it,
/// else the one beside the test executable's directory (other crates' tests, e.g. the wallet's).
pub fn binary(name: &str, cargo_path: Option<&str>) -> PathBuf {
    cargo_path.map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        exe.parent()
            .and_then(Path::parent)
            .expect("tests run from target/<profile>/deps")
            .join(name)
    })
}

/// The daemon.
pub fn quarryd() -> PathBuf {
    binary("quarryd", option_env!("CARGO_BIN_EXE_quarryd"))
}

/// The RPC client.
pub fn quarry_cli() -> PathBuf {
    binary("quarry-cli", option_env!("CARGO_BIN_EXE_quarry-cli"))
}

/// The test network: `unit` parameters (coinbase maturity 3, easy proof of work) from a file.
pub fn params() -> ChainParams {
    unit_params()
}

/// The address of test key `n` on the test network.
pub fn address(n: u64) -> String {
    Address::new(test_key(n), &params()).to_string()
}

/// A free loopback port (bound and released: another process could take it, rarely).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Writes the test network's parameters file in `dir`.
pub fn write_params(dir: &Path) -> PathBuf {
    let path = dir.join("unit.toml");
    std::fs::write(&path, toml::to_string(params().spec()).unwrap()).unwrap();
    path
}

/// A JSON-RPC error: code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFailed {
    pub code: i64,
    pub message: String,
}

/// A running daemon with its own base directory.
pub struct Daemon {
    pub name: String,
    pub child: Option<Child>,
    pub dir: TempDir,
    pub rpc: SocketAddr,
    pub metrics: SocketAddr,
    /// `user:password` when configured; otherwise the cookie is used.
    pub credentials: Option<String>,
    /// A built-in network's name; `None` for the unit-test parameters.
    pub network: Option<String>,
}

impl Daemon {
    /// Starts `quarryd` on the test network with `extra` arguments and waits until it answers.
    pub fn start(name: &str, extra: &[&str]) -> Self {
        Self::start_with(name, extra, None)
    }

    /// Starts `quarryd` with `extra` arguments, authenticating with `credentials` (`user:password`)
    /// instead of the cookie when given.
    pub fn start_with(name: &str, extra: &[&str], credentials: Option<&str>) -> Self {
        Self::launch(name, None, extra, credentials)
    }

    /// Starts `quarryd` on the built-in `network` (e.g. `main`, at real difficulty).
    pub fn start_on(name: &str, network: &str, extra: &[&str]) -> Self {
        Self::launch(name, Some(network), extra, None)
    }

    fn launch(
        name: &str,
        network: Option<&str>,
        extra: &[&str],
        credentials: Option<&str>,
    ) -> Self {
        let mut daemon = Self::launch_unstarted(name, network, credentials);
        daemon.spawn(extra);
        daemon.wait_ready();
        daemon
    }

    fn launch_unstarted(name: &str, network: Option<&str>, credentials: Option<&str>) -> Self {
        Self {
            name: name.into(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
            rpc: SocketAddr::from(([127, 0, 0, 1], free_port())),
            metrics: SocketAddr::from(([127, 0, 0, 1], free_port())),
            credentials: credentials.map(str::to_owned),
            network: network.map(str::to_owned),
        }
    }

    /// The arguments every test daemon runs with.
    pub fn base_args(&self) -> Vec<String> {
        let network = match &self.network {
            Some(name) => name.clone(),
            None => write_params(self.dir.path()).display().to_string(),
        };
        vec![
            "--network".into(),
            network,
            "--datadir".into(),
            self.dir.path().display().to_string(),
            "--listen".into(),
            "/ip4/127.0.0.1/tcp/0".into(),
            "--rpc-bind".into(),
            self.rpc.to_string(),
            "--metrics-bind".into(),
            self.metrics.to_string(),
            "--log-level".into(),
            "info".into(),
        ]
    }

    fn spawn(&mut self, extra: &[&str]) {
        self.spawn_in(Command::new(quarryd()), extra);
    }

    fn spawn_in(&mut self, mut command: Command, extra: &[&str]) {
        let log = std::fs::File::create(self.dir.path().join("quarryd.log")).unwrap();
        let child = command
            .args(self.base_args())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("quarryd starts");
        self.child = Some(child);
    }

    /// Starts `quarryd` as [`Daemon::start`] does, but unable to write past `limit_kib` KiB in
    /// any file (`ulimit -f` with SIGXFSZ ignored): writes then fail as on a full disk.
    pub fn start_with_full_disk_at(name: &str, extra: &[&str], limit_kib: u32) -> Self {
        let mut daemon = Self::launch_unstarted(name, None, None);
        let mut shell = Command::new("bash");
        shell
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f {limit_kib}; exec \"$0\" \"$@\""
            ))
            .arg(quarryd());
        daemon.spawn_in(shell, extra);
        daemon.wait_ready();
        daemon
    }

    /// The network's data directory (where the cookie is).
    pub fn data_dir(&self) -> PathBuf {
        let name = self.network.clone();
        self.dir
            .path()
            .join(name.unwrap_or_else(|| params().name().to_owned()))
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("quarryd.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "{} exited with {status} at start:\n{}",
                    self.name,
                    self.log()
                );
            }
            if self.call("getblockcount", json!([])).is_ok() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} did not answer within 60 s:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `user:password` from the cookie file.
    pub fn cookie(&self) -> String {
        std::fs::read_to_string(self.data_dir().join(".cookie")).unwrap()
    }

    /// Posts raw `body` with `credentials` (`None`: no Authorization header); returns the
    /// HTTP status and body.
    pub fn post(&self, body: impl Into<Vec<u8>>, credentials: Option<&str>) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut request = agent.post(&format!("http://{}/", self.rpc));
        if let Some(credentials) = credentials {
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            request = request.header("Authorization", &format!("Basic {encoded}"));
        }
        match request.send(body.into()) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                (
                    status,
                    response.body_mut().read_to_string().unwrap_or_default(),
                )
            }
            Err(error) => (0, error.to_string()),
        }
    }

    /// Calls `method` with `params` in bitcoin-cli's style.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, CallFailed> {
        let cookie = match &self.credentials {
            Some(credentials) => credentials.clone(),
            None => std::fs::read_to_string(self.data_dir().join(".cookie")).map_err(|_| {
                CallFailed {
                    code: 0,
                    message: "no cookie".into(),
                }
            })?,
        };
        let body = json!({ "jsonrpc": "1.0", "id": "test", "method": method, "params": params });
        let (status, text) = self.post(body.to_string(), Some(&cookie));
        let reply: Value = serde_json::from_str(&text).map_err(|_| CallFailed {
            code: 0,
            message: format!("HTTP {status}: {text}"),
        })?;
        match &reply["error"] {
            Value::Null => Ok(reply["result"].clone()),
            error => Err(CallFailed {
                code: error["code"].as_i64().unwrap_or(0),
                message: error["message"].as_str().unwrap_or_default().into(),
            }),
        }
    }

    /// Calls `method`, failing the test on an error.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        self.call(method, params.clone())
            .unwrap_or_else(|error| panic!("{} {method} {params}: {error:?}", self.name))
    }

    /// The metrics text.
    pub fn metrics_text(&self) -> String {
        ureq::get(&format!("http://{}/metrics", self.metrics))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    }

    /// The peer-to-peer address others can dial.
    pub fn p2p_address(&self) -> String {
        let info = self.rpc("getnetworkinfo", json!([]));
        info["localaddresses"][0].as_str().unwrap().to_owned()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        wait_exit(&mut child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{} did not stop within 60 s:\n{}", self.name, self.log()))
    }

    /// Waits for the process to exit by itself (after `stop`).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_exit(&mut child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{} did not stop within 60 s:\n{}", self.name, self.log()))
    }

    /// Starts the daemon again on the same directory and ports.
    pub fn restart(&mut self, extra: &[&str]) {
        assert!(self.child.is_none(), "stop it first");
        self.spawn(extra);
        self.wait_ready();
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `probe` every 100 ms until it yields a value, failing with `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
