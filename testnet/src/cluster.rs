//! A local testnet of real `quarryd` nodes, as processes on loopback or in Docker containers
//! ([`crate::docker`]): starting them, connecting them in a topology, calling them over
//! JSON-RPC, partitioning and healing, and stopping them. Its layout is saved in
//! `testnet.json` so later commands can act on a running testnet.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use quarry_chain::hash::tagged_hash;
use quarry_chain::{Address, BlockHash, ChainParams, OutputKey, PowMode};
use quarry_rpc::launch::{binary_path, spawn_logged, wait_until_answers, Launch, Lifetime};
use quarry_rpc::types::{NetworkInfo, PeerInfo};
use quarry_rpc::{CallError, Endpoint};
use quarry_wallet::{Seed, Wallet, WalletFile};
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::delay::DelayedLink;
use crate::docker::Docker;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The first loopback port of the delaying relays in containers (one per link).
const RELAY_PORT_BASE: u16 = 20_000;

/// The state file in a testnet's directory.
pub const STATE_FILE: &str = "testnet.json";
/// The network parameters of a testnet, in its directory.
pub const PARAMS_FILE: &str = "network.toml";

/// How nodes are connected.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// Every node to every other.
    Mesh,
    /// A cycle.
    Ring,
    /// A chain.
    Line,
    /// Every node to the first.
    Star,
    /// A random tree plus one extra random link per node (reproducible with the seed).
    Random,
}

/// The links of `topology` over `n` nodes, as (dialler, listener) pairs.
pub fn links(topology: Topology, n: usize, seed: u64) -> Vec<(usize, usize)> {
    use rand::{Rng, SeedableRng};
    let mut links = Vec::new();
    match topology {
        Topology::Mesh => {
            for a in 0..n {
                for b in a + 1..n {
                    links.push((b, a));
                }
            }
        }
        Topology::Line => links.extend((1..n).map(|b| (b, b - 1))),
        Topology::Ring => {
            links.extend((1..n).map(|b| (b, b - 1)));
            if n > 2 {
                links.push((0, n - 1));
            }
        }
        Topology::Star => links.extend((1..n).map(|b| (b, 0))),
        Topology::Random => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            for b in 1..n {
                links.push((b, rng.random_range(0..b)));
                if b >= 2 {
                    let extra = rng.random_range(0..b);
                    if !links.contains(&(b, extra)) {
                        links.push((b, extra));
                    }
                }
            }
        }
    }
    links
}

/// One node of the testnet, as saved in the state file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Its name (`n0`, `n1`, …).
    pub name: String,
    /// Its base data directory.
    pub dir: PathBuf,
    /// Its JSON-RPC address.
    pub rpc: SocketAddr,
    /// Its metrics address.
    pub metrics: SocketAddr,
    /// Its peer-to-peer address with peer id.
    pub p2p: String,
    /// Its peer id.
    pub peer_id: String,
    /// Its process id.
    pub pid: u32,
    /// The share of the total hash rate it mines with (0: not a miner).
    pub share: f64,
    /// Its hash-rate cap, hashes per second (0: not a miner).
    pub hash_rate: u64,
    /// Its wallet file (passphrase [`WALLET_PASSPHRASE`]); mined coins pay its first address.
    pub wallet: PathBuf,
}

impl Testnet {
    /// The seed of node `name`'s simulated miner: fixed by the network (its genesis) and the
    /// name, so a testnet's blocks can be told apart and a run reproduced from its parameters.
    pub fn mining_seed(&self, name: &str) -> u64 {
        mining_seed(&self.params, name)
    }
}

/// The seed of node `name`'s simulated miner on the network of `params`.
pub fn mining_seed(params: &ChainParams, name: &str) -> u64 {
    let genesis = params.genesis_hash().to_byte_array();
    let hash = tagged_hash("quarry/localnet/mining", &[&genesis, name.as_bytes()]);
    u64::from_le_bytes(hash[..8].try_into().expect("8 of 32 bytes"))
}

/// The passphrase of every testnet wallet: these wallets hold play money.
pub const WALLET_PASSPHRASE: &str = "localnet";

/// The seed of the wallet of the node called `name`: fixed, so a testnet is reproducible.
pub fn wallet_seed(name: &str) -> Seed {
    Seed::from_bytes(tagged_hash("quarry/localnet/wallet", &[name.as_bytes()]))
}

/// The first address of the wallet of the node called `name`: where its miner pays.
pub fn address_of(name: &str, params: &ChainParams) -> Address {
    Address::new(
        OutputKey::from_keypair(&wallet_seed(name).keypair(0)),
        params,
    )
}

impl NodeRecord {
    /// Its wallet's first address (where its miner pays).
    pub fn address(&self, params: &ChainParams) -> Address {
        address_of(&self.name, params)
    }

    /// Its wallet, talking to its node.
    pub fn open_wallet(&self, testnet: &Testnet) -> Result<Wallet> {
        Ok(Wallet::open(
            self.wallet.clone(),
            testnet.params.clone(),
            Some(testnet.endpoint(self)?),
        )?)
    }
}

/// What is saved about a running testnet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    /// The network parameters file the nodes run.
    pub params_file: PathBuf,
    /// The nodes.
    pub nodes: Vec<NodeRecord>,
    /// The links.
    pub links: Vec<Link>,
    /// The first height the miners found in the background: the blocks below it funded the
    /// wallets and say nothing about the hash-rate shares.
    #[serde(default)]
    pub mined_from: u64,
    /// Where the nodes run in Docker, if they do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<Docker>,
    /// The scenario's named partitions (`partition NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<NamedPartition>,
}

/// A partition a scenario names: its two sides, by node index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedPartition {
    /// Its name.
    pub name: String,
    /// One side.
    pub a: Vec<usize>,
    /// The other.
    pub b: Vec<usize>,
}

/// Where a testnet's nodes run.
#[derive(Clone, Debug)]
pub enum NodeEngine {
    /// `quarryd` processes on loopback.
    Processes {
        /// The quarryd binary.
        quarryd: PathBuf,
    },
    /// Containers of an image, one per node.
    Docker {
        /// The image (`quarry-testnet image` builds it).
        image: String,
    },
}

impl NodeEngine {
    /// The image the nodes run in, if they run in containers.
    pub fn image(&self) -> Option<&str> {
        match self {
            Self::Processes { .. } => None,
            Self::Docker { image } => Some(image),
        }
    }

    /// Processes of the quarryd at `quarryd`.
    pub fn processes(quarryd: &Path) -> Self {
        Self::Processes {
            quarryd: quarryd.to_path_buf(),
        }
    }
}

/// A link between two nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The node that dials, by index.
    pub dialler: usize,
    /// The node dialled, by index.
    pub listener: usize,
    /// Delay added each way, in milliseconds (0: none).
    pub delay_ms: u64,
    /// The delaying relay's address the dialler uses, while the testnet's `up` runs.
    pub via: Option<String>,
}

impl Link {
    /// Links without delay along `pairs` of (dialler, listener).
    pub fn plain(pairs: Vec<(usize, usize)>) -> Vec<Self> {
        Self::delayed(pairs, 0)
    }

    /// Links along `pairs`, each delayed by `delay_ms`.
    pub fn delayed(pairs: Vec<(usize, usize)>, delay_ms: u64) -> Vec<Self> {
        pairs
            .into_iter()
            .map(|(dialler, listener)| Self {
                dialler,
                listener,
                delay_ms,
                via: None,
            })
            .collect()
    }
}

/// A testnet: its directory, parameters and nodes.
#[derive(Debug)]
pub struct Testnet {
    /// Its directory.
    pub dir: PathBuf,
    /// The network.
    pub params: ChainParams,
    /// What is saved.
    pub state: State,
    children: Vec<Child>,
    /// Whether the nodes it starts outlive this process.
    lifetime: Lifetime,
}

/// Refuses groups sharing a node, returning the first shared one.
fn check_partition(a: &[usize], b: &[usize]) -> Result<(), usize> {
    match a.iter().find(|node| b.contains(node)) {
        Some(both) => Err(*both),
        None => Ok(()),
    }
}

/// Where `quarryd` is: `explicit`, else beside this executable (or one folder up, for tests),
/// else on `PATH`.
pub fn quarryd_path(explicit: Option<&Path>) -> Result<PathBuf> {
    Ok(binary_path("quarryd", explicit))
}

/// The specification of one node to start.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Its name.
    pub name: String,
    /// Its share of the hash rate (0: not a miner).
    pub share: f64,
    /// Its `quarryd.toml`, if any (a scenario's `config`).
    pub config: Option<String>,
}

impl Testnet {
    /// Starts one `quarryd` per spec in `dir` on the network of `params`, miners capped to their
    /// share of `total_hash_rate`, and connects them along `links`.
    pub fn start(
        dir: &Path,
        params: &ChainParams,
        specs: &[NodeSpec],
        total_hash_rate: u64,
        links: Vec<Link>,
        engine: &NodeEngine,
        lifetime: Lifetime,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the testnet directory {}", dir.display()))?;
        let params_file = dir.join(PARAMS_FILE);
        let mut spec = params.spec().clone();
        spec.genesis_nonce = Some(params.genesis_block().header.nonce);
        std::fs::write(&params_file, toml::to_string(&spec)?)?;
        let docker = match engine {
            NodeEngine::Processes { .. } => None,
            NodeEngine::Docker { image } => {
                let docker = Docker::new(image, dir);
                docker.check()?;
                docker.create_network()?;
                Some(docker)
            }
        };
        let mut testnet = Self {
            dir: dir.to_path_buf(),
            params: params.clone(),
            state: State {
                params_file,
                nodes: Vec::new(),
                mined_from: 0,
                links: Vec::new(),
                docker,
                partitions: Vec::new(),
            },
            children: Vec::new(),
            lifetime,
        };
        if let Err(error) = testnet.start_nodes(specs, total_hash_rate, links, engine) {
            let started = testnet.children.len();
            testnet.kill_children();
            if let Some(docker) = &testnet.state.docker {
                let _ = docker.remove();
            }
            return Err(error.context(format!(
                "the testnet did not start; stopped the {started} node(s) it had started"
            )));
        }
        testnet.save()?;
        Ok(testnet)
    }

    /// Starts the nodes of `specs` and connects them along `links`.
    fn start_nodes(
        &mut self,
        specs: &[NodeSpec],
        total_hash_rate: u64,
        mut links: Vec<Link>,
        engine: &NodeEngine,
    ) -> Result<()> {
        for spec in specs {
            let hash_rate = (spec.share * total_hash_rate as f64).round() as u64;
            let (child, record) = self.spawn(spec, hash_rate, engine)?;
            self.children.push(child);
            self.state.nodes.push(record);
        }
        for (number, link) in links.iter_mut().enumerate() {
            if let (Some(docker), true) = (&self.state.docker, link.delay_ms > 0) {
                // The relay runs in the dialler's network namespace, so its loopback port is
                // the dialler's.
                let port = RELAY_PORT_BASE + number as u16;
                let (dialler, listener) = (
                    &self.state.nodes[link.dialler],
                    &self.state.nodes[link.listener],
                );
                let relay =
                    docker.relay_command(&dialler.name, port, &listener.name, link.delay_ms);
                let log = dialler.dir.join(format!("relay-{}.log", listener.name));
                self.children
                    .push(spawn_logged(relay, &log, self.lifetime)?);
                link.via = Some(format!(
                    "/ip4/127.0.0.1/tcp/{port}/p2p/{}",
                    listener.peer_id
                ));
            } else if link.delay_ms > 0 {
                let target = &self.state.nodes[link.listener];
                let port: u16 = target
                    .p2p
                    .split('/')
                    .nth(4)
                    .and_then(|port| port.parse().ok())
                    .with_context(|| format!("no TCP port in {}", target.p2p))?;
                let relay = DelayedLink::start(
                    SocketAddr::from(([127, 0, 0, 1], port)),
                    Duration::from_millis(link.delay_ms),
                )?;
                link.via = Some(format!(
                    "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                    relay.listen.port(),
                    target.peer_id
                ));
            }
            self.link(link)?;
        }
        self.state.links = links;
        Ok(())
    }

    /// Kills the nodes this process started and waits for them.
    fn kill_children(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spawn(
        &self,
        spec: &NodeSpec,
        hash_rate: u64,
        engine: &NodeEngine,
    ) -> Result<(Child, NodeRecord)> {
        let dir = self.dir.join(&spec.name);
        std::fs::create_dir_all(&dir)?;
        if let Some(config) = &spec.config {
            // quarryd reads DATADIR/quarryd.toml when it exists.
            std::fs::write(dir.join("quarryd.toml"), config)?;
        }
        let quarryd = match engine {
            NodeEngine::Processes { quarryd } => quarryd.clone(),
            NodeEngine::Docker { .. } => PathBuf::from("quarryd"),
        };
        let wallet = dir.join("wallet.json");
        if !wallet.exists() {
            WalletFile::new(&wallet_seed(&spec.name), WALLET_PASSPHRASE, &self.params)?
                .save(&wallet)?;
        }
        let address = address_of(&spec.name, &self.params);
        let mut extra = vec![
            "--miner-address".to_owned(),
            address.to_string(),
            "--miner-threads".to_owned(),
            "1".to_owned(),
        ];
        if hash_rate > 0 {
            extra.extend(["--max-hash-rate".to_owned(), hash_rate.to_string()]);
        }
        if self.params.pow_mode() == PowMode::Simulated {
            extra.extend([
                "--mining-seed".to_owned(),
                self.mining_seed(&spec.name).to_string(),
            ]);
        }
        // A port found free may be taken before the node (or Docker) binds it: start again
        // on fresh ports, twice at most.
        let mut attempt = 1;
        loop {
            match self.start_on_free_ports(spec, hash_rate, &quarryd, &dir, &wallet, &extra) {
                Err(_) if attempt < 3 && port_was_taken(&dir) => {
                    if let Some(docker) = &self.state.docker {
                        // Docker may keep the container it could not start.
                        docker.discard(&spec.name);
                    }
                    attempt += 1;
                }
                started => return started,
            }
        }
    }

    /// Starts the node of `spec` (its folder `dir`, wallet `wallet`, quarryd's own arguments
    /// `extra`) on two free loopback ports and waits until it answers.
    fn start_on_free_ports(
        &self,
        spec: &NodeSpec,
        hash_rate: u64,
        quarryd: &Path,
        dir: &Path,
        wallet: &Path,
        extra: &[String],
    ) -> Result<(Child, NodeRecord)> {
        let launch = Launch::on_free_ports(
            quarryd.to_path_buf(),
            self.state.params_file.display().to_string(),
            dir.to_path_buf(),
        )?;
        let mut child = match &self.state.docker {
            None => launch
                .spawn(extra, self.lifetime)
                .with_context(|| format!("cannot start {}: build it with `cargo build -p quarry-node --bins` (./scripts/run.sh does) or pass --quarryd", quarryd.display()))?,
            Some(docker) => {
                let command = docker.node_command(
                    &spec.name,
                    dir,
                    &self.state.params_file,
                    launch.rpc,
                    launch.metrics,
                    extra,
                )?;
                spawn_logged(command, &launch.log_path(), self.lifetime)
                    .context("cannot run docker")?
            }
        };
        let mut record = NodeRecord {
            name: spec.name.clone(),
            dir: dir.to_path_buf(),
            rpc: launch.rpc,
            metrics: launch.metrics,
            p2p: String::new(),
            peer_id: String::new(),
            pid: child.id(),
            share: spec.share,
            hash_rate,
            wallet: wallet.to_path_buf(),
        };
        let mut info = None;
        wait_until_answers(&mut child, Duration::from_secs(60), || {
            info = self
                .call_record::<NetworkInfo>(&record, "getnetworkinfo", json!([]))
                .ok();
            info.is_some()
        })
        .with_context(|| {
            format!(
                "{} did not start; its log is {}",
                spec.name,
                launch.log_path().display()
            )
        })?;
        let info = info.context("the node answered")?;
        record.p2p = match &self.state.docker {
            // Its peers reach it by name on the testnet's network.
            Some(_) => Docker::p2p_address(&spec.name, &info.peerid),
            None => info
                .p2paddresses
                .into_iter()
                .next()
                .context("the node reports no listen address")?,
        };
        record.peer_id = info.peerid;
        Ok((child, record))
    }

    /// `tool` (quarry-cli or quarry-wallet, found beside this program) pointed at `record`'s
    /// node: its network, data directory (for the cookie) and RPC address.
    pub fn tool_command(&self, tool: &str, record: &NodeRecord) -> Command {
        let mut command = Command::new(binary_path(tool, None));
        command
            .arg("--network")
            .arg(&self.state.params_file)
            .arg("--datadir")
            .arg(&record.dir)
            .arg("--rpc-connect")
            .arg(record.rpc.to_string());
        command
    }

    /// Loads the running testnet saved in `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no running testnet in {} (start one with `quarry-testnet up`)",
                dir.display()
            )
        })?;
        let state: State = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a testnet state file", path.display()))?;
        let params = ChainParams::from_toml_file(&state.params_file)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            params,
            state,
            children: Vec::new(),
            // A loaded testnet starts no node.
            lifetime: Lifetime::Detached,
        })
    }

    pub(crate) fn save(&self) -> Result<()> {
        let path = self.dir.join(STATE_FILE);
        std::fs::write(&path, serde_json::to_string_pretty(&self.state)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The RPC endpoint of `record`'s node.
    pub fn endpoint(&self, record: &NodeRecord) -> Result<Endpoint> {
        let cookie = record.dir.join(self.params.name()).join(".cookie");
        let credentials = std::fs::read_to_string(&cookie).with_context(|| {
            format!(
                "cannot read {}: is {} running?",
                cookie.display(),
                record.name
            )
        })?;
        Ok(Endpoint {
            address: record.rpc,
            credentials: credentials.trim().to_owned(),
        })
    }

    fn call_record<T: DeserializeOwned>(
        &self,
        record: &NodeRecord,
        method: &str,
        params: Value,
    ) -> Result<T> {
        self.call_tries(record, method, params, 1)
    }

    /// Calls `method` on `record`'s node, up to `most` times while its RPC cannot be reached.
    fn call_tries<T: DeserializeOwned>(
        &self,
        record: &NodeRecord,
        method: &str,
        params: Value,
        most: u64,
    ) -> Result<T> {
        let mut tries = 1;
        loop {
            match self.endpoint(record)?.call_as(method, params.clone()) {
                Err(CallError::Connect(_)) if tries < most => {
                    std::thread::sleep(Duration::from_millis(200 * tries));
                    tries += 1;
                }
                other => {
                    return other
                        .map_err(|error| anyhow::anyhow!("{}: {method}: {error}", record.name))
                }
            }
        }
    }

    /// [`Testnet::call`] for a call that may be repeated (a read, `addnode`): tried again, up
    /// to four times, when the node's RPC cannot be reached, as happens now and then on a
    /// machine running hundreds of nodes (one did in a 400-node testnet here).
    pub fn call_repeatable<T: DeserializeOwned>(
        &self,
        index: usize,
        method: &str,
        params: Value,
    ) -> Result<T> {
        self.call_tries(&self.state.nodes[index], method, params, 5)
    }

    /// Calls `method` on node `index` and reads its result as `T`.
    pub fn call<T: DeserializeOwned>(
        &self,
        index: usize,
        method: &str,
        params: Value,
    ) -> Result<T> {
        self.call_record(&self.state.nodes[index], method, params)
    }

    /// Calls `method` on node `index` for its effect, whatever its result.
    pub fn run(&self, index: usize, method: &str, params: Value) -> Result<()> {
        self.call::<IgnoredAny>(index, method, params).map(drop)
    }

    /// Mines `count` blocks on node `index` paying `address`, however many tries they take
    /// (`generatetoaddress` stops after a million by default, too few once ASERT has raised
    /// the difficulty to the running miners' rate).
    pub fn generate(&self, index: usize, count: usize, address: &str) -> Result<Vec<BlockHash>> {
        self.call(
            index,
            "generatetoaddress",
            json!([count, address, i64::MAX]),
        )
    }

    /// The sides of the scenario's partition called `name`.
    pub fn named_partition(&self, name: &str) -> Result<(Vec<usize>, Vec<usize>)> {
        match self
            .state
            .partitions
            .iter()
            .find(|partition| partition.name == name)
        {
            Some(partition) => Ok((partition.a.clone(), partition.b.clone())),
            None => {
                let names: Vec<&str> = self
                    .state
                    .partitions
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect();
                bail!(
                    "no partition '{name}': the scenario names {}; or give the groups, `partition n0,n1 / n2,n3`",
                    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                )
            }
        }
    }

    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        self.state
            .nodes
            .iter()
            .position(|node| node.name == name)
            .with_context(|| {
                let names: Vec<&str> = self
                    .state
                    .nodes
                    .iter()
                    .map(|node| node.name.as_str())
                    .collect();
                format!("no node called '{name}' (nodes: {})", names.join(", "))
            })
    }

    /// Connects the link's dialler to its listener (through its delaying relay, if any) and
    /// keeps them connected (the node redials an added peer every few seconds; a link already
    /// added is dialled at once, retried for a while).
    pub fn link(&self, link: &Link) -> Result<()> {
        let (dialler, listener) = (link.dialler, link.listener);
        let address = link
            .via
            .clone()
            .unwrap_or_else(|| self.state.nodes[listener].p2p.clone());
        // Adding a node twice is refused and handled below: the call may be repeated.
        match self
            .call_repeatable::<IgnoredAny>(dialler, "addnode", json!([address, "add"]))
            .map(drop)
        {
            Err(error) if error.to_string().contains("already added") => {
                if self.connected(dialler, listener)? {
                    return Ok(());
                }
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    match self.run(dialler, "addnode", json!([address, "onetry"])) {
                        Ok(_) => return Ok(()),
                        // Connected meanwhile (the other side dialled, or a redial).
                        Err(_) if self.connected(dialler, listener)? => return Ok(()),
                        Err(error) if Instant::now() > deadline => return Err(error),
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            }
            other => other,
        }
    }

    /// Whether `a` has a connection to `b`.
    pub fn connected(&self, a: usize, b: usize) -> Result<bool> {
        let peers: Vec<PeerInfo> = self.call_repeatable(a, "getpeerinfo", json!([]))?;
        let wanted = &self.state.nodes[b].peer_id;
        Ok(peers.iter().any(|peer| &peer.peerid == wanted))
    }

    /// Cuts every link between `a` and `b` (both ways, by bans that last until `heal`; in
    /// containers also by blackhole routes, so no packet crosses).
    pub fn partition(&self, a: &[usize], b: &[usize]) -> Result<()> {
        check_partition(a, b).map_err(|both| {
            let name = &self.state.nodes[both].name;
            anyhow::anyhow!("'{name}' is in both groups: a partition splits the nodes in two")
        })?;
        if a.is_empty() || b.is_empty() {
            bail!("each side of a partition needs at least one node");
        }
        if let Some(docker) = &self.state.docker {
            // In containers the cut is real: nothing either side sends the other leaves.
            let addresses = |side: &[usize]| -> Result<Vec<_>> {
                side.iter()
                    .map(|&index| docker.address(&self.state.nodes[index].name))
                    .collect()
            };
            let (to_a, to_b) = (addresses(a)?, addresses(b)?);
            for (side, other) in [(a, &to_b), (b, &to_a)] {
                for &index in side {
                    docker.cut(&self.state.nodes[index].name, other)?;
                }
            }
        }
        for &x in a {
            for &y in b {
                for (from, to) in [(x, y), (y, x)] {
                    let peer = self.state.nodes[to].peer_id.clone();
                    self.run(from, "setban", json!([peer, "add", 86_400]))?;
                }
            }
        }
        // A ban closes its connections a moment later: a heal in between would find them
        // still open, take the link as made, and leave the sides apart until a redial.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut open = false;
            for &x in a {
                for &y in b {
                    open |= self.connected(x, y)? || self.connected(y, x)?;
                }
            }
            if !open {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the partition's connections did not close within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lifts every ban (and removes the blackhole routes) and restores the topology's links.
    pub fn heal(&self) -> Result<()> {
        for index in 0..self.state.nodes.len() {
            if let Some(docker) = &self.state.docker {
                docker.mend(&self.state.nodes[index].name)?;
            }
            self.run(index, "clearbanned", json!([]))?;
        }
        for link in &self.state.links {
            self.link(link)?;
        }
        Ok(())
    }

    /// Stops every node over RPC and waits for the processes (those this testnet started) to
    /// exit; removes the state file.
    pub fn shutdown(mut self) -> Result<()> {
        // A node that does not take `stop` has stopped already, or hangs: its process is
        // signalled below if it still runs.
        let asked: Vec<bool> = (0..self.state.nodes.len())
            .map(|index| self.run(index, "stop", json!([])).is_ok())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        for child in &mut self.children {
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Nodes of a testnet loaded from its state file: wait until their processes are gone,
        // then fall back to the process ids recorded at start.
        let mut killed = Vec::new();
        for (record, asked) in self.state.nodes.iter().zip(asked) {
            if !asked && process_alive(record.pid) {
                signal(record.pid, "-TERM");
            }
            while process_alive(record.pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if process_alive(record.pid) {
                signal(record.pid, "-KILL");
                killed.push(format!("{} (pid {})", record.name, record.pid));
            }
        }
        if let Some(docker) = &self.state.docker {
            docker.remove()?;
        }
        let _ = std::fs::remove_file(self.dir.join(STATE_FILE));
        if !killed.is_empty() {
            eprintln!(
                "warning: {} did not stop within 60 s and were killed",
                killed.join(", ")
            );
        }
        Ok(())
    }
}

/// Whether the node in `dir` stopped at start because a port it was given was taken (by
/// quarryd's own bind, or by Docker publishing it).
fn port_was_taken(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("quarryd.log")).is_ok_and(|log| {
        log.contains("Address already in use") || log.contains("port is already allocated")
    })
}

/// Whether a process with this id runs (it may, rarely, be another process that reused it).
fn process_alive(pid: u32) -> bool {
    signal(pid, "-0")
}

/// Sends `signal` (`-TERM`, `-KILL`, `-0` to probe) to `pid`; whether it was delivered.
fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_partition_groups_are_refused() {
        assert_eq!(check_partition(&[0, 1], &[2, 3]), Ok(()));
        assert_eq!(check_partition(&[0, 1], &[1, 2]), Err(1));
    }

    #[test]
    fn topologies_connect_every_node() {
        for topology in [
            Topology::Mesh,
            Topology::Ring,
            Topology::Line,
            Topology::Star,
            Topology::Random,
        ] {
            for n in 1..8 {
                let links = links(topology, n, 7);
                // Connected: a walk from node 0 reaches every node.
                let mut reached = vec![false; n];
                reached[0] = true;
                for _ in 0..n {
                    for &(a, b) in &links {
                        if reached[a] || reached[b] {
                            reached[a] = true;
                            reached[b] = true;
                        }
                    }
                }
                assert!(
                    reached.iter().all(|r| *r),
                    "{topology:?} over {n}: {links:?}"
                );
                assert!(links.iter().all(|(a, b)| a != b && *a < n && *b < n));
            }
        }
        assert_eq!(links(Topology::Mesh, 4, 0).len(), 6);
        assert_eq!(links(Topology::Ring, 4, 0).len(), 4);
        assert_eq!(links(Topology::Line, 4, 0).len(), 3);
        assert_eq!(links(Topology::Random, 6, 3), links(Topology::Random, 6, 3));
    }
}
