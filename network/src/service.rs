//! The network actor, in the shape of rust-libp2p's file-sharing example: [`new`] returns a
//! cloneable [`Client`] that sends commands, a receiver of [`NetworkEvent`]s for the node, and
//! the [`EventLoop`] that owns the swarm and must be spawned on the tokio runtime.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quarry_chain::clock::unix_now;

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId, TopicHash};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, connection_limits, identify, mdns, noise, ping, tcp, yamux, Multiaddr,
    PeerId, Swarm,
};
use quarry_chain::{Block, BlockHash, Transaction};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::config::NetworkConfig;
use crate::error::NetworkError;
use crate::guard::{Host, HostGuard};
use crate::peers::{Ban, BanReason, Misbehaviour, PeerBook};
use crate::protocol::{
    identify_protocol, sync_protocol, SyncCodec, SyncRequest, SyncResponse, TopicKind, WireRequest,
    MAX_GOSSIP_TRANSMIT_BYTES,
};

/// Events the node must handle. Gossip messages wait for a [`Client::validate`] verdict before
/// gossipsub forwards them; requests wait for [`Client::respond`].
#[derive(Debug)]
pub enum NetworkEvent {
    /// A connection to a new peer is up.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Whether the peer dialled us.
        inbound: bool,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A gossiped block that decoded.
    Block {
        /// Gossipsub's id for the message, to report the verdict on.
        message_id: MessageId,
        /// The peer that sent it to us.
        source: PeerId,
        /// The block.
        block: Box<Block>,
    },
    /// A gossiped transaction that decoded.
    Transaction {
        /// Gossipsub's id for the message, to report the verdict on.
        message_id: MessageId,
        /// The peer that sent it to us.
        source: PeerId,
        /// The transaction.
        transaction: Box<Transaction>,
    },
    /// A peer's sync request.
    Request {
        /// The peer.
        peer: PeerId,
        /// What it asks for.
        request: SyncRequest,
        /// Where the answer goes.
        channel: ResponseChannel<SyncResponse>,
    },
    /// A peer was banned (and disconnected).
    PeerBanned(Ban),
}

/// The verdict on a gossip message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Validation {
    /// Valid and new: forward it.
    Accept,
    /// Not forwarded, no one at fault (already known, or not decidable).
    Ignore,
    /// Invalid: not forwarded, and the sender pays for it.
    Reject(Misbehaviour),
}

/// Bytes over every connection since the node started.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Traffic {
    /// Received.
    pub received: u64,
    /// Sent.
    pub sent: u64,
}

/// A connected peer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PeerInfo {
    /// Its id.
    pub peer: PeerId,
    /// The address of the first connection.
    pub address: Multiaddr,
    /// Whether it dialled us.
    pub inbound: bool,
    /// The agent it announced, once identify has run.
    pub agent: Option<String>,
    /// Its misbehaviour score.
    pub score: u32,
    /// When it connected, Unix seconds.
    pub connected_since: u64,
}

type Reply<T> = oneshot::Sender<T>;

#[derive(Debug)]
enum Command {
    Dial {
        address: Multiaddr,
        reply: Reply<Result<PeerId, NetworkError>>,
    },
    Disconnect {
        peer: PeerId,
        reply: Reply<bool>,
    },
    Publish {
        kind: TopicKind,
        data: Vec<u8>,
        reply: Reply<Result<(), NetworkError>>,
    },
    Validate {
        message_id: MessageId,
        source: PeerId,
        validation: Validation,
    },
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: Reply<Result<SyncResponse, NetworkError>>,
    },
    Respond {
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
    Penalize {
        peer: PeerId,
        what: Misbehaviour,
    },
    Ban(Ban),
    Unban {
        peer: PeerId,
        reply: Reply<bool>,
    },
    Bans(Reply<Vec<Ban>>),
    Peers(Reply<Vec<PeerInfo>>),
    ListenAddresses(Reply<Vec<Multiaddr>>),
    Shutdown,
}

/// Sends commands to the [`EventLoop`]. Cheap to clone; sending never waits.
#[derive(Clone, Debug)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    local_peer_id: PeerId,
    /// libp2p's byte counters of every connection's streams, by direction.
    bandwidth: Arc<prometheus_client::registry::Registry>,
}

impl Client {
    /// Bytes received and sent over every connection since the node started (the streams'
    /// payloads, after encryption and multiplexing are undone).
    pub fn traffic(&self) -> Traffic {
        let mut text = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.bandwidth);
        let total = |direction: &str| -> u64 {
            let label = format!("direction=\"{direction}\"");
            text.lines()
                .filter(|line| !line.starts_with('#') && line.contains(&label))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .map(|bytes| bytes as u64)
                .sum()
        };
        Traffic {
            received: total("Inbound"),
            sent: total("Outbound"),
        }
    }

    fn send(&self, command: Command) -> Result<(), NetworkError> {
        self.commands
            .send(command)
            .map_err(|_| NetworkError::Stopped)
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply))?;
        answer.await.map_err(|_| NetworkError::Stopped)
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Connects to `address` (a `/p2p/<peer id>` suffix is optional); resolves with the peer's
    /// id once the connection is up.
    pub async fn dial(&self, address: Multiaddr) -> Result<PeerId, NetworkError> {
        self.call(|reply| Command::Dial { address, reply }).await?
    }

    /// Closes every connection to `peer`; whether there was one.
    pub async fn disconnect(&self, peer: PeerId) -> Result<bool, NetworkError> {
        self.call(|reply| Command::Disconnect { peer, reply }).await
    }

    /// Gossips a block (its consensus bytes) to the network.
    pub async fn publish_block(&self, block: &Block) -> Result<(), NetworkError> {
        self.publish(TopicKind::Blocks, quarry_chain::encode::encode(block))
            .await
    }

    /// Gossips a transaction (its consensus bytes) to the network.
    pub async fn publish_transaction(&self, tx: &Transaction) -> Result<(), NetworkError> {
        self.publish(TopicKind::Transactions, quarry_chain::encode::encode(tx))
            .await
    }

    /// Gossips raw bytes on a topic. Nodes decode and validate them as that topic's kind: this
    /// is for the above and for tests of misbehaving peers.
    pub async fn publish(&self, kind: TopicKind, data: Vec<u8>) -> Result<(), NetworkError> {
        self.call(|reply| Command::Publish { kind, data, reply })
            .await?
    }

    /// Reports the verdict on a gossip message from `source`: accepted messages are forwarded,
    /// rejected ones penalise `source`.
    pub fn validate(
        &self,
        message_id: MessageId,
        source: PeerId,
        validation: Validation,
    ) -> Result<(), NetworkError> {
        self.send(Command::Validate {
            message_id,
            source,
            validation,
        })
    }

    /// Sends a sync request and waits for the answer (or the timeout).
    pub async fn request(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> Result<SyncResponse, NetworkError> {
        self.call(|reply| Command::Request {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Answers an inbound sync request.
    pub fn respond(
        &self,
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    ) -> Result<(), NetworkError> {
        self.send(Command::Respond { channel, response })
    }

    /// Adds an offence to `peer`'s score, banning it at the threshold.
    pub fn penalize(&self, peer: PeerId, what: Misbehaviour) -> Result<(), NetworkError> {
        self.send(Command::Penalize { peer, what })
    }

    /// Bans `peer` for `duration` and disconnects it.
    pub fn ban(&self, peer: PeerId, duration: Duration) -> Result<(), NetworkError> {
        let now = unix_now();
        self.restore_ban(Ban {
            peer,
            address: None,
            created: now,
            until: now.saturating_add(duration.as_secs()),
            reason: BanReason::Manual,
        })
    }

    /// Puts a saved ban back in force (with its address, if it had one).
    pub fn restore_ban(&self, ban: Ban) -> Result<(), NetworkError> {
        self.send(Command::Ban(ban))
    }

    /// Lifts a ban; whether there was one.
    pub async fn unban(&self, peer: PeerId) -> Result<bool, NetworkError> {
        self.call(|reply| Command::Unban { peer, reply }).await
    }

    /// The bans in force.
    pub async fn bans(&self) -> Result<Vec<Ban>, NetworkError> {
        self.call(Command::Bans).await
    }

    /// The connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetworkError> {
        self.call(Command::Peers).await
    }

    /// The addresses this node listens on, each ending in `/p2p/<its peer id>`.
    pub async fn listen_addresses(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.call(Command::ListenAddresses).await
    }

    /// Stops the event loop, closing every connection.
    pub fn shutdown(&self) {
        // A loop that already stopped needs no telling.
        let _ = self.commands.send(Command::Shutdown);
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    hosts: HostGuard,
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
}

#[derive(Debug)]
struct ConnectedPeer {
    address: Multiaddr,
    inbound: bool,
    since: u64,
    agent: Option<String>,
    connections: usize,
    requests_this_second: (Instant, u32),
}

/// Owns the swarm; run it with [`EventLoop::run`] on the tokio runtime.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    topics: HashMap<TopicHash, TopicKind>,
    genesis: BlockHash,
    book: PeerBook,
    peers: HashMap<PeerId, ConnectedPeer>,
    pending_dials: HashMap<ConnectionId, (Multiaddr, Reply<Result<PeerId, NetworkError>>)>,
    pending_requests: HashMap<OutboundRequestId, Reply<Result<SyncResponse, NetworkError>>>,
    bootnode_peers: HashMap<Multiaddr, PeerId>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("local_peer_id", self.swarm.local_peer_id())
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

/// Unix time in seconds.
/// How many events may wait for the node before the network stops reading from peers.
const EVENT_QUEUE: usize = 4_096;

/// Builds the swarm for the network whose genesis block is `genesis` and starts listening on
/// the configured addresses. Returns the client, the event stream for the node, and the event
/// loop to spawn.
pub fn new(
    config: NetworkConfig,
    keypair: Keypair,
    genesis: BlockHash,
) -> Result<(Client, mpsc::Receiver<NetworkEvent>, EventLoop), NetworkError> {
    let local_peer_id = keypair.public().to_peer_id();
    let behaviour = build_behaviour(&config, &keypair, genesis)?;
    let mut bandwidth = prometheus_client::registry::Registry::default();
    let tcp_builder = || {
        libp2p::SwarmBuilder::with_existing_identity(keypair.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
    };
    let idle =
        |swarm: libp2p::swarm::Config| swarm.with_idle_connection_timeout(Duration::from_secs(120));
    // Host names in peer addresses (/dns/…, as containers name each other) resolve through
    // the system's resolver; without its configuration the node still runs, on IP addresses.
    let mut swarm = match tcp_builder()?.with_dns() {
        Ok(builder) => {
            let Ok(builder) = builder
                .with_bandwidth_metrics(&mut bandwidth)
                .with_behaviour(|_| behaviour);
            builder.with_swarm_config(idle).build()
        }
        Err(error) => {
            warn!(%error, "no DNS resolver configuration: peers are reachable by IP address only");
            let Ok(builder) = tcp_builder()?
                .with_bandwidth_metrics(&mut bandwidth)
                .with_behaviour(|_| behaviour);
            builder.with_swarm_config(idle).build()
        }
    };
    let mut topics = HashMap::new();
    for kind in [TopicKind::Blocks, TopicKind::Transactions] {
        let topic = kind.topic(genesis);
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .map_err(|_| NetworkError::Gossipsub {
                reason: "cannot subscribe to the network's topics",
            })?;
        topics.insert(topic.hash(), kind);
    }
    for address in &config.listen {
        swarm
            .listen_on(address.clone())
            .map_err(|source| NetworkError::Listen {
                address: address.clone(),
                source,
            })?;
    }
    let (command_sender, commands) = mpsc::unbounded_channel();
    let (events, event_receiver) = mpsc::channel(EVENT_QUEUE);
    let book = PeerBook::new(config.ban_threshold, config.ban_seconds);
    let event_loop = EventLoop {
        swarm,
        config,
        commands,
        events,
        topics,
        genesis,
        book,
        peers: HashMap::new(),
        pending_dials: HashMap::new(),
        pending_requests: HashMap::new(),
        bootnode_peers: HashMap::new(),
    };
    let client = Client {
        commands: command_sender,
        local_peer_id,
        bandwidth: Arc::new(bandwidth),
    };
    Ok((client, event_receiver, event_loop))
}

fn build_behaviour(
    config: &NetworkConfig,
    keypair: &Keypair,
    genesis: BlockHash,
) -> Result<Behaviour, NetworkError> {
    let local_peer_id = keypair.public().to_peer_id();
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        // Content-addressed: the same block or transaction is one message whoever sends it.
        .message_id_fn(|message| MessageId::from(Sha256::digest(&message.data).to_vec()))
        .max_transmit_size(MAX_GOSSIP_TRANSMIT_BYTES)
        .heartbeat_interval(Duration::from_millis(
            config.gossip_heartbeat_millis.max(50),
        ))
        // Messages wait this many heartbeats for a verdict (a block's missing ancestors are
        // fetched meanwhile).
        .history_length(20)
        .duplicate_cache_time(Duration::from_secs(120))
        .build()
        .map_err(|_| NetworkError::Gossipsub {
            reason: "invalid gossipsub configuration",
        })?;
    let gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(keypair.clone()),
        gossip_config,
    )
    .map_err(|reason| NetworkError::Gossipsub { reason })?;
    let sync = request_response::Behaviour::with_codec(
        SyncCodec,
        [(sync_protocol(genesis), ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.request_timeout())
            .with_max_concurrent_streams(256),
    );
    let identify = identify::Behaviour::new(
        identify::Config::new(identify_protocol(genesis), keypair.public())
            .with_agent_version(format!("quarry/{}", env!("CARGO_PKG_VERSION"))),
    );
    let mdns = if config.mdns {
        Some(
            mdns::tokio::Behaviour::new(mdns::Config::default(), local_peer_id)
                .map_err(NetworkError::Mdns)?,
        )
    } else {
        None
    };
    // Inbound slots are the host guard's: it evicts where a plain limit would only refuse.
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established_outgoing(Some(config.max_outbound))
        .with_max_established_per_peer(Some(2));
    Ok(Behaviour {
        blocked: allow_block_list::Behaviour::default(),
        hosts: HostGuard::new(
            config.max_inbound as usize,
            config.max_inbound_per_host as usize,
            !config.ban_loopback,
        ),
        limits: connection_limits::Behaviour::new(limits),
        gossipsub,
        sync,
        identify,
        ping: ping::Behaviour::default(),
        mdns: mdns.into(),
    })
}

/// `address` without a trailing `/p2p/<peer id>`, and that peer id.
fn split_peer(address: &Multiaddr) -> (Multiaddr, Option<PeerId>) {
    let mut address = address.clone();
    match address.pop() {
        Some(Protocol::P2p(peer)) => (address, Some(peer)),
        Some(other) => {
            address.push(other);
            (address, None)
        }
        None => (address, None),
    }
}

impl EventLoop {
    /// Runs until [`Client::shutdown`] or until every client is dropped.
    pub async fn run(mut self) {
        let bootnodes = self.config.bootnodes.clone();
        for address in &bootnodes {
            self.dial(address.clone(), None);
        }
        let mut housekeeping = tokio::time::interval(Duration::from_secs(5));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.handle_swarm_event(event).await,
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.handle_command(command),
                },
                _ = housekeeping.tick() => self.housekeeping(),
            }
        }
        info!("network stopped");
    }

    fn housekeeping(&mut self) {
        for ban in self.book.expire(unix_now()) {
            info!(peer = %ban.peer, "ban ended");
            self.lift(&ban);
        }
        let bootnodes = self.config.bootnodes.clone();
        for address in bootnodes {
            let connected = self
                .bootnode_peers
                .get(&address)
                .is_some_and(|peer| self.swarm.is_connected(peer));
            if !connected {
                self.dial(address, None);
            }
        }
    }

    fn dial(&mut self, address: Multiaddr, reply: Option<Reply<Result<PeerId, NetworkError>>>) {
        let (_, peer) = split_peer(&address);
        if peer.is_some_and(|peer| self.book.is_banned(&peer)) {
            return;
        }
        let options = DialOpts::from(address.clone());
        let connection = options.connection_id();
        match self.swarm.dial(options) {
            Ok(()) => {
                if let Some(reply) = reply {
                    self.pending_dials.insert(connection, (address, reply));
                }
            }
            Err(source) => {
                debug!(%address, error = %source, "dial failed");
                if let Some(reply) = reply {
                    let _ = reply.send(Err(NetworkError::Dial { address, source }));
                }
            }
        }
    }

    async fn emit(&mut self, event: NetworkEvent) {
        // The node dropping its receiver means it is shutting down; events no longer matter.
        let _ = self.events.send(event).await;
    }

    /// Where `peer` connects from, for scores and bans.
    fn host(&self, peer: PeerId) -> Host {
        match self.peers.get(&peer) {
            Some(state) => self.swarm.behaviour().hosts.host(peer, &state.address),
            None => Host::Peer(peer),
        }
    }

    /// Adds the offence to the score of the peer's host; at the threshold the peer and its
    /// address are banned, disconnected and the node told.
    fn punish(&mut self, peer: PeerId, what: Misbehaviour) {
        let host = self.host(peer);
        match self.book.report(peer, host, what, unix_now()) {
            Some(ban) => {
                warn!(%peer, address = ?ban.address, offence = %what, until = ban.until, "peer banned");
                self.enforce(&ban);
                self.queue_event(NetworkEvent::PeerBanned(ban));
            }
            None => {
                debug!(%peer, offence = %what, score = self.book.score(&host), "peer penalised");
            }
        }
    }

    /// Disconnects and refuses the banned peer, and its address if the ban has one.
    fn enforce(&mut self, ban: &Ban) {
        let behaviour = self.swarm.behaviour_mut();
        behaviour.blocked.block_peer(ban.peer);
        if let Some(address) = ban.address {
            behaviour.hosts.ban(address);
        }
    }

    /// Lets the peer of a lifted ban back, and its address unless another ban holds it.
    fn lift(&mut self, ban: &Ban) {
        self.swarm.behaviour_mut().blocked.unblock_peer(ban.peer);
        if let Some(address) = ban.address {
            if !self.book.is_address_banned(&address) {
                self.swarm.behaviour_mut().hosts.unban(&address);
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Dial { address, reply } => self.dial(address, Some(reply)),
            Command::Disconnect { peer, reply } => {
                let _ = reply.send(self.swarm.disconnect_peer_id(peer).is_ok());
            }
            Command::Publish { kind, data, reply } => {
                let topic = kind.topic(self.genesis);
                let published = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, data)
                    .map(|_| ())
                    .map_err(NetworkError::from);
                let _ = reply.send(published);
            }
            Command::Validate {
                message_id,
                source,
                validation,
            } => self.report_validation(&message_id, source, validation),
            Command::Request {
                peer,
                request,
                reply,
            } => {
                // Only to connected peers: libp2p would dial a peer it knows an address of,
                // undoing a disconnection (or a ban's) the moment a request was queued.
                if !self.swarm.is_connected(&peer) {
                    let _ = reply.send(Err(NetworkError::Request {
                        peer,
                        source: request_response::OutboundFailure::DialFailure,
                    }));
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, WireRequest::Valid(request));
                self.pending_requests.insert(id, reply);
            }
            Command::Respond { channel, response } => {
                // The requester may have gone away; its loss.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Command::Penalize { peer, what } => self.punish(peer, what),
            Command::Ban(ban) => {
                let ban = self.book.ban(ban);
                info!(peer = %ban.peer, address = ?ban.address, until = ban.until, reason = %ban.reason, "peer banned");
                self.enforce(&ban);
                self.queue_event(NetworkEvent::PeerBanned(ban));
            }
            Command::Unban { peer, reply } => {
                let lifted = self.book.unban(&peer);
                if let Some(ban) = &lifted {
                    self.lift(ban);
                }
                let _ = reply.send(lifted.is_some());
            }
            Command::Bans(reply) => {
                let _ = reply.send(self.book.bans());
            }
            Command::Peers(reply) => {
                let mut peers: Vec<PeerInfo> = self
                    .peers
                    .iter()
                    .map(|(peer, state)| PeerInfo {
                        peer: *peer,
                        address: state.address.clone(),
                        inbound: state.inbound,
                        connected_since: state.since,
                        agent: state.agent.clone(),
                        score: self
                            .book
                            .score(&self.swarm.behaviour().hosts.host(*peer, &state.address)),
                    })
                    .collect();
                peers.sort_by_key(|info| info.peer);
                let _ = reply.send(peers);
            }
            Command::ListenAddresses(reply) => {
                let local = *self.swarm.local_peer_id();
                let addresses = self
                    .swarm
                    .listeners()
                    .map(|address| address.clone().with(Protocol::P2p(local)))
                    .collect();
                let _ = reply.send(addresses);
            }
            Command::Shutdown => {}
        }
    }

    /// Events raised while handling a command go out without waiting: a full queue drops them
    /// (they are informational) rather than stall the loop.
    fn queue_event(&mut self, event: NetworkEvent) {
        if self.events.try_send(event).is_err() {
            debug!("event queue full; informational event dropped");
        }
    }

    fn report_validation(&mut self, message_id: &MessageId, source: PeerId, verdict: Validation) {
        let acceptance = match verdict {
            Validation::Accept => MessageAcceptance::Accept,
            Validation::Ignore => MessageAcceptance::Ignore,
            Validation::Reject(what) => {
                self.punish(source, what);
                MessageAcceptance::Reject
            }
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(message_id, &source, acceptance);
    }

    async fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                self.handle_gossip(propagation_source, message_id, message)
                    .await
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.handle_sync(event).await,
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if info.protocol_version != identify_protocol(self.genesis) {
                    info!(peer = %peer_id, theirs = %info.protocol_version, "peer is on another network; disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                } else if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.agent = Some(info.agent_version);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, address) in found {
                    if !self.swarm.is_connected(&peer) && !self.book.is_banned(&peer) {
                        debug!(%peer, %address, "discovered by mDNS");
                        self.dial(address.with(Protocol::P2p(peer)), None);
                    }
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.connection_established(
                    peer_id,
                    connection_id,
                    &endpoint,
                    num_established.get(),
                )
                .await;
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                if num_established == 0 {
                    self.peers.remove(&peer_id);
                    debug!(peer = %peer_id, "peer disconnected");
                    self.emit(NetworkEvent::PeerDisconnected { peer: peer_id })
                        .await;
                } else if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.connections = num_established as usize;
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some((address, reply)) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Err(NetworkError::Dial {
                        address,
                        source: error,
                    }));
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, peer = %self.swarm.local_peer_id(), "listening");
            }
            _ => {}
        }
    }

    async fn connection_established(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
        established: u32,
    ) {
        let address = endpoint.get_remote_address().clone();
        if let Some((dialled, reply)) = self.pending_dials.remove(&connection) {
            let _ = reply.send(Ok(peer));
            self.remember_bootnode(&dialled, peer);
        } else if endpoint.is_dialer() {
            self.remember_bootnode(&address, peer);
        }
        if established > 1 {
            if let Some(state) = self.peers.get_mut(&peer) {
                state.connections = established as usize;
            }
            return;
        }
        let inbound = !endpoint.is_dialer();
        debug!(%peer, %address, inbound, "peer connected");
        self.peers.insert(
            peer,
            ConnectedPeer {
                address,
                inbound,
                since: unix_now(),
                agent: None,
                connections: 1,
                requests_this_second: (Instant::now(), 0),
            },
        );
        self.emit(NetworkEvent::PeerConnected { peer, inbound })
            .await;
    }

    fn remember_bootnode(&mut self, dialled: &Multiaddr, peer: PeerId) {
        let (dialled, _) = split_peer(dialled);
        for bootnode in &self.config.bootnodes {
            if split_peer(bootnode).0 == dialled {
                self.bootnode_peers.insert(bootnode.clone(), peer);
            }
        }
    }

    async fn handle_gossip(
        &mut self,
        source: PeerId,
        message_id: MessageId,
        message: gossipsub::Message,
    ) {
        let Some(kind) = self.topics.get(&message.topic).copied() else {
            // Gossipsub only delivers subscribed topics; anything else is ignored.
            self.report_validation(&message_id, source, Validation::Ignore);
            return;
        };
        if message.data.len() > kind.max_payload() {
            let oversized = Validation::Reject(Misbehaviour::Oversized);
            self.report_validation(&message_id, source, oversized);
            return;
        }
        let event = match kind {
            TopicKind::Blocks => {
                quarry_chain::encode::decode::<Block>(&message.data).map(|block| {
                    NetworkEvent::Block {
                        message_id: message_id.clone(),
                        source,
                        block: Box::new(block),
                    }
                })
            }
            TopicKind::Transactions => quarry_chain::encode::decode::<Transaction>(&message.data)
                .map(|tx| NetworkEvent::Transaction {
                    message_id: message_id.clone(),
                    source,
                    transaction: Box::new(tx),
                }),
        };
        match event {
            Ok(event) => self.emit(event).await,
            Err(error) => {
                debug!(peer = %source, %error, "undecodable gossip message");
                self.report_validation(
                    &message_id,
                    source,
                    Validation::Reject(Misbehaviour::Malformed),
                );
            }
        }
    }

    async fn handle_sync(&mut self, event: request_response::Event<WireRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request: WireRequest::Refused(reason),
                    ..
                } => {
                    debug!(%peer, %reason, "sync request refused");
                    self.punish(peer, Misbehaviour::Malformed);
                }
                request_response::Message::Request {
                    request: WireRequest::Valid(request),
                    channel,
                    ..
                } => {
                    if self.request_allowed(peer) {
                        self.emit(NetworkEvent::Request {
                            peer,
                            request,
                            channel,
                        })
                        .await;
                    } else {
                        self.punish(peer, Misbehaviour::RequestFlood);
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending_requests.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                // A response that does not decode or breaks a limit is the peer's fault.
                if let request_response::OutboundFailure::Io(io) = &error {
                    self.punish_invalid_data(peer, io);
                }
                if let Some(reply) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Err(NetworkError::Request {
                        peer,
                        source: error,
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                if let request_response::InboundFailure::Io(io) = &error {
                    self.punish_invalid_data(peer, io);
                }
                debug!(%peer, %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Punishes a peer whose sync message did not decode or broke a limit (the codec reports
    /// those as `InvalidData`; other I/O errors are the network's).
    fn punish_invalid_data(&mut self, peer: PeerId, error: &std::io::Error) {
        if error.kind() == std::io::ErrorKind::InvalidData {
            self.punish(peer, Misbehaviour::Malformed);
        }
    }

    /// Counts an inbound request against the peer's per-second allowance.
    fn request_allowed(&mut self, peer: PeerId) -> bool {
        let limit = self.config.max_requests_per_second;
        let Some(state) = self.peers.get_mut(&peer) else {
            return true;
        };
        let (window, count) = &mut state.requests_this_second;
        if window.elapsed() >= Duration::from_secs(1) {
            *window = Instant::now();
            *count = 0;
        }
        *count += 1;
        *count <= limit
    }
}
