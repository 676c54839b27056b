//! A scenario written for a container platform: as a Compose project ([`compose`]) or as
//! Kubernetes manifests ([`kubernetes`]). Both run the image `quarry-testnet image` builds,
//! one container per node, peers found by DNS name, the scenario's per-link delays in relays
//! beside the dialling node (the processes engine's relay, `quarry-testnet relay`), its
//! partitions as blackhole routes or NetworkPolicies, and the Grafana dashboard beside them.

pub mod compose;
pub mod kubernetes;
pub mod yaml;

use std::path::Path;

use anyhow::{Context, Result};
use quarry_chain::{ChainParams, PowMode};
use quarry_rpc::location::{default_ports, DefaultPorts};
use rand::Rng;

use crate::cluster::{address_of, mining_seed, Link, Topology};
use crate::params::{genesis_time_for, LocalNetwork};
use crate::scenario::Scenario;

/// Where the network parameters file is inside a container.
pub const PARAMS_PATH: &str = "/etc/quarry/params.toml";
/// Where a node's own configuration file is inside its container.
pub const CONFIG_PATH: &str = "/etc/quarry/node.toml";
/// The data directory inside a container (the image's `QUARRY_DATADIR`).
pub const DATA_DIR: &str = "/data";
/// The RPC user of exported nodes (the password is drawn at export).
pub const RPC_USER: &str = "quarry";
/// The Grafana dashboard of the node's metrics, shipped beside every export.
pub const DASHBOARD: &str = include_str!("../../../deploy/grafana/quarry-nodes.json");
/// Relay ports start here, one per delayed link, on the dialler's loopback.
const RELAY_PORT_BASE: u16 = 20_000;

/// The loopback port of the relay of link `number`.
fn relay_port(number: usize) -> u16 {
    RELAY_PORT_BASE.saturating_add(u16::try_from(number).unwrap_or(u16::MAX))
}

/// The ports every exported node listens on (the local network's defaults).
pub fn ports() -> DefaultPorts {
    default_ports("localnet")
}

/// A delaying relay in the dialler's network namespace: the dialler connects to
/// `127.0.0.1:port` and the relay to the listener, each byte `delay_ms` later, both ways.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relay {
    /// Its loopback port.
    pub port: u16,
    /// The listening node's index.
    pub listener: usize,
    /// Delay each way, in milliseconds.
    pub delay_ms: u64,
}

/// A scenario settled for export: its network, links and RPC password.
#[derive(Debug)]
pub struct Export {
    /// The scenario.
    pub scenario: Scenario,
    /// The network the nodes run: retargeting off, so the chain's pace does not depend on
    /// when the nodes start.
    pub params: ChainParams,
    /// The parameters file's text.
    pub params_toml: String,
    /// The links, with their delays.
    pub links: Vec<Link>,
    /// The RPC password every node takes (user [`RPC_USER`]).
    pub rpc_password: String,
    /// The miners' total hash rate.
    pub hash_rate: u64,
}

/// How to write the network of an export.
#[derive(Clone, Copy, Debug)]
pub struct NetworkChoice {
    /// Real or simulated proof of work.
    pub pow: PowMode,
    /// The topology when the scenario has none and no links.
    pub topology: Topology,
    /// Its seed.
    pub seed: u64,
    /// Hash rate when the scenario gives none.
    pub hash_rate: u64,
    /// Seconds between blocks when the scenario gives none.
    pub spacing: u32,
}

impl Export {
    /// Settles `scenario` on the network `choice` describes.
    pub fn new(scenario: Scenario, choice: NetworkChoice) -> Result<Self> {
        let names = scenario.node.iter().map(|node| &node.name);
        for name in names.chain(scenario.partition.iter().map(|partition| &partition.name)) {
            check_dns_label(name)?;
        }
        let hash_rate = scenario.hash_rate.unwrap_or(choice.hash_rate);
        let spacing = scenario.spacing.unwrap_or(choice.spacing);
        let network = LocalNetwork {
            pow: choice.pow,
            retarget: false,
            ..LocalNetwork::new(hash_rate, spacing)
        };
        let params = network.params(genesis_time_for(0, spacing))?;
        let mut spec = params.spec().clone();
        spec.genesis_nonce = Some(params.genesis_block().header.nonce);
        let params_toml = toml::to_string(&spec)?;
        let links = scenario.links(choice.topology, choice.seed)?;
        let rpc_password = hex::encode(rand::rng().random::<[u8; 16]>());
        Ok(Self {
            scenario,
            params,
            params_toml,
            links,
            rpc_password,
            hash_rate,
        })
    }

    /// Node `index`'s hash-rate cap (0: not a miner).
    pub fn node_hash_rate(&self, index: usize) -> u64 {
        (self.scenario.node[index].share * self.hash_rate as f64).round() as u64
    }

    /// The relays node `index` dials its delayed links through.
    pub fn relays(&self, index: usize) -> Vec<Relay> {
        self.links
            .iter()
            .enumerate()
            .filter(|(_, link)| link.dialler == index && link.delay_ms > 0)
            .map(|(number, link)| Relay {
                port: relay_port(number),
                listener: link.listener,
                delay_ms: link.delay_ms,
            })
            .collect()
    }

    /// The relay's command line: `quarry-testnet relay …` to the listener at `host`.
    pub fn relay_command(relay: &Relay, host: &str) -> Vec<String> {
        vec![
            "quarry-testnet".into(),
            "relay".into(),
            "--listen".into(),
            format!("127.0.0.1:{}", relay.port),
            "--to".into(),
            format!("{host}:{}", ports().p2p),
            "--delay-ms".into(),
            relay.delay_ms.to_string(),
        ]
    }

    /// quarryd's command line for node `index`, its peers named by `host` (node index → DNS
    /// name). The network, data directory, configuration file and RPC credentials come from
    /// the environment ([`Export::node_environment`]).
    pub fn node_command(&self, index: usize, host: impl Fn(usize) -> String) -> Vec<String> {
        let ports = ports();
        let name = &self.scenario.node[index].name;
        let mut args: Vec<String> = vec![
            "quarryd".into(),
            "--listen".into(),
            format!("/ip4/0.0.0.0/tcp/{}", ports.p2p),
            "--rpc-bind".into(),
            format!("0.0.0.0:{}", ports.rpc),
            "--metrics-bind".into(),
            format!("0.0.0.0:{}", ports.metrics),
            "--miner-address".into(),
            address_of(name, &self.params).to_string(),
            "--miner-threads".into(),
            "1".into(),
        ];
        let hash_rate = self.node_hash_rate(index);
        if hash_rate > 0 {
            args.extend([
                "--mine".into(),
                "--max-hash-rate".into(),
                hash_rate.to_string(),
            ]);
            if self.params.pow_mode() == PowMode::Simulated {
                args.extend([
                    "--mining-seed".into(),
                    mining_seed(&self.params, name).to_string(),
                ]);
            }
        }
        for (number, link) in self.links.iter().enumerate() {
            if link.dialler != index {
                continue;
            }
            args.push("--bootnode".into());
            args.push(if link.delay_ms > 0 {
                format!("/ip4/127.0.0.1/tcp/{}", relay_port(number))
            } else {
                format!("/dns4/{}/tcp/{}", host(link.listener), ports.p2p)
            });
        }
        args
    }

    /// The environment of node `index`'s container but the RPC password (a secret in
    /// Kubernetes, a variable of `.env` in Compose).
    pub fn node_environment(&self, index: usize) -> Vec<(&'static str, String)> {
        let mut environment = vec![
            ("QUARRY_NETWORK", PARAMS_PATH.to_owned()),
            ("QUARRY_DATADIR", DATA_DIR.to_owned()),
            ("QUARRY_RPC_USER", RPC_USER.to_owned()),
        ];
        if self.scenario.node[index].config.is_some() {
            environment.push(("QUARRY_CONF", CONFIG_PATH.to_owned()));
        }
        environment
    }

    /// The attack the export's job runs: a double-spend experiment (its own honest miner,
    /// merchant and attacker, simulated proof of work) writing its report to `report`.
    pub fn attack_command(report: &str) -> Vec<String> {
        [
            "quarry-testnet",
            "attack",
            "double-spend",
            "--attacker-share",
            "0.3",
            "--confirmations",
            "1,2,3",
            "--trials",
            "20",
            "--speedup",
            "10",
            "--retarget",
            "off",
            "--report",
            report,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// The scenario's nodes, by name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.scenario.node.iter().map(|node| node.name.as_str())
    }
}

/// Prometheus's scrape labels (Compose) or annotations (Kubernetes) for a node whose metrics
/// are exported; none otherwise.
pub fn prometheus_scrape(metrics_export: bool) -> serde_json::Map<String, serde_json::Value> {
    let mut scrape = serde_json::Map::new();
    if metrics_export {
        scrape.insert("prometheus.io/scrape".into(), "true".into());
        scrape.insert(
            "prometheus.io/port".into(),
            ports().metrics.to_string().into(),
        );
        scrape.insert("prometheus.io/path".into(), "/metrics".into());
    }
    scrape
}

/// Refuses a name that cannot be a Kubernetes object's or a host's name (RFC 1123 label; a
/// StatefulSet's name leaves room for its pods' suffixes).
fn check_dns_label(name: &str) -> Result<()> {
    let fits = name.len() <= 52
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !fits {
        anyhow::bail!(
            "'{name}' cannot name a container or a pod: exports need node and partition names of \
             lowercase letters, digits and '-' (not first or last), at most 52 characters"
        );
    }
    Ok(())
}

/// Writes `text` to `dir/relative`, creating its folder; `executable` sets the mode 0755.
pub fn write_file(dir: &Path, relative: &str, text: &str, executable: bool) -> Result<()> {
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}
