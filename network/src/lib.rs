//! Quarry's peer-to-peer layer over libp2p: TCP with noise and yamux, identify and ping;
//! gossipsub topics (per network) for blocks and transactions, forwarded only once validated;
//! a request-response protocol for headers-first sync; connection limits, optional mDNS,
//! bootnodes, and misbehaviour scores that ban peers.
//!
//! [`service::new`] builds the actor in the shape of rust-libp2p's file-sharing example; the
//! [`Syncer`] drives block sync against the chain actor; [`start`] wires both on the current
//! tokio runtime. This is the only crate that talks to libp2p.

pub mod config;
pub mod error;
mod guard;
pub mod peers;
pub mod protocol;
pub mod serve;
pub mod service;
pub mod sync;

pub use config::NetworkConfig;
pub use error::NetworkError;
pub use libp2p::identity::Keypair;
pub use libp2p::multiaddr::Protocol;
pub use libp2p::{Multiaddr, PeerId};
pub use peers::{Ban, BanReason, Misbehaviour};
pub use service::{Client, EventLoop, NetworkEvent, PeerInfo, Traffic, Validation};
pub use sync::{SyncStatus, Syncer};

use quarry_chain::{ChainHandle, ChainParams, ChainReadHandle, ChainReader};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A running network: its client, the sync status, and the tasks to await at shutdown.
#[derive(Debug)]
pub struct NetworkService {
    /// Sends commands to the network.
    pub client: Client,
    /// Where synchronisation stands.
    pub status: watch::Receiver<SyncStatus>,
    /// The event loop task; it ends after [`Client::shutdown`].
    pub event_loop: JoinHandle<()>,
    /// The syncer task; it ends after the event loop.
    pub syncer: JoinHandle<()>,
}

/// Starts the network of the chain of `params` on the current tokio runtime: the event loop,
/// and a [`Syncer`] submitting to `chain`. Transactions and peer events are sent to `node`.
pub fn start<S>(
    config: NetworkConfig,
    keypair: Keypair,
    params: &ChainParams,
    chain: ChainHandle,
    reader: ChainReadHandle<S>,
    node: Option<mpsc::Sender<NetworkEvent>>,
) -> Result<NetworkService, NetworkError>
where
    S: ChainReader + Clone + Send + Sync + 'static,
{
    let (client, events, event_loop) =
        service::new(config.clone(), keypair, params.genesis_hash())?;
    let (syncer, status) = Syncer::new(
        &config,
        params.minimum_chain_work(),
        client.clone(),
        events,
        chain,
        reader,
        node,
    );
    Ok(NetworkService {
        client,
        status,
        event_loop: tokio::spawn(event_loop.run()),
        syncer: tokio::spawn(syncer.run()),
    })
}
