//! The network crate's errors.

use libp2p::gossipsub::PublishError;
use libp2p::request_response::OutboundFailure;
use libp2p::swarm::DialError;
use libp2p::{Multiaddr, PeerId, TransportError};
use thiserror::Error;

/// A failure of the network layer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The network event loop has stopped (shut down, or its task ended).
    #[error("the network event loop has stopped")]
    Stopped,
    /// Setting up the transport (noise) failed.
    #[error("cannot set up the encrypted transport: {0}")]
    Transport(#[from] libp2p::noise::Error),
    /// Setting up gossipsub failed.
    #[error("cannot set up gossipsub: {reason}")]
    Gossipsub {
        /// What gossipsub reported.
        reason: &'static str,
    },
    /// Setting up mDNS failed.
    #[error("cannot start mDNS discovery: {0}")]
    Mdns(std::io::Error),
    /// A listen address was refused.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// Why.
        source: TransportError<std::io::Error>,
    },
    /// A dial failed.
    #[error("cannot connect to {address}: {source}")]
    Dial {
        /// The address.
        address: Multiaddr,
        /// Why.
        source: DialError,
    },
    /// Gossipsub refused to publish.
    #[error("cannot publish: {0}")]
    Publish(#[from] PublishError),
    /// A sync request failed.
    #[error("sync request to {peer} failed: {source}")]
    Request {
        /// The peer asked.
        peer: PeerId,
        /// Why.
        source: OutboundFailure,
    },
}
