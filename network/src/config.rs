//! Network configuration, merged into the node's configuration file.

use std::time::Duration;

use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

/// How the node finds peers, how many it keeps, how it punishes misbehaviour and how it syncs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/9333` (`tcp/0` picks a free port).
    pub listen: Vec<Multiaddr>,
    /// Peers dialled at start-up and redialled while disconnected, e.g.
    /// `/ip4/10.0.0.2/tcp/9333/p2p/12D3KooW…` (the `/p2p/` part is optional).
    pub bootnodes: Vec<Multiaddr>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// Most connections accepted from other peers. When all are taken, a newcomer from another
    /// host evicts the youngest connection of the host holding the most.
    pub max_inbound: u32,
    /// Most inbound connections from one IP address, whatever peer identities it shows.
    pub max_inbound_per_host: u32,
    /// Apply per-host limits and IP bans to loopback addresses too. Off by default: the nodes
    /// of a local testnet all connect from 127.0.0.1, and each then counts as its own host.
    pub ban_loopback: bool,
    /// Most connections this node opens.
    pub max_outbound: u32,
    /// Misbehaviour score at which a peer is disconnected and banned.
    pub ban_threshold: u32,
    /// How long a ban lasts, in seconds.
    pub ban_seconds: u64,
    /// Seconds to wait for a sync response before retrying with another peer.
    pub request_timeout_seconds: u64,
    /// Most block bodies asked of one peer at a time.
    pub max_blocks_in_flight_per_peer: usize,
    /// Block bodies asked for in one request.
    pub blocks_per_request: usize,
    /// Seconds between header polls of every peer, a safety net for missed announcements.
    pub header_poll_seconds: u64,
    /// Inbound sync requests a peer may send per second before it counts as spam.
    pub max_requests_per_second: u32,
    /// Gossipsub heartbeat, in milliseconds.
    pub gossip_heartbeat_millis: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: vec!["/ip4/0.0.0.0/tcp/9333"
                .parse()
                .expect("the default listen address parses")],
            bootnodes: Vec::new(),
            mdns: false,
            max_inbound: 64,
            max_inbound_per_host: 8,
            ban_loopback: false,
            max_outbound: 16,
            ban_threshold: 100,
            ban_seconds: 24 * 60 * 60,
            request_timeout_seconds: 20,
            max_blocks_in_flight_per_peer: 256,
            blocks_per_request: 32,
            header_poll_seconds: 30,
            max_requests_per_second: 200,
            gossip_heartbeat_millis: 700,
        }
    }
}

impl NetworkConfig {
    /// A configuration for tests and local testnets: listen on a free loopback port, no mDNS.
    pub fn loopback() -> Self {
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0"
                .parse()
                .expect("the loopback listen address parses")],
            ..Self::default()
        }
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds.max(1))
    }

    pub(crate) fn header_poll(&self) -> Duration {
        Duration::from_secs(self.header_poll_seconds.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_partial_toml_and_refuses_unknown_fields() {
        let config: NetworkConfig = toml::from_str(
            "bootnodes = [\"/ip4/127.0.0.1/tcp/9333\"]\nmdns = true\nban_seconds = 60\n",
        )
        .expect("valid configuration");
        assert_eq!(config.bootnodes.len(), 1);
        assert!(config.mdns);
        assert_eq!(config.ban_seconds, 60);
        assert_eq!(config.max_inbound, NetworkConfig::default().max_inbound);
        let error = toml::from_str::<NetworkConfig>("max_peers = 3\n").unwrap_err();
        assert!(error.to_string().contains("unknown field"), "{error}");
        assert!(toml::from_str::<NetworkConfig>("listen = [\"not an address\"]\n").is_err());
    }
}
