//! Peers added with `addnode`: dialled at once and redialled while disconnected.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quarry_network::{Client, Multiaddr};
use tracing::debug;

use super::lock;

/// How often peers added with `addnode` are redialled while disconnected.
pub(super) const ADDED_NODE_REDIAL: Duration = Duration::from_secs(10);

/// Redials every peer added with `addnode` that is not connected.
pub(super) async fn redial_added_nodes(client: Client, added: Arc<Mutex<BTreeSet<Multiaddr>>>) {
    let mut ticks = tokio::time::interval(ADDED_NODE_REDIAL);
    loop {
        ticks.tick().await;
        let Ok(peers) = client.peers().await else {
            return;
        };
        let wanted: Vec<Multiaddr> = lock(&added).iter().cloned().collect();
        for address in wanted {
            let connected = peers
                .iter()
                .any(|peer| same_endpoint(&peer.address, &address));
            if !connected {
                spawn_dial(client.clone(), address);
            }
        }
    }
}

/// Whether two addresses name the same endpoint, ignoring a `/p2p/<peer id>` suffix.
pub(super) fn same_endpoint(a: &Multiaddr, b: &Multiaddr) -> bool {
    let endpoint = |address: &Multiaddr| {
        address
            .iter()
            .filter(|part| !matches!(part, quarry_network::Protocol::P2p(_)))
            .collect::<Multiaddr>()
    };
    endpoint(a) == endpoint(b)
}

pub(super) fn spawn_dial(client: Client, address: Multiaddr) {
    tokio::spawn(async move {
        match client.dial(address.clone()).await {
            Ok(peer) => debug!(%address, %peer, "connected to an added node"),
            Err(error) => debug!(%address, %error, "cannot connect to an added node"),
        }
    });
}
