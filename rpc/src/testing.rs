//! Real `quarryd` processes on loopback for end-to-end tests (of the node, the wallet and the
//! RPC client), started through [`crate::launch`], and a raw JSON-RPC client for them that
//! sees every HTTP status and error code. Behind the `test-utils` feature.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use base64::Engine;
use quarry_chain::testing::{test_key, test_keypair, unit_params, Spendable};
use quarry_chain::{Address, ChainParams};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::launch::{self, binary_path, Launch, Lifetime};

/// The daemon, as the test's build left it.
pub fn quarryd() -> PathBuf {
    binary_path("quarryd", None)
}

/// The RPC client, as the test's build left it.
pub fn quarry_cli() -> PathBuf {
    binary_path("quarry-cli", None)
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
    launch::free_port().expect("a free port")
}

/// Writes the test network's parameters file in `dir`.
pub fn write_params(dir: &Path) -> PathBuf {
    let path = dir.join("unit.toml");
    std::fs::write(&path, toml::to_string(params().spec()).unwrap()).unwrap();
    path
}

/// Starts of a daemon tried before a port clash is a failure.
const START_ATTEMPTS: usize = 3;

/// A JSON-RPC error: code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFailed {
    /// Bitcoin Core's error code (0: no JSON-RPC answer).
    pub code: i64,
    /// The message.
    pub message: String,
}

/// A running daemon with its own base directory, killed when dropped.
#[derive(Debug)]
pub struct Daemon {
    /// Its name in failure messages.
    pub name: String,
    /// The process, while it runs.
    pub child: Option<Child>,
    /// Its base directory.
    pub dir: TempDir,
    /// Its JSON-RPC address.
    pub rpc: SocketAddr,
    /// Its metrics address.
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

    /// Starts `quarryd` on `network`: a built-in name (e.g. `main`, at real difficulty) or the
    /// path of a parameters file.
    pub fn start_on(name: &str, network: &str, extra: &[&str]) -> Self {
        Self::launch(name, Some(network), extra, None)
    }

    fn launch(
        name: &str,
        network: Option<&str>,
        extra: &[&str],
        credentials: Option<&str>,
    ) -> Self {
        // A port found free may be taken before the daemon binds it (by another test's
        // outgoing connection): a start that fails on that is retried on fresh ports.
        let mut attempt = 1;
        loop {
            let mut daemon = Self::launch_unstarted(name, network, credentials);
            daemon.spawn(extra);
            match daemon.try_wait_ready() {
                Ok(()) => return daemon,
                Err(error) => {
                    let clash = daemon.log().contains("Address already in use");
                    if !clash || attempt == START_ATTEMPTS {
                        panic!("{}: {error}:\n{}", daemon.name, daemon.log());
                    }
                }
            }
            attempt += 1;
        }
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

    /// How this daemon is started.
    pub fn launch_spec(&self) -> Launch {
        let network = match &self.network {
            Some(name) => name.clone(),
            None => write_params(self.dir.path()).display().to_string(),
        };
        Launch {
            quarryd: quarryd(),
            network,
            base_dir: self.dir.path().to_owned(),
            rpc: self.rpc,
            metrics: self.metrics,
        }
    }

    /// The arguments every test daemon runs with.
    pub fn base_args(&self) -> Vec<String> {
        self.launch_spec().args()
    }

    fn spawn(&mut self, extra: &[&str]) {
        self.spawn_in(Command::new(quarryd()), extra);
    }

    fn spawn_in(&mut self, command: Command, extra: &[&str]) {
        let extra: Vec<String> = extra.iter().map(|arg| (*arg).to_owned()).collect();
        let child = self
            .launch_spec()
            .spawn_with(command, &extra, Lifetime::WithThisProcess)
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
        let name = match &self.network {
            // A parameters file: the network is named inside it.
            Some(file) if Path::new(file).is_file() => ChainParams::from_toml_file(Path::new(file))
                .map_or_else(|_| file.clone(), |params| params.name().to_owned()),
            Some(name) => name.clone(),
            None => params().name().to_owned(),
        };
        self.dir.path().join(name)
    }

    /// Mines a block paying test key 1, then three paying key 2 so that its coinbase matures;
    /// returns that coinbase and its 50 coins as a coin key 1 can spend.
    pub fn mature_coin(&self) -> (quarry_chain::Transaction, Spendable) {
        let blocks = self.rpc("generatetoaddress", json!([1, address(1)]));
        self.rpc("generatetoaddress", json!([3, address(2)]));
        let block = self.rpc("getblock", json!([blocks[0]]));
        let hex = self.rpc("getrawtransaction", json!([block["tx"][0]]));
        let coinbase: quarry_chain::Transaction =
            quarry_chain::encode::decode(&hex::decode(hex.as_str().unwrap()).unwrap()).unwrap();
        let coin = Spendable::output_of(&coinbase, 0, test_keypair(1));
        (coinbase, coin)
    }

    /// A spend of [`Daemon::mature_coin`]'s coin: 30 coins to key 5, 19.999 back to key 1,
    /// a fee of 0.001.
    pub fn spend_of(coin: Spendable) -> quarry_chain::Transaction {
        quarry_chain::testing::signed_spend(
            params().genesis_hash(),
            &[coin],
            vec![
                quarry_chain::testing::pay(5, 3_000_000_000),
                quarry_chain::testing::pay(1, 1_999_900_000),
            ],
        )
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("quarryd.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        if let Err(error) = self.try_wait_ready() {
            panic!("{}: {error}:\n{}", self.name, self.log());
        }
    }

    /// Waits until the daemon answers; the reason when it exits or stays silent.
    fn try_wait_ready(&mut self) -> Result<(), launch::StartError> {
        let mut child = self.child.take().expect("started");
        let ready = launch::wait_until_answers(&mut child, Duration::from_secs(60), || {
            self.call("getblockcount", json!([])).is_ok()
        });
        if ready.is_ok() {
            self.child = Some(child);
        }
        ready
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
        info["p2paddresses"][0].as_str().unwrap().to_owned()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        launch::wait_exit(&mut child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{} did not stop within 60 s:\n{}", self.name, self.log()))
    }

    /// Waits for the process to exit by itself (after `stop`).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        launch::wait_exit(&mut child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{} did not stop within 60 s:\n{}", self.name, self.log()))
    }

    /// Starts the daemon again on the same directory and ports.
    pub fn restart(&mut self, extra: &[&str]) {
        assert!(self.child.is_none(), "stop it first");
        self.spawn(extra);
        self.wait_ready();
    }
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
    let start = std::time::Instant::now();
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
