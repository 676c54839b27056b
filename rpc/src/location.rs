//! Where a node keeps its files: the network, the data directory, the configuration file and
//! the default ports. The daemon and its clients settle them the same way, so a client finds
//! the cookie and port of the node it means.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use quarry_chain::ChainParams;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The ports a network uses by default.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DefaultPorts {
    /// Peer-to-peer.
    pub p2p: u16,
    /// JSON-RPC.
    pub rpc: u16,
    /// Prometheus metrics.
    pub metrics: u16,
}

/// The default ports of the network called `name`.
pub fn default_ports(name: &str) -> DefaultPorts {
    match name {
        "main" => DefaultPorts {
            p2p: 9333,
            rpc: 9332,
            metrics: 9334,
        },
        "testnet" => DefaultPorts {
            p2p: 19333,
            rpc: 19332,
            metrics: 19334,
        },
        _ => DefaultPorts {
            p2p: 19444,
            rpc: 19443,
            metrics: 19445,
        },
    }
}

/// The base directory when none is given: `~/.quarry`.
pub fn default_base_dir() -> anyhow::Result<PathBuf> {
    dirs::home_dir()
        .map(|home| home.join(".quarry"))
        .context("cannot find the home directory; pass --datadir")
}

/// The network's data directory: one subfolder of the base directory per network.
pub fn network_dir(base: &Path, params: &ChainParams) -> PathBuf {
    base.join(params.name())
}

/// JSON-RPC settings of the configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    /// Where to listen (default: localhost on the network's RPC port).
    pub bind: Option<SocketAddr>,
    /// A user name; with `password`, replaces the cookie.
    pub user: Option<String>,
    /// The password of `user`.
    pub password: Option<String>,
    /// Seconds a client may take to send a request's headers, and then its body (default 30).
    pub server_timeout: Option<u64>,
}

/// A configuration file as one reader sees it: the daemon reads every section (and refuses
/// unknown keys), a client only the network and the RPC settings.
pub trait ConfigFile: DeserializeOwned + Default {
    /// The `network` key.
    fn network(&self) -> Option<&str>;
}

/// What a client reads of the daemon's configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ClientConfig {
    /// `main`, `testnet`, `regtest` or a parameters file.
    pub network: Option<String>,
    /// Where the daemon's RPC listens and how it authenticates.
    pub rpc: RpcConfig,
}

impl AsRef<RpcConfig> for ClientConfig {
    fn as_ref(&self) -> &RpcConfig {
        &self.rpc
    }
}

impl ConfigFile for ClientConfig {
    fn network(&self) -> Option<&str> {
        self.network.as_deref()
    }
}

/// Reads a configuration file: bad values are errors naming the file.
pub fn read_config_file<F: DeserializeOwned>(path: &Path) -> anyhow::Result<F> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration file {}", path.display()))
}

/// Which network, data directory and configuration file: the options quarryd and its clients
/// share, so all find the same files.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Location {
    /// Network: main, testnet, regtest, or the path of a network parameters TOML file.
    #[arg(long, value_name = "NAME|FILE", env = "QUARRY_NETWORK")]
    pub network: Option<String>,
    /// Base data directory; each network uses a subfolder [default: ~/.quarry].
    #[arg(long, value_name = "DIR", env = "QUARRY_DATADIR")]
    pub datadir: Option<PathBuf>,
    /// Configuration file [default: DATADIR/quarryd.toml when it exists].
    #[arg(long, value_name = "FILE", env = "QUARRY_CONF")]
    pub conf: Option<PathBuf>,
}

/// A [`Location`] settled: the network, its data directory and the configuration file.
#[derive(Debug)]
pub struct Resolved<F = ClientConfig> {
    /// The network.
    pub params: ChainParams,
    /// The network's data directory.
    pub data_dir: PathBuf,
    /// The configuration file's settings (defaults when there is none).
    pub file: F,
}

impl Location {
    /// Reads the configuration file and settles the network: the command line over the file
    /// over `main`.
    pub fn resolve<F: ConfigFile>(&self) -> anyhow::Result<Resolved<F>> {
        let base = match &self.datadir {
            Some(dir) => dir.clone(),
            None => default_base_dir()?,
        };
        let path = self
            .conf
            .clone()
            .unwrap_or_else(|| base.join("quarryd.toml"));
        let file: F = if self.conf.is_some() || path.exists() {
            read_config_file(&path)?
        } else {
            F::default()
        };
        let network = self
            .network
            .clone()
            .or_else(|| file.network().map(str::to_owned))
            .unwrap_or_else(|| "main".into());
        let params = ChainParams::from_name_or_file(&network)?;
        Ok(Resolved {
            data_dir: network_dir(&base, &params),
            params,
            file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_reads_the_network_and_rpc_of_a_full_daemon_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("quarryd.toml"),
            "network = \"regtest\"\n[rpc]\nbind = \"127.0.0.1:5000\"\n[mining]\nenabled = true\n",
        )
        .unwrap();
        let location = Location {
            datadir: Some(dir.path().to_owned()),
            ..Location::default()
        };
        let resolved: Resolved = location.resolve().unwrap();
        assert_eq!(resolved.params.name(), "regtest");
        assert_eq!(resolved.data_dir, dir.path().join("regtest"));
        assert_eq!(
            resolved.file.rpc.bind,
            Some("127.0.0.1:5000".parse().unwrap())
        );
    }
}
