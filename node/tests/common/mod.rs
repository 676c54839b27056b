//! In-process test nodes on loopback.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use quarry_chain::testing::{test_key, unit_params, MINER};
use quarry_chain::{BlockHash, ChainParams, OutputKey};
use quarry_network::{Keypair, Multiaddr, NetworkConfig, PeerId};
use quarry_node::{Node, NodeConfig};
use tempfile::TempDir;

mod rogue;
pub use rogue::*;

/// A node with its own data directory.
pub struct TestNode {
    pub node: Node,
    pub name: String,
    _dir: TempDir,
}

impl std::ops::Deref for TestNode {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
    }
}

/// The network configuration of test nodes: loopback, quick gossip heartbeats, short request
/// timeouts, and header polls every 5 s as the safety net for a missed announcement (gossip
/// spreads blocks long before a poll).
pub fn test_network_config() -> NetworkConfig {
    NetworkConfig {
        gossip_heartbeat_millis: 200,
        header_poll_seconds: 5,
        request_timeout_seconds: 5,
        ..NetworkConfig::loopback()
    }
}

pub fn params() -> ChainParams {
    unit_params()
}

pub fn payout() -> OutputKey {
    test_key(MINER)
}

pub async fn start_node(name: &str) -> TestNode {
    start_node_with(name, params(), test_network_config()).await
}

pub async fn start_node_with(name: &str, params: ChainParams, network: NetworkConfig) -> TestNode {
    let config = NodeConfig {
        network,
        miner_threads: 1,
        ..NodeConfig::default()
    };
    start_node_configured(name, params, config).await
}

pub async fn start_node_configured(
    name: &str,
    params: ChainParams,
    config: NodeConfig,
) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(params, dir.path(), config, Keypair::generate_ed25519())
        .await
        .unwrap();
    TestNode {
        node,
        name: name.into(),
        _dir: dir,
    }
}

/// Waits until `condition` holds, failing with `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls `probe` until it yields a value, failing with `what` after `timeout`.
pub async fn eventually<T, Probe, Outcome>(what: &str, timeout: Duration, mut probe: Probe) -> T
where
    Probe: FnMut() -> Outcome,
    Outcome: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn listen_address(node: &Node) -> Multiaddr {
    eventually("a listen address", Duration::from_secs(10), || async {
        node.client()
            .listen_addresses()
            .await
            .unwrap()
            .into_iter()
            .next()
    })
    .await
}

pub async fn is_connected(node: &Node, peer: PeerId) -> bool {
    node.client()
        .peers()
        .await
        .unwrap()
        .iter()
        .any(|info| info.peer == peer)
}

/// Connects `from` to `to` and waits until both list each other as peers and gossip meshes
/// have formed (three heartbeats).
pub async fn connect(from: &Node, to: &Node) -> PeerId {
    let address = listen_address(to).await;
    let peer = from.client().dial(address).await.unwrap();
    let local = from.client().local_peer_id();
    eventually(
        "the dialled node to see the connection",
        Duration::from_secs(10),
        || async { is_connected(to, local).await.then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    peer
}

/// Waits until `node` has no connection to `peer`.
pub async fn wait_until_disconnected(node: &TestNode, peer: PeerId) {
    let what = format!("{} to drop {peer}", node.name);
    eventually(&what, Duration::from_secs(60), || async {
        (!is_connected(node, peer).await).then_some(())
    })
    .await;
}

pub fn tips(nodes: &[TestNode]) -> Vec<(String, u32, BlockHash)> {
    nodes
        .iter()
        .map(|node| {
            let tip = node.tip();
            (node.name.clone(), tip.height, tip.hash)
        })
        .collect()
}

/// Waits until every node's tip is `hash`.
pub async fn wait_for_tip(nodes: &[TestNode], hash: BlockHash, timeout: Duration) {
    let start = Instant::now();
    while !nodes.iter().all(|node| node.tip().hash == hash) {
        assert!(
            start.elapsed() < timeout,
            "nodes did not converge on {hash} within {timeout:?}: {:?}",
            tips(nodes)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Shuts the nodes down in order, so that every store is closed before the process exits.
pub async fn shutdown(nodes: impl IntoIterator<Item = TestNode>) {
    for test_node in nodes {
        let name = test_node.name.clone();
        test_node
            .node
            .shutdown()
            .await
            .unwrap_or_else(|error| panic!("{name} did not shut down cleanly: {error}"));
    }
}
