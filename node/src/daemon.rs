//! `quarryd`: settings from the command line and a TOML file, the data directory (lock file,
//! peer identity, cookie), and the daemon's life from start to a clean shutdown on SIGINT,
//! SIGTERM or the `stop` call.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use quarry_chain::{Address, ChainParams};
use quarry_mempool::MempoolConfig;
use quarry_network::{Keypair, Multiaddr, NetworkConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::node::{Node, NodeConfig};
use crate::rpc::{self, Cookie, Credentials, RpcContext};
use quarry_rpc::location::{default_ports, ConfigFile, Location, RpcConfig};

/// Settings read from the TOML configuration file; the command line overrides them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// `main`, `testnet`, `regtest` or a parameters file.
    pub network: Option<String>,
    /// Log filter, e.g. `info` or `quarry_network=debug,info`.
    pub log_level: Option<String>,
    /// JSON-RPC settings.
    pub rpc: RpcConfig,
    /// Metrics settings.
    pub metrics: MetricsConfig,
    /// Mining settings.
    pub mining: MiningConfig,
    /// Peer-to-peer settings.
    pub p2p: NetworkConfig,
    /// Mempool policy.
    pub mempool: MempoolConfig,
    /// Chain store settings.
    pub store: StoreConfig,
}

/// Chain store settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Wait for the disk at every chain commit (see `--sync-writes`).
    pub sync_writes: bool,
}

/// Metrics settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where to serve `/metrics` (default: localhost on the network's metrics port).
    pub bind: Option<SocketAddr>,
    /// Turn the endpoint off.
    pub disabled: bool,
}

/// Mining settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MiningConfig {
    /// Mine from the start.
    pub enabled: bool,
    /// Where mined blocks pay.
    pub address: Option<String>,
    /// Mining threads (0: one per CPU).
    pub threads: usize,
    /// Hashes per second the background miner does at most (the virtual rate on a network
    /// with simulated proof of work).
    pub max_hash_rate: Option<u64>,
    /// Seed of a simulated miner (simulated proof of work only).
    pub seed: Option<u64>,
}

impl ConfigFile for FileConfig {
    fn network(&self) -> Option<&str> {
        self.network.as_deref()
    }
}

impl AsRef<RpcConfig> for FileConfig {
    fn as_ref(&self) -> &RpcConfig {
        &self.rpc
    }
}

/// The daemon's [`Location`] settled, with every section of its configuration file.
pub type Resolved = quarry_rpc::Resolved<FileConfig>;

/// quarryd, the Quarry node daemon: validates and relays blocks and transactions, mines on
/// request, and answers JSON-RPC calls (see `quarry-cli help`).
#[derive(Debug, Parser)]
#[command(name = "quarryd", version)]
pub struct Args {
    #[command(flatten)]
    pub location: Location,
    /// Peer-to-peer listen address (repeatable) [default: /ip4/0.0.0.0/tcp/<network port>].
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<Multiaddr>,
    /// Peer to connect to at start and keep connected (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub bootnode: Vec<Multiaddr>,
    /// Discover peers on the local network with mDNS.
    #[arg(long)]
    pub mdns: bool,
    /// JSON-RPC listen address [default: 127.0.0.1:<network RPC port>].
    #[arg(long, value_name = "IP:PORT")]
    pub rpc_bind: Option<SocketAddr>,
    /// JSON-RPC user (with --rpc-password; otherwise a cookie file is used).
    #[arg(
        long,
        value_name = "USER",
        requires = "rpc_password",
        env = "QUARRY_RPC_USER"
    )]
    pub rpc_user: Option<String>,
    /// JSON-RPC password.
    #[arg(
        long,
        value_name = "PASSWORD",
        requires = "rpc_user",
        env = "QUARRY_RPC_PASSWORD",
        hide_env_values = true
    )]
    pub rpc_password: Option<String>,
    /// Seconds a JSON-RPC client may take to send a request's headers, and then its body,
    /// before its connection is closed (Core's -rpcservertimeout) [default: 30].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub rpc_server_timeout: Option<u64>,
    /// Prometheus metrics listen address [default: 127.0.0.1:<network metrics port>].
    #[arg(long, value_name = "IP:PORT")]
    pub metrics_bind: Option<SocketAddr>,
    /// Do not serve metrics.
    #[arg(long)]
    pub no_metrics: bool,
    /// Mine blocks from the start (needs --miner-address).
    #[arg(long)]
    pub mine: bool,
    /// Address mined blocks pay to.
    #[arg(long, value_name = "ADDRESS")]
    pub miner_address: Option<String>,
    /// Mining threads (0: one per CPU).
    #[arg(long, value_name = "N")]
    pub miner_threads: Option<usize>,
    /// Most hashes per second the background miner may do (generatetoaddress, which makes
    /// blocks on demand, runs at full speed). On a network with `pow = "simulated"`, the
    /// miner's virtual hash rate: blocks come as a Poisson process at this rate, no hashing.
    #[arg(long, value_name = "H/S")]
    pub max_hash_rate: Option<u64>,
    /// Seed of the simulated miner's waits (simulated proof of work only) [default: random].
    #[arg(long, value_name = "N")]
    pub mining_seed: Option<u64>,
    /// Log filter: error, warn, info, debug, trace, or per module (quarry_network=debug,info).
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Wait for the disk (fsync) at every chain commit, so a power loss loses no accepted
    /// block; without it commits are atomic and survive a crash of the process, and a power
    /// loss may take the node back a few blocks.
    #[arg(long)]
    pub sync_writes: bool,
    /// Least chain work, in hex, of a header branch worth indexing (Bitcoin Core's
    /// -minimumchainwork); lighter branches are only held in memory [default: the network's].
    #[arg(long, value_name = "HEX")]
    pub minimum_chain_work: Option<String>,
}

/// Everything the daemon runs with, settled from the file and the command line.
#[derive(Debug)]
pub struct Settings {
    /// The network.
    pub params: ChainParams,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The node's components.
    pub node: NodeConfig,
    /// JSON-RPC listen address.
    pub rpc_bind: SocketAddr,
    /// Configured user and password, if any.
    pub rpc_user: Option<(String, String)>,
    /// How long a client may take to send a request's headers, and then its body.
    pub rpc_server_timeout: Duration,
    /// Metrics listen address, if served.
    pub metrics_bind: Option<SocketAddr>,
    /// Mine from the start.
    pub mine: bool,
    /// Where mined blocks pay.
    pub miner_address: Option<Address>,
    /// Log filter.
    pub log_level: String,
}

impl Settings {
    /// Settles the settings: command line over file over defaults.
    pub fn resolve(args: Args) -> anyhow::Result<Self> {
        let Resolved {
            mut params,
            data_dir,
            file,
        } = args.location.resolve::<FileConfig>()?;
        if let Some(work) = args.minimum_chain_work {
            let mut spec = params.spec().clone();
            spec.minimum_chain_work = Some(work);
            params = ChainParams::new(spec).context("invalid --minimum-chain-work")?;
        }
        let ports = default_ports(params.name());
        let localhost = |port| SocketAddr::from(([127, 0, 0, 1], port));

        let mut p2p = file.p2p;
        if !args.listen.is_empty() {
            p2p.listen = args.listen;
        } else if p2p.listen == NetworkConfig::default().listen {
            p2p.listen = vec![format!("/ip4/0.0.0.0/tcp/{}", ports.p2p)
                .parse()
                .expect("a valid multiaddr")];
        }
        p2p.bootnodes.extend(args.bootnode);
        p2p.mdns |= args.mdns;

        let rpc_user = match (
            args.rpc_user.or(file.rpc.user),
            args.rpc_password.or(file.rpc.password),
        ) {
            (Some(user), Some(password)) => Some((user, password)),
            (None, None) => None,
            _ => bail!("an RPC user needs a password and a password needs a user"),
        };
        let miner_address = args
            .miner_address
            .or(file.mining.address)
            .map(|text| Address::parse(&text, &params))
            .transpose()
            .context("invalid miner address")?;
        let mine = args.mine || file.mining.enabled;
        if mine && miner_address.is_none() {
            bail!(
                "--mine needs --miner-address (an address of the {} network)",
                params.name()
            );
        }
        let metrics_bind = (!(args.no_metrics || file.metrics.disabled)).then(|| {
            args.metrics_bind
                .or(file.metrics.bind)
                .unwrap_or(localhost(ports.metrics))
        });
        Ok(Self {
            data_dir,
            node: NodeConfig {
                network: p2p,
                mempool: file.mempool,
                miner_threads: args.miner_threads.unwrap_or(file.mining.threads),
                max_hash_rate: args.max_hash_rate.or(file.mining.max_hash_rate),
                mining_seed: args.mining_seed.or(file.mining.seed),
                sync_writes: args.sync_writes || file.store.sync_writes,
            },
            rpc_bind: args
                .rpc_bind
                .or(file.rpc.bind)
                .unwrap_or(localhost(ports.rpc)),
            rpc_server_timeout: args
                .rpc_server_timeout
                .or(file.rpc.server_timeout)
                .map_or(rpc::server::DEFAULT_SERVER_TIMEOUT, Duration::from_secs),
            rpc_user,
            metrics_bind,
            mine,
            miner_address,
            log_level: args
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            params,
        })
    }
}

/// An exclusive lock on a data directory, held while the daemon runs.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Locks `data_dir` (creating it), or explains that another daemon holds it.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let path = data_dir.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another quarryd is already using the data directory {}; stop it first or pass another --datadir",
                data_dir.display()
            ),
            Err(std::fs::TryLockError::Error(error)) => {
                Err(error).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

/// The node's peer identity, created on first start and kept in the data directory.
pub fn load_or_create_keypair(data_dir: &Path) -> anyhow::Result<Keypair> {
    let path = data_dir.join("p2p_key");
    match std::fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).with_context(|| {
            format!(
                "the peer key {} is damaged; delete it to make a new identity",
                path.display()
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let keypair = Keypair::generate_ed25519();
            let bytes = keypair
                .to_protobuf_encoding()
                .context("cannot encode the peer key")?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::io::Write::write_all(
                &mut options
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
                &bytes,
            )?;
            Ok(keypair)
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Resolves when the chain store has failed (a full disk, a broken disk): nothing more can be
/// stored, so the node stops.
async fn store_failed(node: &Node) -> quarry_chain::StoreError {
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    loop {
        poll.tick().await;
        if let Some(failure) = node.reader().store_failure() {
            return failure;
        }
    }
}

/// Resolves when SIGINT or SIGTERM arrives, or `stop` is set.
async fn stop_requested(mut stop: watch::Receiver<bool>) {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("interrupted: shutting down"),
        () = terminate => info!("terminated: shutting down"),
        _ = stop.wait_for(|stop| *stop) => info!("stop requested over RPC: shutting down"),
    }
}

/// Runs the daemon until it is asked to stop, then shuts everything down in order: the RPC
/// and metrics servers, the miner, the network, the chain (RocksDB is closed on return).
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let _lock = DataDirLock::acquire(&settings.data_dir)?;
    let keypair = load_or_create_keypair(&settings.data_dir)?;
    let rpc_listener = rpc::server::bind(settings.rpc_bind, "JSON-RPC").await?;
    let metrics_listener = match settings.metrics_bind {
        Some(address) => Some(rpc::server::bind(address, "metrics").await?),
        None => None,
    };
    let (credentials, cookie) = match &settings.rpc_user {
        Some((user, password)) => (Credentials::new(user, password), None),
        None => {
            let cookie = Cookie::create(&settings.data_dir).with_context(|| {
                format!(
                    "cannot write the RPC cookie in {}",
                    settings.data_dir.display()
                )
            })?;
            (cookie.credentials.clone(), Some(cookie))
        }
    };
    info!(
        network = settings.params.name(),
        data_dir = %settings.data_dir.display(),
        "starting quarryd {}",
        env!("CARGO_PKG_VERSION")
    );
    let node = Arc::new(
        Node::start(
            settings.params.clone(),
            &settings.data_dir,
            settings.node.clone(),
            keypair,
        )
        .await?,
    );
    if settings.mine {
        let address = settings
            .miner_address
            .expect("checked when resolving settings");
        node.start_mining(address.key(), None)?;
        info!(%address, "mining");
    }
    let (stop, stopped) = watch::channel(false);
    let context = Arc::new(RpcContext {
        node: Arc::clone(&node),
        miner_address: settings.miner_address,
        stop: stop.clone(),
        active: Default::default(),
    });
    let shutdown_signal = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    info!(address = %rpc_listener.local_addr()?, "JSON-RPC listening");
    let rpc_server = tokio::spawn(rpc::serve_rpc(
        rpc_listener,
        context,
        credentials,
        settings.rpc_server_timeout,
        shutdown_signal(stopped.clone()),
    ));
    let metrics_server = match metrics_listener {
        Some(listener) => {
            info!(address = %listener.local_addr()?, "metrics at /metrics");
            Some(tokio::spawn(rpc::serve_metrics(
                listener,
                Arc::clone(&node),
                shutdown_signal(stopped.clone()),
            )))
        }
        None => None,
    };

    let failure = tokio::select! {
        () = stop_requested(stopped) => None,
        failure = store_failed(&node) => {
            error!(%failure, "the chain store failed: shutting down");
            Some(failure)
        }
    };
    stop.send_replace(true);
    node.request_stop();
    if let Err(error) = rpc_server.await? {
        warn!(%error, "the RPC server failed");
    }
    if let Some(server) = metrics_server {
        if let Err(error) = server.await? {
            warn!(%error, "the metrics server failed");
        }
    }
    drop(cookie);
    // Calls still running hold the node for a moment.
    let mut node = node;
    let node = loop {
        match Arc::try_unwrap(node) {
            Ok(node) => break node,
            Err(shared) => {
                node = shared;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let stopped = node.shutdown().await;
    if let Some(failure) = failure {
        bail!(
            "the chain store failed ({failure}). Everything committed before is kept; free \
             disk space (or repair the disk) and start quarryd again"
        );
    }
    stopped?;
    info!("quarryd stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        Args::parse_from(std::iter::once("quarryd").chain(extra.iter().copied()))
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_str().unwrap();
        let settings =
            Settings::resolve(args(&["--datadir", base, "--network", "regtest"])).unwrap();
        assert_eq!(settings.data_dir, dir.path().join("regtest"));
        assert_eq!(settings.rpc_bind, "127.0.0.1:19443".parse().unwrap());
        assert_eq!(
            settings.metrics_bind,
            Some("127.0.0.1:19445".parse().unwrap())
        );
        assert_eq!(
            settings.node.network.listen,
            vec!["/ip4/0.0.0.0/tcp/19444".parse::<Multiaddr>().unwrap()]
        );
        assert_eq!(settings.log_level, "info");
        assert!(settings.rpc_user.is_none() && !settings.mine);

        let miner = Address::new(quarry_chain::testing::test_key(1), &ChainParams::testnet());
        std::fs::write(
            dir.path().join("quarryd.toml"),
            format!(
                "network = \"testnet\"\nlog_level = \"debug\"\n[rpc]\nbind = \"127.0.0.1:7000\"\n\
                 user = \"alice\"\npassword = \"secret\"\n[mining]\nenabled = true\naddress = \"{miner}\"\n\
                 threads = 2\n[metrics]\ndisabled = true\n[p2p]\nmax_inbound = 9\n[store]\nsync_writes = true\n"
            ),
        )
        .unwrap();
        let settings = Settings::resolve(args(&["--datadir", base])).unwrap();
        assert_eq!(settings.params.name(), "testnet");
        assert_eq!(settings.data_dir, dir.path().join("testnet"));
        assert_eq!(settings.rpc_bind, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(settings.rpc_user, Some(("alice".into(), "secret".into())));
        assert_eq!(settings.metrics_bind, None);
        assert!(settings.mine);
        assert_eq!(settings.miner_address, Some(miner));
        assert_eq!(settings.node.miner_threads, 2);
        assert!(settings.node.sync_writes);
        assert_eq!(settings.node.network.max_inbound, 9);
        assert_eq!(settings.log_level, "debug");

        let settings = Settings::resolve(args(&[
            "--datadir",
            base,
            "--rpc-bind",
            "127.0.0.1:7001",
            "--miner-threads",
            "3",
            "--log-level",
            "warn",
            "--max-hash-rate",
            "1000",
            "--minimum-chain-work",
            "0x10",
        ]))
        .unwrap();
        assert_eq!(
            settings.params.minimum_chain_work(),
            quarry_chain::params::parse_work("10").unwrap()
        );
        assert_eq!(settings.rpc_bind, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(settings.node.miner_threads, 3);
        assert_eq!(settings.node.max_hash_rate, Some(1000));
        assert_eq!(settings.log_level, "warn");
    }

    #[test]
    fn a_data_directory_takes_one_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DataDirLock::acquire(dir.path()).unwrap();
        let error = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(error.contains("another quarryd"), "{error}");
        drop(lock);
        DataDirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn the_peer_key_is_kept_and_a_damaged_one_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_keypair(dir.path()).unwrap();
        let again = load_or_create_keypair(dir.path()).unwrap();
        assert_eq!(first.public(), again.public());
        std::fs::write(dir.path().join("p2p_key"), b"garbage").unwrap();
        let error = load_or_create_keypair(dir.path()).unwrap_err().to_string();
        assert!(error.contains("damaged"), "{error}");
    }
}
