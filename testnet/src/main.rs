//! `quarry-testnet`: local Quarry networks of real `quarryd` processes, and the chain
//! self-check (mine a real chain, force a reorganisation, verify the UTXO set against a replay
//! from genesis).

use std::io::Write;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use quarry_chain::ChainParams;
use quarry_testnet::cluster::{self, Link, NodeEngine, NodeSpec, Testnet, Topology};
use quarry_testnet::commands::{self, UpOptions};
use quarry_testnet::engine::selfish::{self, Retarget, SelfishResult, SelfishSettings};
use quarry_testnet::engine::EngineKind;
use quarry_testnet::scenario::Scenario;
use quarry_testnet::{
    analysis, attack, engine_check, experiment, reconverge, report, selfcheck, selfish_nodes,
    selfish_report, status, zero_conf,
};

/// Local Quarry test networks and scenarios.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Starts a local testnet of real quarryd nodes (processes, or containers with --engine
    /// docker), connects them, funds a wallet for each node, starts the miners, and shows a
    /// live status table until Ctrl-C, which stops every node.
    Up {
        /// Nodes to start (with simulated proof of work hundreds fit on a laptop: pick a sparse
        /// --topology, as a mesh of n nodes has n(n-1)/2 links).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1_000))]
        nodes: u16,
        /// How many of them mine (equal shares).
        #[arg(long, default_value_t = 2)]
        miners: u16,
        /// How the nodes are connected.
        #[arg(long, value_enum, default_value_t = Topology::Mesh)]
        topology: Topology,
        /// Seed of the random topology.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Total hash rate of the miners, hashes per second (shares are caps of it).
        #[arg(long, default_value_t = 20_000)]
        hash_rate: u64,
        /// Target seconds between blocks.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=600))]
        spacing: u32,
        /// A scenario file (TOML: topology, seed, hash_rate, spacing, [[node]] name and share);
        /// replaces --nodes, --miners and the other settings it gives.
        #[arg(long, value_name = "FILE")]
        scenario: Option<PathBuf>,
        /// Start, fund, print the status once and leave the nodes running.
        #[arg(long)]
        detach: bool,
        /// Proof of work: real hashing (capped to each miner's share), or simulated (blocks
        /// as a Poisson process at each miner's virtual hash rate: exact shares, no CPU).
        #[arg(long, value_enum, default_value_t = Pow::Real)]
        pow: Pow,
        /// Continue the testnet already in the directory (its network, chains and wallets);
        /// without it, an earlier testnet there is replaced by a fresh one.
        #[arg(long)]
        resume: bool,
        #[command(flatten)]
        place: Place,
        /// Where the nodes run: quarryd processes on loopback, or Docker containers (each on
        /// the testnet's own network with its own address; partitions cut it for real).
        #[arg(long, value_enum, default_value_t = UpEngine::Processes)]
        engine: UpEngine,
        /// The image of --engine docker (`quarry-testnet image --load` builds it).
        #[arg(long, value_name = "IMAGE", default_value = DEFAULT_IMAGE)]
        image: String,
        /// The quarryd binary [default: beside this one, else on PATH].
        #[arg(long, value_name = "PATH")]
        quarryd: Option<PathBuf>,
    },
    /// Prints the status table of a running testnet.
    Status {
        #[command(flatten)]
        place: Place,
        /// Print the rows as JSON (heights, tips, peers, shares...) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Cuts the links between two groups of nodes: `partition n0,n1 / n2,n3`, or a partition
    /// the testnet's scenario names: `partition halves` (in containers, for real: no packet
    /// crosses).
    Partition {
        /// The first group, `/`, the second group (comma-separated node names); or the name of
        /// a scenario's [[partition]].
        #[arg(num_args = 1..=3, required = true, value_name = "GROUP / GROUP | NAME")]
        groups: Vec<String>,
        #[command(flatten)]
        place: Place,
    },
    /// Restores every link cut by `partition`.
    Heal {
        #[command(flatten)]
        place: Place,
    },
    /// Mines BLOCKS blocks on NODE now, paid to its wallet.
    Mine {
        /// The node.
        node: String,
        /// How many blocks.
        #[arg(default_value_t = 1)]
        blocks: u32,
        #[command(flatten)]
        place: Place,
    },
    /// Pays AMOUNT coins from FROM's wallet to TO's wallet.
    Send {
        /// The paying node.
        from: String,
        /// The paid node.
        to: String,
        /// Coins, e.g. 1.5.
        amount: String,
        #[command(flatten)]
        place: Place,
    },
    /// Stops every node of a running testnet.
    Down {
        #[command(flatten)]
        place: Place,
    },
    /// Runs quarry-wallet on NODE's wallet: `wallet n1 balance`, `wallet n0 send ADDRESS 1`
    /// (options of this command, such as --dir, go before NODE).
    Wallet {
        #[command(flatten)]
        place: Place,
        /// The node.
        node: String,
        /// quarry-wallet's command and arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// Runs quarry-cli against NODE: `cli n2 getblockchaininfo` (options of this command, such
    /// as --dir, go before NODE).
    Cli {
        #[command(flatten)]
        place: Place,
        /// The node.
        node: String,
        /// The method and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// Attacks on real nodes or in the virtual-time engine (--engine sim), with their models.
    Attack {
        #[command(subcommand)]
        attack: Attack,
    },
    /// Benchmark: splits a fresh testnet in two halves, mines BLOCKS on the first half and one
    /// more on the second, heals the split and measures how long every node takes to reach
    /// the most-work tip (the first half reorganises BLOCKS deep). Writes report.json.
    Reconverge {
        /// Nodes in all, split evenly (at least 2).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(2..=64))]
        nodes: u16,
        /// Blocks each half mines after the split (the second half one more).
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        blocks: u32,
        /// The report folder; the nodes run in its `nodes` subfolder
        /// [default: ~/.quarry/localnet/reports/reconverge].
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
        /// The quarryd binary [default: beside this one, else on PATH].
        #[arg(long, value_name = "PATH")]
        quarryd: Option<PathBuf>,
    },
    /// Writes a scenario for a container platform, running the image `quarry-testnet image`
    /// builds: a Compose project (--compose DIR; `docker compose up -d` there) and/or
    /// Kubernetes manifests (--kubernetes DIR; `kubectl apply -f DIR/quarry.yaml`). Delays run
    /// in relays beside the dialling node, partitions are scripts (Compose) or NetworkPolicies
    /// (Kubernetes); the Grafana dashboard goes beside them.
    Export {
        /// The scenario file (as `up --scenario` takes; node and partition names lowercase).
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        /// Write a Compose project to DIR.
        #[arg(long, value_name = "DIR", required_unless_present = "kubernetes")]
        compose: Option<PathBuf>,
        /// Write Kubernetes manifests to DIR.
        #[arg(long, value_name = "DIR")]
        kubernetes: Option<PathBuf>,
        /// The Compose project's name [default: the scenario file's name without extension].
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
        /// Proof of work of the exported network: simulated (no CPU: hundreds of nodes fit on
        /// a laptop) or real hashing.
        #[arg(long, value_enum, default_value_t = Pow::Simulated)]
        pow: Pow,
    },
    /// Builds an OCI image of quarryd, quarry-cli, quarry-wallet, quarry-testnet (and ip) from
    /// the local binaries, pulling nothing: an archive for `docker load -i`, `podman load -i`
    /// or `kind load image-archive`. The exports run it.
    Image {
        /// The archive to write.
        #[arg(long, value_name = "FILE", default_value = "quarry-image.tar")]
        output: PathBuf,
        /// The image's name and tag, REPOSITORY:TAG.
        #[arg(long, value_name = "NAME:TAG", default_value = DEFAULT_IMAGE)]
        tag: String,
        /// The folder holding the four tools [default: this program's folder].
        #[arg(long, value_name = "DIR")]
        binaries: Option<PathBuf>,
        /// Keep the tools' debug information (larger image, line numbers in backtraces).
        #[arg(long)]
        keep_debug: bool,
        /// Leave iproute2's ip out (partitions in containers need it).
        #[arg(long)]
        no_ip: bool,
        /// Load the image into Docker afterwards (`docker load`).
        #[arg(long)]
        load: bool,
    },
    /// Relays TCP connections to a peer, each byte DELAY later both ways: what an export runs
    /// beside a node for each delayed link it dials. Runs until stopped.
    Relay {
        /// Where to listen, e.g. 127.0.0.1:20000.
        #[arg(long, value_name = "IP:PORT")]
        listen: std::net::SocketAddr,
        /// Where to connect, HOST:PORT (looked up at every connection).
        #[arg(long, value_name = "HOST:PORT")]
        to: String,
        /// Delay each way, in milliseconds.
        #[arg(long, value_name = "MS")]
        delay_ms: u64,
    },
    /// Mine a chain with transactions, force a reorganisation, and check the UTXO set against a
    /// replay from genesis. Exits non-zero if any check fails.
    Selfcheck {
        /// Network: `regtest` or a custom parameters TOML file with an easy pow limit.
        #[arg(long, default_value = "regtest")]
        network: String,
        /// Blocks to mine on the main branch (at least 20).
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(20..=100_000))]
        blocks: u32,
        /// Depth of the forced reorganisation (the competing branch is one block longer).
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=1_000))]
        reorg_depth: u32,
    },
}

#[derive(Subcommand, Debug)]
enum Attack {
    /// The private-chain double spend of the Bitcoin whitepaper (section 11), K trials per
    /// number of confirmations, with the success rate, its 95% interval and the analytic
    /// probabilities; writes a report folder (JSON, markdown, SVG plots).
    DoubleSpend {
        /// The attacker's share of the hash rate, in [0, 1).
        #[arg(long, value_name = "Q")]
        attacker_share: f64,
        /// Trials per number of confirmations.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        trials: u32,
        /// Keep running trials (one number of confirmations) until the 95% interval excludes
        /// this value: Nakamoto's approximation or the exact probability of the model. A
        /// planner prints beforehand about how many trials that takes.
        #[arg(long, value_enum, value_name = "VALUE")]
        until_separated: Option<Separate>,
        /// With --until-separated, stop after this many trials at most.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        max_trials: u64,
        /// With --until-separated, run at least this many trials before looking (a run that
        /// looks after every trial stops on the first lucky streak).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        min_trials: u64,
        /// Where the trials run: real quarryd processes, or the virtual-time engine (the same
        /// consensus code over in-memory stores, simulated network and proof of work: seeded,
        /// thousands of trials a minute).
        #[arg(long, value_enum, default_value_t = EngineKind::Nodes)]
        engine: EngineKind,
        #[command(flatten)]
        race: RaceArgs,
    },
    /// Runs the double-spend grid (each attacker share × each number of confirmations) on real
    /// nodes and in the virtual-time engine, and shows both rates with their 95% intervals
    /// beside the exact value, and whether they agree. Exit status 1 if any point disagrees.
    CheckEngine {
        /// Attacker shares, each in [0, 1).
        #[arg(
            long,
            value_name = "Q[,Q...]",
            value_delimiter = ',',
            default_value = "0.1,0.3"
        )]
        attacker_share: Vec<f64>,
        /// Trials per point on real nodes.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        trials: u32,
        /// Trials per point in the engine.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        engine_trials: u32,
        #[command(flatten)]
        race: RaceArgs,
    },
    /// Selfish mining (Eyal and Sirer): an attacker with share α keeps a private branch and
    /// races or overrides honest blocks; γ is set by how many honest nodes hear the attacker's
    /// blocks first, and measured from the run. In the virtual-time engine (20 honest nodes,
    /// the default) or on real nodes (the attacker's quarryd mines alone; a controller hands it
    /// the honest blocks and releases its blocks with submitblock). Prints the attacker's
    /// revenue with 95% intervals beside the closed form, and with retargeting the revenue per
    /// unit time before and after the difficulty adjusts; writes a report folder (JSON,
    /// markdown, revenue plot).
    SelfishMining {
        /// Attacker shares of the hash rate, each in [0, 0.5).
        #[arg(
            long,
            value_name = "A[,A...]",
            value_delimiter = ',',
            default_value = "0.1,0.2,0.25,0.3,0.35,0.4,0.45"
        )]
        alpha: Vec<f64>,
        /// The share of honest power that hears the attacker's block first in a race, in
        /// [0, 1] (rounded to whole honest nodes).
        #[arg(long, default_value_t = 0.5)]
        gamma: f64,
        /// Main-chain blocks per attacker share [default: 10000 in the engine, 200 on nodes].
        #[arg(long, value_parser = clap::value_parser!(u32).range(20..=1_000_000))]
        blocks: Option<u32>,
        /// Target seconds between blocks [default: 600 in the engine, 2 on nodes].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=86_400))]
        spacing: Option<u32>,
        /// Difficulty retargeting: off, ASERT, or Bitcoin's epochs (144 blocks each).
        #[arg(long, value_enum, default_value_t = Retarget::Off)]
        retarget: Retarget,
        /// Where it runs: the virtual-time engine, or real quarryd processes.
        #[arg(long, value_enum, default_value_t = EngineKind::Sim)]
        engine: EngineKind,
        /// Honest nodes on real nodes (the engine has 20).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=32))]
        honest_nodes: u64,
        /// One-way delay of the links between honest real nodes, milliseconds (the attacker
        /// reaches the near nodes faster: it must, for γ to mean anything).
        #[arg(long, value_name = "MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        delay: u64,
        /// The engine's seed [default: from the clock; printed].
        #[arg(long)]
        seed: Option<u64>,
        /// The report folder [default: ~/.quarry/localnet/reports/selfish-mining]; real nodes
        /// run in its `nodes` subfolder.
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
        /// Print the report as JSON instead of the summary table.
        #[arg(long)]
        json: bool,
        /// The quarryd binary, for real nodes [default: beside this one, else on PATH].
        #[arg(long, value_name = "PATH")]
        quarryd: Option<PathBuf>,
    },
    /// The race attack, TRIALS times: the attacker gives the merchant's node the payment and
    /// the miner's node a conflicting spend, OFFSET ms apart (uniform in ±SPREAD); every link
    /// delays LATENCY ms. Success rate, 95% interval and the model's probability, and a report
    /// folder (JSON, markdown, SVG of every trial's outcome against its offset).
    Race {
        /// One-way delay of every link, milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=10_000))]
        latency: u64,
        /// The conflicting spend goes out up to this long before or after the payment.
        #[arg(long, value_name = "MS", default_value_t = 400, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        spread: u64,
        #[command(flatten)]
        common: ExperimentArgs,
    },
    /// The Finney attack, TRIALS times: the attacker mines in secret a block spending its coin
    /// to itself, pays the merchant with the same coin, and releases the block after a hold
    /// (uniform up to MAX_HOLD ms) while the honest miner mines every SPACING s on average.
    /// Success rate, 95% interval and the model's probability, and a report folder.
    Finney {
        /// The longest hold, milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 4_000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
        max_hold: u64,
        /// The honest miner's target seconds between blocks.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=600))]
        spacing: u32,
        /// The honest miner's hash rate, hashes per second.
        #[arg(long, default_value_t = 20_000)]
        hash_rate: u64,
        #[command(flatten)]
        common: ExperimentArgs,
    },
}

/// The private-chain race's settings, on real nodes or in the engine.
#[derive(clap::Args, Debug)]
struct RaceArgs {
    /// Confirmations the merchant waits for; several give the curve (e.g. 1,2,3).
    #[arg(
        long,
        value_name = "Z[,Z...]",
        value_delimiter = ',',
        default_value = "1"
    )]
    confirmations: Vec<u32>,
    /// The attacker pre-mines one secret block before paying (Rosenfeld's setup).
    #[arg(long)]
    premine: bool,
    /// The attacker gives up this many blocks behind.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    give_up: u32,
    /// Total hash rate of the two miners, hashes per second.
    #[arg(long, default_value_t = 20_000)]
    hash_rate: u64,
    /// Target seconds between blocks.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=600))]
    spacing: u32,
    /// Blocks K times faster than the spacing on real nodes: the miners' virtual hash rates
    /// are K times the planned one (needs --pow simulated and --retarget off; every block
    /// keeps the same work, so the race in blocks is unchanged and trials take 1/K of the
    /// time).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    speedup: u32,
    /// Independent attack testnets run side by side, their trials pooled (with simulated
    /// proof of work they need no CPU for hashing); in the engine, threads
    /// [default: 1 testnet; every core for the engine].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=32))]
    parallel: Option<u32>,
    /// Difficulty retargeting: on (ASERT, the branches' blocks may differ in work) or off
    /// (every block the same work, as the analytic model assumes).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    retarget: Switch,
    /// The engine's seed [default: from the clock; printed].
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    run: RunArgs,
}

impl RaceArgs {
    /// The run these settings describe for attacker share `q`, `trials` per point.
    fn attack_run(
        &self,
        q: f64,
        trials: u32,
        engine: EngineKind,
        stop_rule: experiment::StopRule,
        kind: &str,
    ) -> Result<experiment::AttackRun> {
        if engine == EngineKind::Sim && (matches!(self.run.pow, Pow::Real) || self.speedup > 1) {
            bail!(
                "--engine sim runs in virtual time on simulated proof of work: --pow real and \
                 --speedup apply to real nodes only"
            );
        }
        let seed = self.seed.unwrap_or_else(seed_from_clock);
        if engine == EngineKind::Sim || kind == "check-engine" {
            eprintln!("engine seed {seed} (--seed {seed} reproduces the engine's trials)");
        }
        Ok(experiment::AttackRun {
            settings: self.settings(q)?,
            confirmations: self.confirmations.clone(),
            trials,
            hash_rate: self.hash_rate,
            spacing: self.spacing,
            parallel: self.parallel.unwrap_or(match engine {
                EngineKind::Nodes => 1,
                EngineKind::Sim => {
                    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
                }
            }),
            stop_rule,
            report: self.run.report(kind)?,
            nodes: self.run.nodes(engine)?,
            engine,
            seed,
        })
    }

    fn settings(&self, q: f64) -> Result<attack::AttackSettings> {
        if !(0.0..1.0).contains(&q) {
            bail!("--attacker-share must be at least 0 and below 1, not {q}");
        }
        Ok(attack::AttackSettings {
            q,
            premined: self.premine,
            give_up_behind: self.give_up,
            pow: self.run.pow.into(),
            retarget: self.retarget == Switch::On,
            speedup: self.speedup,
        })
    }
}

/// What every zero-confirmation experiment takes.
#[derive(clap::Args, Debug)]
struct ExperimentArgs {
    /// Trials.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    trials: u32,
    /// The seed the trials' timings are drawn from [default: from the clock; printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Where the trials run: real quarryd processes, or the virtual-time engine (seeded,
    /// first-seen mempools, no wall clock).
    #[arg(long, value_enum, default_value_t = EngineKind::Nodes)]
    engine: EngineKind,
    #[command(flatten)]
    run: RunArgs,
}

/// What every attack experiment takes: where its report goes, how it is printed, its proof of
/// work and the node binary.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The report folder; the nodes run in its `nodes` subfolder
    /// [default: ~/.quarry/localnet/reports/ATTACK].
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Print the report as JSON (as report.json) instead of the summary table.
    #[arg(long)]
    json: bool,
    /// Proof of work: simulated (exact shares, no CPU) or real hashing.
    #[arg(long, value_enum, default_value_t = Pow::Simulated)]
    pow: Pow,
    /// The quarryd binary [default: beside this one, else on PATH].
    #[arg(long, value_name = "PATH")]
    quarryd: Option<PathBuf>,
    /// Run the real nodes in Docker containers of IMAGE instead of processes (`quarry-testnet
    /// image --load` builds it) [IMAGE default: quarry:VERSION].
    #[arg(long, value_name = "IMAGE", num_args = 0..=1, default_missing_value = DEFAULT_IMAGE)]
    docker: Option<String>,
}

/// The image `quarry-testnet image` builds by default.
const DEFAULT_IMAGE: &str = concat!("quarry:", env!("CARGO_PKG_VERSION"));

impl RunArgs {
    /// Where real nodes run (for `engine`; the virtual-time engine runs none).
    fn nodes(&self, engine: EngineKind) -> Result<NodeEngine> {
        Ok(match (&self.docker, engine) {
            (_, EngineKind::Sim) => NodeEngine::processes(Path::new("")),
            (Some(image), EngineKind::Nodes) => NodeEngine::Docker {
                image: image.clone(),
            },
            (None, EngineKind::Nodes) => {
                NodeEngine::processes(&cluster::quarryd_path(self.quarryd.as_deref())?)
            }
        })
    }

    /// The report folder: as given, else `reports/KIND` in the default testnet directory.
    fn report(&self, kind: &str) -> Result<PathBuf> {
        match &self.report {
            Some(dir) => Ok(dir.clone()),
            None => default_report(kind),
        }
    }
}

/// What `--until-separated` tells the measured rate from.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Separate {
    /// Nakamoto's Poisson approximation.
    Nakamoto,
    /// The exact probability of the model run.
    Exact,
}

/// An on/off setting.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// `--pow`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Pow {
    /// Real SHA-256d hashing.
    Real,
    /// Blocks found as a Poisson process at a virtual hash rate.
    Simulated,
}

impl From<Pow> for quarry_chain::PowMode {
    fn from(pow: Pow) -> Self {
        match pow {
            Pow::Real => Self::Real,
            Pow::Simulated => Self::Simulated,
        }
    }
}

/// Where a report goes by default: `reports/KIND` in the default testnet directory.
fn default_report(kind: &str) -> Result<PathBuf> {
    Ok(quarry_rpc::default_base_dir()?
        .join("localnet")
        .join("reports")
        .join(kind))
}

/// Where a testnet's files are.
#[derive(clap::Args, Debug)]
struct Place {
    /// The testnet's directory [default: ~/.quarry/localnet].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

impl Place {
    fn dir(&self) -> Result<PathBuf> {
        match &self.dir {
            Some(dir) => Ok(dir.clone()),
            None => Ok(quarry_rpc::default_base_dir()?.join("localnet")),
        }
    }
}

/// Where `up` runs the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum UpEngine {
    /// quarryd processes on loopback.
    Processes,
    /// Docker containers.
    Docker,
}

/// `quarry-testnet image`.
fn build_image(
    output: PathBuf,
    tag: &str,
    binaries: Option<PathBuf>,
    keep_debug: bool,
    no_ip: bool,
    load: bool,
) -> Result<()> {
    use quarry_testnet::image::{self, ImageOptions};
    let Some((repository, version)) = tag
        .rsplit_once(':')
        .filter(|(name, tag)| !name.is_empty() && !tag.is_empty() && !tag.contains('/'))
    else {
        bail!("--tag {tag}: give REPOSITORY:TAG, e.g. quarry:0.1.0");
    };
    let binaries = match binaries {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .context("this program has a folder")?
            .to_path_buf(),
    };
    let ip = if no_ip { None } else { image::find_ip() };
    if !no_ip && ip.is_none() {
        eprintln!("note: ip is not on this machine (Debian: iproute2); the image goes without it, and partitions in containers fall back to bans");
    }
    let built = image::build(&ImageOptions {
        binaries,
        output: output.clone(),
        image: quarry_testnet::scenario::Image {
            repository: repository.to_owned(),
            tag: version.to_owned(),
        },
        strip: !keep_debug,
        ip,
    })?;
    println!(
        "wrote {tag} to {} ({} files, {:.1} MB unpacked, {:.1} MB compressed; {})",
        output.display(),
        built.files.len(),
        built.unpacked_bytes as f64 / 1e6,
        built.layer_bytes as f64 / 1e6,
        built.digest
    );
    if load {
        let status = std::process::Command::new("docker")
            .arg("load")
            .arg("-i")
            .arg(&output)
            .status()
            .context(
                "cannot run docker: install Docker, or load the archive with podman load -i",
            )?;
        if !status.success() {
            bail!("docker load failed ({status}); is the Docker daemon running?");
        }
    } else {
        println!(
            "load it with: docker load -i {}   (or podman load -i, kind load image-archive)",
            output.display()
        );
    }
    Ok(())
}

/// `quarry-testnet export`: the scenario written as a Compose project and/or manifests.
fn export(
    scenario_path: &Path,
    compose: Option<PathBuf>,
    kubernetes: Option<PathBuf>,
    project: Option<String>,
    pow: Pow,
) -> Result<()> {
    use quarry_testnet::export::{self, Export, NetworkChoice};
    let scenario = Scenario::read(scenario_path)?;
    let export = Export::new(
        scenario,
        NetworkChoice {
            pow: pow.into(),
            topology: Topology::Mesh,
            seed: 1,
            hash_rate: 20_000,
            spacing: 2,
        },
    )?;
    let image = export.scenario.image.to_string();
    if let Some(dir) = compose {
        let name = match project {
            Some(name) => name,
            None => scenario_path
                .file_stem()
                .map(|stem| stem.to_string_lossy().to_lowercase())
                .unwrap_or_else(|| "quarry".into()),
        };
        let files = export::compose::write(&export, &dir, &name)?;
        println!(
            "wrote the Compose project '{name}' ({} files) to {}\n  start:      cd {} && docker compose up -d   (image {image}: quarry-testnet image --load)\n  a node:     docker compose exec {} quarry-cli getblockchaininfo\n  partition:  ./partitions/NAME.sh, then ./heal.sh\n  attack:     docker compose run --rm attack   (report in ./reports)",
            files.len(),
            dir.display(),
            dir.display(),
            export.scenario.node[0].name,
        );
    }
    if let Some(dir) = kubernetes {
        let files = export::kubernetes::write(&export, &dir)?;
        println!(
            "wrote {} Kubernetes manifests to {}\n  start:      kubectl apply -f {}/quarry.yaml   (image {image} on the cluster's nodes)\n  a node:     kubectl exec {}-0 -c quarryd -- quarry-cli getblockchaininfo\n  partition:  kubectl apply -f {}/partitions/NAME.yaml; heal: kubectl delete -f the same file\n  attack:     kubectl apply -f {}/attack-job.yaml",
            files.len(),
            dir.display(),
            dir.display(),
            export.scenario.node[0].name,
            dir.display(),
            dir.display(),
        );
    }
    Ok(())
}

fn group(testnet: &Testnet, names: &str) -> Result<Vec<usize>> {
    names
        .split(',')
        .filter(|name| !name.is_empty())
        .map(|name| testnet.index_of(name.trim()))
        .collect()
}

/// The stop rule of `--until-separated`: the value to tell the rate from, after printing how
/// many trials that should take.
fn separation_plan(
    settings: &attack::AttackSettings,
    confirmations: &[u32],
    separate: Separate,
    (min_trials, max_trials): (u64, u64),
) -> Result<experiment::StopRule> {
    let [z] = confirmations[..] else {
        bail!("--until-separated runs one number of confirmations: give one --confirmations");
    };
    let q = settings.q;
    let model = analysis::AttackModel {
        q,
        z,
        premined: settings.premined,
        give_up_behind: Some(settings.give_up_behind),
    };
    let (exact, nakamoto) = (analysis::exact(model), analysis::nakamoto(q, z));
    let (value, truth, name) = match separate {
        Separate::Nakamoto => (nakamoto, exact, "Nakamoto's"),
        Separate::Exact => (exact, nakamoto, "the exact"),
    };
    let needed = analysis::trials_to_separate(truth, value).map_or_else(
        || "cannot be told apart".to_owned(),
        |n| format!("needs about {n} trials (95% interval, 80% power)"),
    );
    eprintln!(
        "planner: telling {name} {value:.4} from {truth:.4} at q = {q}, z = {z} {needed}; at least {min_trials}, at most {max_trials}"
    );
    Ok(experiment::StopRule::Separated {
        value,
        min_trials: min_trials as usize,
        max_trials: max_trials as usize,
    })
}

/// Runs selfish mining at every setting, on every core, with a progress bar.
fn selfish_mining(
    settings: &[SelfishSettings],
    seed: u64,
) -> Result<selfish_report::SelfishReport> {
    let started = std::time::Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(0usize);
    let total = settings.len();
    commands::progress_bar(0, total, "selfish-mining runs", true);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut results: Vec<(usize, SelfishResult)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(total))
            .map(|_| {
                scope.spawn(|| -> Result<Vec<(usize, SelfishResult)>> {
                    let mut mine = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&setting) = settings.get(index) else {
                            return Ok(mine);
                        };
                        mine.push((index, selfish::run(setting)?));
                        let mut done = done
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        *done += 1;
                        let caption = format!(
                            "{}/{total} attacker shares, {:.0} s",
                            *done,
                            started.elapsed().as_secs_f64()
                        );
                        commands::progress_bar(*done, total, &caption, true);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a selfish-mining run panicked")))
            })
            .collect::<Result<Vec<_>>>()
            .map(|parts| parts.into_iter().flatten().collect())
    })?;
    results.sort_by_key(|(index, _)| *index);
    Ok(selfish_report::SelfishReport {
        results: results.into_iter().map(|(_, result)| result).collect(),
        wall_seconds: started.elapsed().as_secs_f64(),
        seed,
    })
}

/// Runs selfish mining on real nodes at every setting in turn, each on a fresh testnet in
/// `report/nodes`.
fn selfish_on_nodes(
    settings: &[SelfishSettings],
    honest_nodes: usize,
    delay_ms: u64,
    report: &std::path::Path,
    quarryd: &std::path::Path,
) -> Result<selfish_report::SelfishReport> {
    let started = std::time::Instant::now();
    let mut results = Vec::new();
    for (index, &setting) in settings.iter().enumerate() {
        eprintln!(
            "α = {} ({} of {}): attacker and {honest_nodes} honest nodes, {} blocks",
            setting.alpha,
            index + 1,
            settings.len(),
            setting.blocks
        );
        results.push(selfish_nodes::run(&selfish_nodes::NodesRun {
            settings: setting,
            honest_nodes,
            delay_ms,
            hash_rate: 20_000,
            dir: report.join("nodes"),
            nodes: NodeEngine::processes(quarryd),
        })?);
    }
    Ok(selfish_report::SelfishReport {
        results,
        wall_seconds: started.elapsed().as_secs_f64(),
        seed: 0,
    })
}

/// Prints an experiment's result: as JSON for scripts, or its summary and where its report
/// was written.
fn print_report(
    json: bool,
    result: &impl serde::Serialize,
    summary: impl FnOnce() -> String,
    written: &std::path::Path,
) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(result)?);
    } else {
        println!("{}", summary());
        println!("report: {}", written.display());
    }
    Ok(())
}

/// A seed from the clock, for runs not given one (printed, so they can be repeated).
fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

/// Runs a race or Finney experiment and prints its summary (or JSON).
fn zero_confirmation(
    timing: zero_conf::Timing,
    hash_rate: u64,
    common: ExperimentArgs,
) -> Result<()> {
    let kind = match timing.attack() {
        zero_conf::ZeroConfirmation::Race => "race",
        zero_conf::ZeroConfirmation::Finney => "finney",
    };
    let seed = common.seed.unwrap_or_else(seed_from_clock);
    let run = experiment::ZeroConfirmationRun {
        timing,
        trials: common.trials,
        seed,
        hash_rate,
        pow: common.run.pow.into(),
        report: common.run.report(kind)?,
        nodes: common.run.nodes(common.engine)?,
        engine: common.engine,
    };
    if common.engine == EngineKind::Sim && matches!(common.run.pow, Pow::Real) {
        bail!(
            "--engine sim runs on simulated proof of work: --pow real applies to real nodes only"
        );
    }
    let report = experiment::zero_confirmation(&run)?;
    print_report(
        common.run.json,
        &report,
        || zero_conf::summary(&report, report::Style::Terminal),
        &run.report.join("report.md"),
    )?;
    Ok(())
}

/// Replaces this process by `command` (its output and exit status are the user's); returns
/// only the error of a command that cannot start.
fn exec(mut command: std::process::Command) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let program = command.get_program().to_string_lossy().into_owned();
    anyhow::Error::new(command.exec()).context(format!(
        "cannot run {program}: build it with `cargo build --workspace --bins` (./scripts/run.sh does)"
    ))
}

fn main() -> std::process::ExitCode {
    quarry_rpc::cli::exit_quietly_on_closed_pipe();
    // Errors are printed for a reader, never as a debug dump with a backtrace (whatever
    // RUST_BACKTRACE says).
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", quarry_rpc::cli::describe(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Up {
            nodes,
            miners,
            topology,
            seed,
            hash_rate,
            spacing,
            scenario,
            detach,
            pow,
            resume,
            place,
            engine,
            image,
            quarryd,
        } => {
            let mut options = UpOptions {
                dir: place.dir()?,
                nodes: UpOptions::equal_miners(usize::from(nodes), usize::from(miners.min(nodes))),
                links: Link::plain(cluster::links(topology, usize::from(nodes), seed)),
                hash_rate,
                spacing,
                engine: match engine {
                    UpEngine::Processes => {
                        NodeEngine::processes(&cluster::quarryd_path(quarryd.as_deref())?)
                    }
                    UpEngine::Docker => NodeEngine::Docker { image },
                },
                resume,
                detach,
                pow: pow.into(),
                partitions: Vec::new(),
            };
            if let Some(path) = scenario {
                let scenario = Scenario::read(&path)?;
                options.nodes = scenario
                    .node
                    .iter()
                    .map(|node| NodeSpec {
                        name: node.name.clone(),
                        share: node.share,
                        config: node.config.clone(),
                    })
                    .collect();
                options.links = scenario.links(topology, seed)?;
                // In Docker the relays are containers of their own; as processes, threads of
                // this one.
                let relayed_here = matches!(options.engine, NodeEngine::Processes { .. });
                if detach && relayed_here && options.links.iter().any(|link| link.delay_ms > 0) {
                    bail!("delayed links are relayed by this process: run `up` without --detach (or with --engine docker)");
                }
                options.partitions = scenario.named_partitions()?;
                options.hash_rate = scenario.hash_rate.unwrap_or(options.hash_rate);
                options.spacing = scenario.spacing.unwrap_or(options.spacing);
            }
            let testnet = commands::up(&options)?;
            if detach {
                println!("{}", status::render(&status::collect(&testnet)));
                return Ok(());
            }
            commands::watch_until_interrupted(testnet)
        }
        Command::Status { place, json } => {
            let testnet = Testnet::load(&place.dir()?)?;
            let snapshot = status::collect(&testnet);
            if json {
                println!("{}", serde_json::to_string_pretty(&snapshot)?);
            } else {
                print!("{}\n{}\n", status::render(&snapshot), status::LEGEND);
            }
            Ok(())
        }
        Command::Partition { groups, place } => {
            let testnet = Testnet::load(&place.dir()?)?;
            let (a, b) = match groups.as_slice() {
                [name] => testnet.named_partition(name)?,
                [a, slash, b] if slash == "/" => (group(&testnet, a)?, group(&testnet, b)?),
                _ => bail!(
                    "write the groups as `n0,n1 / n2,n3` (a '/' between them), or name one of the scenario's partitions"
                ),
            };
            testnet.partition(&a, &b)?;
            let names = |side: &[usize]| {
                side.iter()
                    .map(|&index| testnet.state.nodes[index].name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            println!("partitioned {} / {}", names(&a), names(&b));
            println!("{}", commands::partition_note(&testnet, &a, &b));
            Ok(())
        }
        Command::Heal { place } => {
            Testnet::load(&place.dir()?)?.heal()?;
            println!("healed");
            Ok(())
        }
        Command::Mine {
            node,
            blocks,
            place,
        } => {
            let testnet = Testnet::load(&place.dir()?)?;
            let index = testnet.index_of(&node)?;
            let address = testnet.state.nodes[index]
                .address(&testnet.params)
                .to_string();
            let hashes = testnet.generate(index, blocks as usize, &address)?;
            println!("{}", serde_json::to_string_pretty(&hashes)?);
            Ok(())
        }
        Command::Send {
            from,
            to,
            amount,
            place,
        } => {
            let testnet = Testnet::load(&place.dir()?)?;
            let amount: quarry_chain::Amount = amount.parse()?;
            let txid = commands::send(
                &testnet,
                testnet.index_of(&from)?,
                testnet.index_of(&to)?,
                amount,
            )?;
            println!("{txid}");
            Ok(())
        }
        Command::Attack {
            attack:
                Attack::DoubleSpend {
                    attacker_share,
                    trials,
                    until_separated,
                    max_trials,
                    min_trials,
                    engine,
                    race,
                },
        } => {
            let stop_rule = match until_separated {
                None => experiment::StopRule::Trials,
                Some(separate) => separation_plan(
                    &race.settings(attacker_share)?,
                    &race.confirmations,
                    separate,
                    (min_trials, max_trials),
                )?,
            };
            let options =
                race.attack_run(attacker_share, trials, engine, stop_rule, "double-spend")?;
            let report = experiment::double_spend(&options)?;
            print_report(
                race.run.json,
                &report,
                || report::summary(&report, report::Style::Terminal),
                &options.report.join("report.md"),
            )?;
            Ok(())
        }
        Command::Attack {
            attack:
                Attack::CheckEngine {
                    attacker_share,
                    trials,
                    engine_trials,
                    race,
                },
        } => {
            let first = attacker_share.first().copied().unwrap_or_default();
            let options = race.attack_run(
                first,
                trials,
                EngineKind::Nodes,
                experiment::StopRule::Trials,
                "check-engine",
            )?;
            for &q in &attacker_share {
                race.settings(q)?;
            }
            let rows = engine_check::check(&options, &attacker_share, trials, engine_trials)?;
            print_report(
                race.run.json,
                &rows,
                || engine_check::summary(&rows, report::Style::Terminal),
                &options.report.join("check.json"),
            )?;
            if rows.iter().all(|row| row.agree) {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        Command::Attack {
            attack:
                Attack::SelfishMining {
                    alpha,
                    gamma,
                    blocks,
                    spacing,
                    retarget,
                    engine,
                    honest_nodes,
                    delay,
                    seed,
                    report: report_dir,
                    json,
                    quarryd,
                },
        } => {
            if let Some(bad) = alpha.iter().find(|alpha| !(0.0..0.5).contains(*alpha)) {
                bail!("--alpha must be at least 0 and below 0.5 (a majority needs no strategy), not {bad}");
            }
            if !(0.0..=1.0).contains(&gamma) {
                bail!("--gamma must be between 0 and 1, not {gamma}");
            }
            let seed = seed.unwrap_or_else(seed_from_clock);
            let on_nodes = engine == EngineKind::Nodes;
            if !on_nodes {
                eprintln!("engine seed {seed} (--seed {seed} reproduces this run)");
            }
            let dir = match report_dir {
                Some(dir) => dir,
                None => default_report("selfish-mining")?,
            };
            let settings: Vec<SelfishSettings> = alpha
                .iter()
                .enumerate()
                .map(|(index, &alpha)| SelfishSettings {
                    alpha,
                    gamma,
                    blocks: blocks.unwrap_or(if on_nodes { 200 } else { 10_000 }),
                    spacing: spacing.unwrap_or(if on_nodes { 2 } else { 600 }),
                    retarget,
                    seed: quarry_testnet::engine::trial_seed(seed, index as u64),
                    engine,
                })
                .collect();
            let report = if on_nodes {
                let quarryd = cluster::quarryd_path(quarryd.as_deref())?;
                selfish_on_nodes(&settings, honest_nodes as usize, delay, &dir, &quarryd)?
            } else {
                selfish_mining(&settings, seed)?
            };
            selfish_report::write(&report, &dir)?;
            print_report(
                json,
                &report,
                || selfish_report::summary(&report, report::Style::Terminal),
                &dir.join("report.md"),
            )?;
            Ok(())
        }
        Command::Attack {
            attack:
                Attack::Race {
                    latency,
                    spread,
                    common,
                },
        } => {
            let timing = zero_conf::Timing::Race {
                latency_ms: latency,
                spread_ms: spread,
            };
            zero_confirmation(timing, 0, common)
        }
        Command::Attack {
            attack:
                Attack::Finney {
                    max_hold,
                    spacing,
                    hash_rate,
                    common,
                },
        } => {
            let timing = zero_conf::Timing::Finney {
                max_hold_ms: max_hold,
                spacing,
            };
            zero_confirmation(timing, hash_rate, common)
        }
        Command::Wallet { place, node, args } => {
            let testnet = Testnet::load(&place.dir()?)?;
            let record = &testnet.state.nodes[testnet.index_of(&node)?];
            let mut command = testnet.tool_command("quarry-wallet", record);
            command
                .arg("--wallet")
                .arg(&record.wallet)
                .env("QUARRY_WALLET_PASSPHRASE", cluster::WALLET_PASSPHRASE)
                .args(args);
            Err(exec(command))
        }
        Command::Cli { place, node, args } => {
            let testnet = Testnet::load(&place.dir()?)?;
            let record = &testnet.state.nodes[testnet.index_of(&node)?];
            let mut command = testnet.tool_command("quarry-cli", record);
            command.args(args);
            Err(exec(command))
        }
        Command::Down { place } => {
            Testnet::load(&place.dir()?)?.shutdown()?;
            println!("stopped");
            Ok(())
        }
        Command::Export {
            scenario,
            compose,
            kubernetes,
            project,
            pow,
        } => export(&scenario, compose, kubernetes, project, pow),
        Command::Image {
            output,
            tag,
            binaries,
            keep_debug,
            no_ip,
            load,
        } => build_image(output, &tag, binaries, keep_debug, no_ip, load),
        Command::Relay {
            listen,
            to,
            delay_ms,
        } => {
            let listener = std::net::TcpListener::bind(listen)
                .with_context(|| format!("cannot listen on {listen}"))?;
            quarry_testnet::delay::DelayedLink::serve(
                listener,
                to.clone(),
                std::time::Duration::from_millis(delay_ms),
            )?;
            eprintln!("relaying {listen} to {to}, {delay_ms} ms each way");
            loop {
                std::thread::park();
            }
        }
        Command::Reconverge {
            nodes,
            blocks,
            report,
            quarryd,
        } => {
            let report = report.map_or_else(|| default_report("reconverge"), Ok)?;
            let run = reconverge::SplitRun {
                nodes: usize::from(nodes),
                blocks,
                report: report.clone(),
                quarryd: cluster::quarryd_path(quarryd.as_deref())?,
            };
            let measured = reconverge::run(&run)?;
            reconverge::write(&measured, &report)?;
            println!("{}", reconverge::render(&measured));
            println!("report: {}", report.join("report.json").display());
            Ok(())
        }
        Command::Selfcheck {
            network,
            blocks,
            reorg_depth,
        } => selfcheck(&network, blocks, reorg_depth),
    }
}

fn selfcheck(network: &str, blocks: u32, reorg_depth: u32) -> Result<()> {
    println!("{}", selfcheck::networks_table());
    let params = ChainParams::from_name_or_file(network)?;
    println!(
        "\nSelf-check on {} ({blocks} blocks, reorganisation depth {reorg_depth})",
        params.name()
    );
    let report = selfcheck::run(params, blocks, reorg_depth, |done, total| {
        if done % (total / 20).max(1) == 0 || done == total {
            progress("mining", done, total);
        }
    })?;
    println!();
    print!("{}", report.render());
    if report.passed() {
        println!("\nall checks passed");
        Ok(())
    } else {
        bail!("self-check failed")
    }
}

fn progress(label: &str, done: u32, total: u32) {
    let width = 30;
    let filled = (done as usize * width) / total.max(1) as usize;
    print!(
        "\r{label:<8} [{}{}] {done}/{total}",
        "#".repeat(filled),
        " ".repeat(width - filled)
    );
    let _ = std::io::stdout().flush();
}
