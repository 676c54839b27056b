//! The block synchroniser: validates gossiped blocks through the chain actor, serves and sends
//! sync requests (headers first from a block locator, then bodies from several peers in
//! parallel, with timeouts and retries elsewhere), fetches the ancestors of blocks whose parent
//! is unknown, announces the node's new tips, and punishes peers that send invalid data.
//! Transactions and peer events go on to the node.

mod download;
mod headers;
mod relay;
mod status;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use quarry_chain::actor::Command as ChainCommand;
use quarry_chain::{
    Acceptance, Block, BlockError, BlockHash, ChainError, ChainEvent, ChainHandle, ChainReadHandle,
    ChainReader, DownloadPlan, HeaderPoint, StoreError, Work,
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::config::NetworkConfig;
use crate::error::NetworkError;
use crate::peers::Misbehaviour;
use crate::protocol::{SyncRequest, SyncResponse};
use crate::serve;
use crate::service::{Client, NetworkEvent, Validation};

use download::{InFlight, STALL_TIMEOUT_MIN};
use headers::{HeadersFailure, HeadersOutcome, HeldHeaders};
pub use status::SyncStatus;

/// Most newly connected blocks gossiped at once; peers further behind catch up by headers.
const MAX_ANNOUNCED: usize = 16;

#[derive(Debug)]
struct PeerSync {
    /// The most-work block this peer showed us (its chain holds it and its ancestors).
    best_known: Option<HeaderPoint>,
    /// How far the peer's chain follows the way to the best header (from the last plan):
    /// blocks up to this height may be asked of it.
    reach: u32,
    /// Headers of its branch not indexed yet: too little work so far.
    held: HeldHeaders,
    headers_in_flight: bool,
    /// Another headers exchange was asked for while one was running.
    headers_again: bool,
    blocks_in_flight: usize,
    stalled_until: Option<Instant>,
}

impl PeerSync {
    fn new() -> Self {
        Self {
            best_known: None,
            reach: 0,
            held: HeldHeaders::default(),
            headers_in_flight: false,
            headers_again: false,
            blocks_in_flight: 0,
            stalled_until: None,
        }
    }

    fn available(&self, now: Instant) -> bool {
        self.stalled_until.is_none_or(|until| until <= now)
    }

    /// Records that the peer's chain holds `block`, if it has more work than what it showed.
    fn knows(&mut self, block: HeaderPoint) {
        if self
            .best_known
            .is_none_or(|known| block.chain_work > known.chain_work)
        {
            self.best_known = Some(block);
        }
    }
}

/// Where a submitted block came from.
#[derive(Clone, Debug)]
enum Origin {
    Gossip {
        message_id: MessageId,
        source: PeerId,
    },
    Download {
        peer: PeerId,
    },
}

/// The chain actor's answer to a submitted block.
type Submission = (Origin, BlockHash, Result<Acceptance, ChainError>);

enum Task {
    Headers {
        peer: PeerId,
        outcome: Result<HeadersOutcome, HeadersFailure>,
    },
    Blocks {
        peer: PeerId,
        requested: Vec<(u32, BlockHash)>,
        response: Result<SyncResponse, NetworkError>,
    },
    Planned {
        peers: Vec<PeerId>,
        plan: Option<DownloadPlan>,
    },
    Announced,
}

/// The synchroniser; run it with [`Syncer::run`] next to the network [`crate::EventLoop`].
pub struct Syncer<S> {
    client: Client,
    chain: ChainHandle,
    reader: ChainReadHandle<S>,
    events: mpsc::Receiver<NetworkEvent>,
    node: Option<mpsc::Sender<NetworkEvent>>,
    max_in_flight_per_peer: usize,
    blocks_per_request: usize,
    header_poll: Duration,
    minimum_chain_work: Work,
    peers: HashMap<PeerId, PeerSync>,
    /// Blocks of the last plan neither in flight nor being submitted, lowest first.
    wanted: BTreeSet<(u32, BlockHash)>,
    in_flight: HashMap<BlockHash, InFlight>,
    /// The current stalling timeout (see [`STALL_TIMEOUT_MIN`]).
    stall_timeout: Duration,
    /// Downloaded blocks the chain actor has not answered for yet.
    submitting: HashSet<BlockHash>,
    /// Downloaded blocks answered since the plan being computed was asked for: that plan may
    /// still list them.
    settled: HashSet<BlockHash>,
    /// A plan is being computed; `plan_again`: another was asked for meanwhile.
    planning: bool,
    plan_again: bool,
    best_header: Option<HeaderPoint>,
    pending_gossip: HashMap<BlockHash, (MessageId, PeerId, Instant)>,
    gossiped: HashSet<BlockHash>,
    gossiped_order: VecDeque<BlockHash>,
    /// Blocks connected since the last announcement, oldest first.
    connected: VecDeque<BlockHash>,
    tasks: FuturesUnordered<BoxFuture<'static, Task>>,
    submitted: (
        mpsc::UnboundedSender<Submission>,
        mpsc::UnboundedReceiver<Submission>,
    ),
    status: watch::Sender<SyncStatus>,
    last_progress: Instant,
}

impl<S> std::fmt::Debug for Syncer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("peers", &self.peers.len())
            .field("wanted", &self.wanted.len())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

/// The penalty for a block or header that broke `error`, or `None` when the sender may be
/// honest (a clock difference, a missing parent).
fn penalty_for(error: &ChainError) -> Option<Misbehaviour> {
    match error {
        ChainError::InvalidBlock { source, .. } => match source {
            BlockError::TimeTooNew { .. } | BlockError::UnknownParent { .. } => None,
            BlockError::BadTarget { .. }
            | BlockError::InsufficientProofOfWork { .. }
            | BlockError::WrongDifficulty { .. } => Some(Misbehaviour::InvalidProofOfWork),
            _ => Some(Misbehaviour::InvalidBlock),
        },
        ChainError::KnownInvalid { .. } => Some(Misbehaviour::InvalidBlock),
        _ => None,
    }
}

/// Runs a store read on a blocking thread.
async fn read_store<S, T, F>(reader: &ChainReadHandle<S>, read: F) -> Result<T, StoreError>
where
    S: ChainReader + Clone + Send + Sync + 'static,
    T: Send + 'static,
    F: FnOnce(&S) -> Result<T, StoreError> + Send + 'static,
{
    let store = reader.store().clone();
    tokio::task::spawn_blocking(move || read(&store))
        .await
        .unwrap_or_else(|join| {
            Err(StoreError::Corrupt {
                what: format!("store read task failed: {join}"),
            })
        })
}

impl<S> Syncer<S>
where
    S: ChainReader + Clone + Send + Sync + 'static,
{
    /// A synchroniser over the network `client` and its `events`, submitting to `chain`;
    /// branches with less than `minimum_chain_work` are not indexed. Transactions and peer
    /// events go to `node` (without one, transactions are ignored). Returns it with a watch of
    /// the sync status.
    pub fn new(
        config: &NetworkConfig,
        minimum_chain_work: Work,
        client: Client,
        events: mpsc::Receiver<NetworkEvent>,
        chain: ChainHandle,
        reader: ChainReadHandle<S>,
        node: Option<mpsc::Sender<NetworkEvent>>,
    ) -> (Self, watch::Receiver<SyncStatus>) {
        let tip = reader.tip();
        let (status, status_receiver) = watch::channel(SyncStatus {
            tip_height: tip.height,
            best_header_height: tip.height,
            ..SyncStatus::default()
        });
        let syncer = Self {
            client,
            chain,
            reader,
            events,
            node,
            max_in_flight_per_peer: config.max_blocks_in_flight_per_peer.max(1),
            blocks_per_request: config
                .blocks_per_request
                .clamp(1, crate::protocol::MAX_BLOCKS_PER_REQUEST),
            header_poll: config.header_poll(),
            minimum_chain_work,
            peers: HashMap::new(),
            wanted: BTreeSet::new(),
            in_flight: HashMap::new(),
            stall_timeout: STALL_TIMEOUT_MIN,
            submitting: HashSet::new(),
            settled: HashSet::new(),
            planning: false,
            plan_again: false,
            best_header: None,
            pending_gossip: HashMap::new(),
            gossiped: HashSet::new(),
            gossiped_order: VecDeque::new(),
            connected: VecDeque::new(),
            tasks: FuturesUnordered::new(),
            submitted: mpsc::unbounded_channel(),
            status,
            last_progress: Instant::now(),
        };
        (syncer, status_receiver)
    }

    /// Runs until the network's event stream ends.
    pub async fn run(mut self) {
        let (chain_sender, mut chain_events) = mpsc::unbounded_channel();
        match self.chain.subscribe() {
            Ok(receiver) => {
                // The chain actor speaks std channels; a small thread bridges them to tokio.
                let bridge = std::thread::Builder::new()
                    .name("chain-events".into())
                    .spawn(move || {
                        while let Ok(event) = receiver.recv() {
                            if chain_sender.send(event).is_err() {
                                break;
                            }
                        }
                    });
                if let Err(error) = bridge {
                    warn!(%error, "cannot follow chain events; tips will not be announced");
                }
            }
            Err(error) => warn!(%error, "chain actor stopped; syncing cannot start"),
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_poll = Instant::now();
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(event) => self.handle_network_event(event).await,
                    None => break,
                },
                Some(task) = self.tasks.next(), if !self.tasks.is_empty() => self.handle_task(task),
                Some((origin, hash, result)) = self.submitted.1.recv() => {
                    self.handle_submitted(origin, hash, result);
                }
                Some(event) = chain_events.recv() => {
                    self.handle_chain_event(event);
                    while let Ok(event) = chain_events.try_recv() {
                        self.handle_chain_event(event);
                    }
                    self.announce_tip();
                }
                _ = tick.tick() => {
                    self.expire_pending_gossip();
                    self.check_stall();
                    if self.behind() {
                        self.request_plan();
                    }
                    if last_poll.elapsed() >= self.header_poll {
                        last_poll = Instant::now();
                        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
                        for peer in peers {
                            self.fetch_headers(peer, None);
                        }
                    }
                    self.log_progress();
                }
            }
            self.schedule_downloads();
            self.publish_status();
        }
        debug!("syncer stopped");
    }

    async fn forward(&mut self, event: NetworkEvent) {
        if let Some(node) = &self.node {
            // A node that stopped listening is shutting down.
            let _ = node.send(event).await;
        }
    }

    async fn handle_network_event(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::Block {
                message_id,
                source,
                block,
            } => self.submit_block(Origin::Gossip { message_id, source }, *block),
            NetworkEvent::Request {
                peer,
                request,
                channel,
            } => self.serve(peer, request, channel),
            NetworkEvent::PeerConnected { peer, inbound } => {
                self.peers.insert(peer, PeerSync::new());
                self.fetch_headers(peer, None);
                self.forward(NetworkEvent::PeerConnected { peer, inbound })
                    .await;
            }
            NetworkEvent::PeerDisconnected { peer } => {
                // Its requests fail on their own and their blocks are queued again.
                self.peers.remove(&peer);
                self.forward(NetworkEvent::PeerDisconnected { peer }).await;
            }
            NetworkEvent::Transaction {
                message_id,
                source,
                transaction,
            } => {
                // Never wait on a busy mempool: block sync and the swarm would wait with it.
                let event = NetworkEvent::Transaction {
                    message_id,
                    source,
                    transaction,
                };
                let shed = match &self.node {
                    None => Some(event),
                    Some(node) => match node.try_send(event) {
                        Err(mpsc::error::TrySendError::Full(event)) => {
                            debug!(peer = %source, "mempool busy: gossiped transaction shed");
                            Some(event)
                        }
                        _ => None,
                    },
                };
                if let Some(NetworkEvent::Transaction {
                    message_id, source, ..
                }) = shed
                {
                    let _ = self.client.validate(message_id, source, Validation::Ignore);
                }
            }
            event @ NetworkEvent::PeerBanned(_) => self.forward(event).await,
        }
    }

    fn serve(
        &self,
        peer: PeerId,
        request: SyncRequest,
        channel: libp2p::request_response::ResponseChannel<SyncResponse>,
    ) {
        let store = self.reader.store().clone();
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || {
            let response = match &request {
                SyncRequest::Headers { locator } => {
                    serve::headers_after(&store, locator).map(SyncResponse::Headers)
                }
                SyncRequest::Blocks(hashes) => {
                    serve::blocks(&store, hashes).map(SyncResponse::Blocks)
                }
            };
            match response {
                Ok(response) => {
                    let _ = client.respond(channel, response);
                }
                // Dropping the channel tells the peer the request failed.
                Err(error) => warn!(%peer, %error, "cannot answer a sync request"),
            }
        });
    }

    fn submit_block(&mut self, origin: Origin, block: Block) {
        let hash = block.block_hash();
        if matches!(origin, Origin::Download { .. }) {
            self.submitting.insert(hash);
        }
        let results = self.submitted.0.clone();
        let reply_origin = origin.clone();
        let reply: quarry_chain::actor::Reply<_> = Box::new(move |result| {
            let _ = results.send((reply_origin, hash, result));
        });
        // Only blocks we asked for may have less work than the tip.
        let sent = self.chain.send(match origin {
            Origin::Gossip { .. } => ChainCommand::SubmitUnrequestedBlock(Box::new(block), reply),
            Origin::Download { .. } => ChainCommand::SubmitBlock(Box::new(block), reply),
        });
        if let Err(error) = sent {
            self.handle_submitted(origin, hash, Err(error));
        }
    }

    fn handle_submitted(
        &mut self,
        origin: Origin,
        hash: BlockHash,
        result: Result<Acceptance, ChainError>,
    ) {
        match origin {
            Origin::Gossip { message_id, source } => {
                let validation = match &result {
                    Ok(Acceptance::Accepted) => {
                        self.remember_gossiped(hash);
                        // Stored but not the tip: an ancestor's body may be missing here (a
                        // branch known by its headers only, as after a partition heals with
                        // equal work). The sender has it; without asking, the block would wait
                        // for the next header poll.
                        if self.reader.tip().hash != hash {
                            self.fetch_headers(source, None);
                        }
                        Validation::Accept
                    }
                    Ok(Acceptance::AlreadyKnown | Acceptance::Ignored) => Validation::Ignore,
                    Ok(Acceptance::Orphan) => {
                        debug!(%hash, peer = %source, "gossiped block has unknown ancestors; fetching them");
                        self.pending_gossip
                            .insert(hash, (message_id, source, Instant::now()));
                        self.fetch_headers(source, None);
                        return;
                    }
                    Err(error) => match penalty_for(error) {
                        Some(what) => {
                            warn!(%hash, peer = %source, %error, "invalid gossiped block");
                            Validation::Reject(what)
                        }
                        None => {
                            debug!(%hash, %error, "gossiped block not accepted");
                            Validation::Ignore
                        }
                    },
                };
                let _ = self.client.validate(message_id, source, validation);
            }
            Origin::Download { peer } => {
                self.submitting.remove(&hash);
                self.settled.insert(hash);
                if let Err(error) = result {
                    if let Some(what) = penalty_for(&error) {
                        warn!(%hash, %peer, %error, "invalid block downloaded");
                        let _ = self.client.penalize(peer, what);
                    } else {
                        debug!(%hash, %peer, %error, "downloaded block not accepted");
                    }
                }
                // Whatever is still missing (a copy that failed, the next blocks) is planned
                // again once the chain has taken what came in.
                if self.submitting.is_empty() {
                    self.request_plan();
                }
            }
        }
    }

    fn handle_chain_event(&mut self, event: ChainEvent) {
        if let ChainEvent::Connected { hash, .. } = event {
            self.connected.push_back(hash);
            if self.connected.len() > MAX_ANNOUNCED {
                self.connected.pop_front();
            }
            if let Some((message_id, source, _)) = self.pending_gossip.remove(&hash) {
                let _ = self.client.validate(message_id, source, Validation::Accept);
                self.remember_gossiped(hash);
            }
        }
    }

    fn handle_task(&mut self, task: Task) {
        match task {
            Task::Headers { peer, outcome } => self.headers_done(peer, outcome),
            Task::Blocks {
                peer,
                requested,
                response,
            } => self.blocks_done(peer, requested, response),
            Task::Planned { peers, plan } => self.plan_done(&peers, plan),
            Task::Announced => {}
        }
    }
}
