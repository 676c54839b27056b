//! Connections by host: a banned IP address gets no connection whatever peer identity it
//! shows, one host holds at most so many inbound slots, and when every inbound slot is taken a
//! newcomer from another host evicts the youngest connection of the host holding the most (as
//! Bitcoin Core's `AttemptToEvictConnection` evicts from the most-connected network group).
//! Peer identities are free to make; addresses are not.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::net::IpAddr;
use std::task::{Context, Poll, Waker};

use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    dummy, CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm,
    NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Where a peer connects from, for limits, scores and bans: its IP address, or the peer itself
/// when the address is exempt (loopback, unless configured otherwise), so that the nodes of a
/// local testnet each count as their own host.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Host {
    Ip(IpAddr),
    Peer(PeerId),
}

/// The IP address in `address`, if any.
pub(crate) fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    address.iter().find_map(|part| match part {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Why a connection was refused.
#[derive(Debug)]
enum Refused {
    Banned(IpAddr),
    HostFull(Host),
    SlotsFull,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Banned(ip) => write!(f, "{ip} is banned"),
            Self::HostFull(host) => write!(f, "{host:?} holds its share of inbound slots"),
            Self::SlotsFull => f.write_str("every inbound slot is taken by a host with one"),
        }
    }
}

impl std::error::Error for Refused {}

#[derive(Clone, Copy, Debug)]
struct Connection {
    id: ConnectionId,
    peer: PeerId,
    host: Host,
    inbound: bool,
}

/// The swarm behaviour enforcing host limits and bans.
#[derive(Debug)]
pub(crate) struct HostGuard {
    max_inbound: usize,
    max_inbound_per_host: usize,
    exempt_loopback: bool,
    banned: HashSet<IpAddr>,
    /// Established connections, oldest first.
    connections: Vec<Connection>,
    to_close: VecDeque<(PeerId, ConnectionId)>,
    waker: Option<Waker>,
}

impl HostGuard {
    pub(crate) fn new(
        max_inbound: usize,
        max_inbound_per_host: usize,
        exempt_loopback: bool,
    ) -> Self {
        Self {
            max_inbound,
            max_inbound_per_host: max_inbound_per_host.max(1),
            exempt_loopback,
            banned: HashSet::new(),
            connections: Vec::new(),
            to_close: VecDeque::new(),
            waker: None,
        }
    }

    /// The host of `peer` connected from `address`.
    pub(crate) fn host(&self, peer: PeerId, address: &Multiaddr) -> Host {
        match ip_of(address) {
            Some(ip) if !(self.exempt_loopback && ip.is_loopback()) => Host::Ip(ip),
            _ => Host::Peer(peer),
        }
    }

    /// Refuses `ip` from now on and closes every connection from it.
    pub(crate) fn ban(&mut self, ip: IpAddr) {
        self.banned.insert(ip);
        let from_ip: Vec<(PeerId, ConnectionId)> = self
            .connections
            .iter()
            .filter(|connection| connection.host == Host::Ip(ip))
            .map(|connection| (connection.peer, connection.id))
            .collect();
        self.close(from_ip);
    }

    pub(crate) fn unban(&mut self, ip: &IpAddr) {
        self.banned.remove(ip);
    }

    fn close(&mut self, connections: impl IntoIterator<Item = (PeerId, ConnectionId)>) {
        self.to_close.extend(connections);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn check_not_banned(&self, address: &Multiaddr) -> Result<(), ConnectionDenied> {
        match ip_of(address) {
            Some(ip) if self.banned.contains(&ip) => {
                Err(ConnectionDenied::new(Refused::Banned(ip)))
            }
            _ => Ok(()),
        }
    }

    /// Admits an inbound connection of `peer` from `address`, evicting another one when every
    /// slot is taken and some host holds more than one.
    fn admit_inbound(&mut self, peer: PeerId, address: &Multiaddr) -> Result<(), ConnectionDenied> {
        self.check_not_banned(address)?;
        let host = self.host(peer, address);
        let mut per_host: HashMap<Host, usize> = HashMap::new();
        for connection in self.connections.iter().filter(|c| c.inbound) {
            *per_host.entry(connection.host).or_default() += 1;
        }
        if per_host.get(&host).copied().unwrap_or(0) >= self.max_inbound_per_host {
            return Err(ConnectionDenied::new(Refused::HostFull(host)));
        }
        let inbound: usize = per_host.values().sum();
        if inbound < self.max_inbound {
            return Ok(());
        }
        // The host holding the most slots (at least two) gives up its youngest connection.
        let crowded = per_host
            .iter()
            .filter(|(_, count)| **count >= 2)
            .max_by_key(|(_, count)| **count)
            .map(|(host, _)| *host);
        let victim = crowded.and_then(|crowded| {
            self.connections
                .iter()
                .rev()
                .find(|connection| connection.inbound && connection.host == crowded)
                .copied()
        });
        let Some(victim) = victim else {
            return Err(ConnectionDenied::new(Refused::SlotsFull));
        };
        tracing::info!(peer = %victim.peer, host = ?victim.host, "inbound slots full: evicting the youngest connection of the most-connected host");
        self.connections
            .retain(|connection| connection.id != victim.id);
        self.close([(victim.peer, victim.id)]);
        Ok(())
    }
}

impl NetworkBehaviour for HostGuard {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.check_not_banned(remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.admit_inbound(peer, remote)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: Option<PeerId>,
        addresses: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        for address in addresses {
            self.check_not_banned(address)?;
        }
        Ok(Vec::new())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        address: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_not_banned(address)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            }) => {
                let (address, inbound) = match endpoint {
                    ConnectedPoint::Dialer { address, .. } => (address, false),
                    ConnectedPoint::Listener { send_back_addr, .. } => (send_back_addr, true),
                };
                let host = self.host(peer_id, address);
                self.connections.push(Connection {
                    id: connection_id,
                    peer: peer_id,
                    host,
                    inbound,
                });
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.connections
                    .retain(|connection| connection.id != connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        libp2p::core::util::unreachable(event)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some((peer_id, connection)) = self.to_close.pop_front() {
            return Poll::Ready(ToSwarm::CloseConnection {
                peer_id,
                connection: CloseConnection::One(connection),
            });
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
