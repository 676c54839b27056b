//! The block synchroniser: validates gossiped blocks through the chain actor, serves and sends
//! sync requests (headers first from a block locator, then bodies from several peers in
//! parallel, with timeouts and retries elsewhere), fetches the ancestors of blocks whose parent
//! is unknown, announces the node's new tips, and punishes peers that send invalid data.
//! Transactions and peer events go on to the node.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use quarry_chain::actor::Command as ChainCommand;
use quarry_chain::{
    Acceptance, Block, BlockError, BlockHash, BlockHeader, ChainError, ChainEvent, ChainHandle,
    ChainReadHandle, ChainReader, DownloadPlan, HeaderPoint, StoreError, TipInfo, Work,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::config::NetworkConfig;
use crate::error::NetworkError;
use crate::peers::Misbehaviour;
use crate::protocol::{
    SyncRequest, SyncResponse, MAX_HEADERS, MAX_LOCATOR_HASHES, RESPONSE_SOFT_LIMIT,
};
use crate::serve;
use crate::service::{Client, NetworkEvent, Validation};

/// Most blocks fetched or waiting for the chain actor at once: bounds memory while the chain
/// validates.
const MAX_BLOCKS_PENDING: usize = 2_048;
/// Most blocks a download plan lists: enough to keep every slot busy while the blocks in
/// flight (still without bodies in the chain) are listed too.
const PLAN_LIMIT: usize = 2 * MAX_BLOCKS_PENDING;
/// How long a gossiped block with unknown ancestors waits for them before it is dropped.
const ORPHAN_GOSSIP_WAIT: Duration = Duration::from_secs(12);
/// How long a peer that failed a block request is passed over.
const STALL_BACKOFF: Duration = Duration::from_secs(10);
/// How far past the lowest block still missing downloads may run (Bitcoin Core's
/// `BLOCK_DOWNLOAD_WINDOW`): a peer holding that block then blocks the window, and is found.
const DOWNLOAD_WINDOW: u32 = 1_024;
/// How long the block at the window's start may stay with one peer while the window is blocked
/// before that peer counts as stalling; doubled after each stall up to the maximum, eased back
/// as blocks arrive (Bitcoin Core's `BLOCK_STALLING_TIMEOUT_DEFAULT` and `_MAX`).
const STALL_TIMEOUT_MIN: Duration = Duration::from_secs(2);
const STALL_TIMEOUT_MAX: Duration = Duration::from_secs(64);
/// Block hashes remembered as already gossiped, so they are not announced again.
const GOSSIPED_MEMORY: usize = 4_096;
/// Most newly connected blocks gossiped at once; peers further behind catch up by headers.
const MAX_ANNOUNCED: usize = 16;
/// How far (in blocks of the tip's work) a branch may fall short of the tip and still have
/// its headers indexed (Bitcoin Core's anti-DoS work threshold: a day of Bitcoin's blocks).
/// Headers of a branch with less work are held in memory until it has enough, or dropped.
const LOW_WORK_MARGIN_BLOCKS: u64 = 144;
/// Most headers held for one peer while its branch has too little work to index (4 MB).
const MAX_HELD_HEADERS_PER_PEER: usize = 50_000;
/// Most headers held for all peers together (16 MB).
const MAX_HELD_HEADERS: usize = 200_000;
/// How often sync progress is logged while blocks are downloading.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// Where synchronisation stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SyncStatus {
    /// Height of the best chain of fully validated blocks.
    pub tip_height: u32,
    /// Height of the best header learned from peers (at least the tip height).
    pub best_header_height: u32,
    /// Peers connected.
    pub peers: usize,
    /// Block bodies requested and not yet received.
    pub blocks_in_flight: usize,
    /// Block bodies still to request.
    pub blocks_queued: usize,
}

impl SyncStatus {
    /// Whether every known block is downloaded and connected.
    pub fn is_synced(&self) -> bool {
        self.blocks_in_flight == 0
            && self.blocks_queued == 0
            && self.tip_height >= self.best_header_height
    }
}

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

/// A block asked of a peer.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    peer: PeerId,
    height: u32,
    since: Instant,
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

/// Headers of a peer's branch held in memory, not indexed, while the branch has less work
/// than [`anti_dos_work`] (Bitcoin Core's headers presync; the headers are kept rather than
/// downloaded twice, within [`MAX_HELD_HEADERS_PER_PEER`]).
#[derive(Debug, Default)]
struct HeldHeaders {
    headers: Vec<BlockHeader>,
    /// Chain work up to the last held header, as its `bits` claim.
    work: Work,
}

/// The least chain work a branch must claim for its headers to be indexed (Bitcoin Core's
/// `GetAntiDoSWorkThreshold`): the tip's work less [`LOW_WORK_MARGIN_BLOCKS`] blocks like the
/// tip, and at least the network's minimum chain work. Below it, a branch is only a cost to
/// the node (an attacker's headers off an early block at the easiest target).
fn anti_dos_work(tip: &TipInfo, minimum_chain_work: Work) -> Work {
    let margin = tip.header.work().saturating_mul(LOW_WORK_MARGIN_BLOCKS);
    tip.chain_work
        .saturating_sub(margin)
        .max(minimum_chain_work)
}

/// What a headers exchange with a peer produced.
#[derive(Debug)]
struct HeadersOutcome {
    /// The last header received, if indexed.
    last: Option<HeaderPoint>,
    /// Where to continue when the answer was full: the last header's hash.
    next_start: Option<BlockHash>,
    /// The peer's headers still held (see [`HeldHeaders`]).
    held: HeldHeaders,
    /// The block the peer's chain is known to hold: the last header, or, when the peer had
    /// nothing after the locator's first hash (the header we fetch toward), that header.
    known: Option<HeaderPoint>,
}

#[derive(Debug)]
enum HeadersFailure {
    Network(NetworkError),
    Misbehaved(Misbehaviour, String),
    Chain(String),
}

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

/// One headers exchange: locator, request, connectivity check, submission to the chain, and
/// the list of bodies then wanted.
async fn exchange_headers<S>(
    client: Client,
    chain: ChainHandle,
    reader: ChainReadHandle<S>,
    peer: PeerId,
    start: Option<BlockHash>,
    mut held: HeldHeaders,
    minimum_chain_work: Work,
) -> Result<HeadersOutcome, HeadersFailure>
where
    S: ChainReader + Clone + Send + Sync + 'static,
{
    // Held headers continue from the last one.
    let start = held.headers.last().map(BlockHeader::block_hash).or(start);
    let chain_failure = |error: &dyn std::fmt::Display| HeadersFailure::Chain(error.to_string());
    let mut locator = read_store(&reader, serve::locator)
        .await
        .map_err(|error| chain_failure(&error))?;
    if let Some(start) = start {
        locator.insert(0, start);
        locator.truncate(MAX_LOCATOR_HASHES);
    }
    let response = client
        .request(peer, SyncRequest::Headers { locator })
        .await
        .map_err(HeadersFailure::Network)?;
    let SyncResponse::Headers(headers) = response else {
        return Err(HeadersFailure::Misbehaved(
            Misbehaviour::Unsolicited,
            "blocks sent in answer to a headers request".into(),
        ));
    };
    if headers.len() > MAX_HEADERS {
        return Err(HeadersFailure::Misbehaved(
            Misbehaviour::Oversized,
            format!("{} headers", headers.len()),
        ));
    }
    if let Some(broken) = headers
        .windows(2)
        .position(|pair| pair[1].prev_blockhash != pair[0].block_hash())
    {
        return Err(HeadersFailure::Misbehaved(
            Misbehaviour::Unsolicited,
            format!("header {} does not follow the one before it", broken + 1),
        ));
    }
    let received = headers.len();
    let last_hash = headers.last().map(BlockHeader::block_hash);
    let next_start = last_hash.filter(|_| received == MAX_HEADERS);
    let held_last = held.headers.last().map(BlockHeader::block_hash);
    // The peer has nothing after what we hold, or answers off another branch: what is held is
    // dropped, and a branch that still has too little work is not held again before the next
    // poll (a peer repeating itself cannot keep us asking).
    let may_hold =
        held.headers.is_empty() || headers.first().map(|first| first.prev_blockhash) == held_last;
    if !may_hold {
        debug!(%peer, held = held.headers.len(), "low-work headers dropped");
        held = HeldHeaders::default();
    }
    let parent_work = if !held.headers.is_empty() {
        Some(held.work)
    } else if let Some(first) = headers.first() {
        let parent = first.prev_blockhash;
        read_store(&reader, move |store| store.index_entry(&parent))
            .await
            .map_err(|error| chain_failure(&error))?
            .map(|entry| entry.chain_work)
    } else {
        None
    };
    // With an unknown parent the chain refuses the headers below, without penalty.
    if let Some(parent_work) = parent_work {
        let claimed = headers.iter().fold(parent_work, |work, header| {
            work.saturating_add(header.work())
        });
        if claimed < anti_dos_work(&reader.tip(), minimum_chain_work) {
            let more = received == MAX_HEADERS;
            held.headers.extend(headers);
            held.work = claimed;
            if !more || !may_hold || held.headers.len() > MAX_HELD_HEADERS_PER_PEER {
                debug!(%peer, headers = held.headers.len(), more, "a branch with too little work: headers dropped");
                held = HeldHeaders::default();
            }
            return Ok(HeadersOutcome {
                last: None,
                next_start: next_start.filter(|_| !held.headers.is_empty()),
                held,
                known: None,
            });
        }
    }
    let mut headers = headers;
    if !held.headers.is_empty() {
        headers.splice(0..0, std::mem::take(&mut held.headers));
    }
    submit_headers(&chain, &headers).await?;
    read_store(&reader, move |store| {
        let point = |hash: BlockHash| -> Result<Option<HeaderPoint>, StoreError> {
            Ok(store.index_entry(&hash)?.map(|entry| HeaderPoint {
                hash,
                height: entry.height,
                chain_work: entry.chain_work,
            }))
        };
        let last = last_hash.map(point).transpose()?.flatten();
        // An empty answer to a locator led by `start`: the peer's best chain ends there (or
        // at our own tip; a wrong guess is corrected when a block request comes back short).
        let known = match (last, start) {
            (Some(last), _) => Some(last),
            (None, Some(start)) => point(start)?,
            (None, None) => None,
        };
        Ok(HeadersOutcome {
            last,
            next_start,
            held: HeldHeaders::default(),
            known,
        })
    })
    .await
    .map_err(|error| chain_failure(&error))
}

/// Submits headers to the chain actor all at once, then checks every answer.
async fn submit_headers(
    chain: &ChainHandle,
    headers: &[BlockHeader],
) -> Result<(), HeadersFailure> {
    let (sender, mut answers) = mpsc::unbounded_channel();
    for (index, header) in headers.iter().enumerate() {
        let sender = sender.clone();
        chain
            .send(ChainCommand::SubmitHeader(
                *header,
                Box::new(move |answer| {
                    let _ = sender.send((index, answer));
                }),
            ))
            .map_err(|error| HeadersFailure::Chain(error.to_string()))?;
    }
    drop(sender);
    let mut first_failure: Option<(usize, ChainError)> = None;
    while let Some((index, answer)) = answers.recv().await {
        if let Err(error) = answer {
            if first_failure
                .as_ref()
                .is_none_or(|(first, _)| index < *first)
            {
                first_failure = Some((index, error));
            }
        }
    }
    match first_failure {
        None => Ok(()),
        Some((index, error)) => match penalty_for(&error) {
            Some(what) => Err(HeadersFailure::Misbehaved(
                what,
                format!("header {index}: {error}"),
            )),
            None if matches!(error, ChainError::InvalidBlock { .. }) => {
                // Not provably the peer's fault (a clock difference); stop here without penalty.
                Err(HeadersFailure::Chain(format!("header {index}: {error}")))
            }
            None => Err(HeadersFailure::Chain(error.to_string())),
        },
    }
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

    fn remember_gossiped(&mut self, hash: BlockHash) {
        if self.gossiped.insert(hash) {
            self.gossiped_order.push_back(hash);
            if self.gossiped_order.len() > GOSSIPED_MEMORY {
                if let Some(old) = self.gossiped_order.pop_front() {
                    self.gossiped.remove(&old);
                }
            }
        }
    }

    /// Gossips the blocks connected since the last announcement once the tip is at the
    /// frontier of known headers (not during initial sync), except those that arrived by gossip
    /// (gossipsub forwarded them already): blocks mined here, and blocks reached by sync after a
    /// partition or an orphan, reach every peer.
    fn announce_tip(&mut self) {
        let tip = self.reader.tip();
        let behind = self
            .best_header
            .is_some_and(|best| best.chain_work > tip.chain_work);
        if behind {
            return;
        }
        let fresh: Vec<BlockHash> = self
            .connected
            .drain(..)
            .filter(|hash| !self.gossiped.contains(hash))
            .collect();
        for hash in &fresh {
            self.remember_gossiped(*hash);
        }
        if fresh.is_empty() {
            return;
        }
        let reader = self.reader.clone();
        let client = self.client.clone();
        self.tasks.push(
            async move {
                for hash in fresh {
                    match read_store(&reader, move |store| store.block(&hash)).await {
                        Ok(Some(block)) => match client.publish_block(&block).await {
                            Ok(()) => debug!(%hash, "block announced"),
                            Err(error) => debug!(%hash, %error, "block not announced"),
                        },
                        // Bodies of connected blocks are kept; nothing to do if not.
                        Ok(None) => {}
                        Err(error) => warn!(%hash, %error, "cannot read a block to announce it"),
                    }
                }
                Task::Announced
            }
            .boxed(),
        );
    }

    fn expire_pending_gossip(&mut self) {
        let expired: Vec<BlockHash> = self
            .pending_gossip
            .iter()
            .filter(|(_, (_, _, since))| since.elapsed() >= ORPHAN_GOSSIP_WAIT)
            .map(|(hash, _)| *hash)
            .collect();
        for hash in expired {
            if let Some((message_id, source, _)) = self.pending_gossip.remove(&hash) {
                debug!(%hash, "ancestors of a gossiped block did not arrive in time");
                let _ = self.client.validate(message_id, source, Validation::Ignore);
            }
        }
    }

    fn fetch_headers(&mut self, peer: PeerId, start: Option<BlockHash>) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        if state.headers_in_flight {
            // The running exchange may predate what prompted this one: go again after it.
            state.headers_again = true;
            return;
        }
        state.headers_in_flight = true;
        let held = std::mem::take(&mut state.held);
        let start = start.or_else(|| {
            self.best_header
                .filter(|_| self.behind())
                .map(|best| best.hash)
        });
        let exchange = exchange_headers(
            self.client.clone(),
            self.chain.clone(),
            self.reader.clone(),
            peer,
            start,
            held,
            self.minimum_chain_work,
        );
        self.tasks.push(
            async move {
                Task::Headers {
                    peer,
                    outcome: exchange.await,
                }
            }
            .boxed(),
        );
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

    fn headers_done(&mut self, peer: PeerId, outcome: Result<HeadersOutcome, HeadersFailure>) {
        let again = self.peers.get_mut(&peer).is_some_and(|state| {
            state.headers_in_flight = false;
            std::mem::take(&mut state.headers_again)
        });
        let next = self.take_headers_outcome(peer, outcome);
        // A full answer continues from its last header; that exchange also serves a request
        // made meanwhile.
        if next.is_some() || again {
            self.fetch_headers(peer, next);
        }
    }

    /// Records what a headers exchange produced; returns where to continue if it was full.
    fn take_headers_outcome(
        &mut self,
        peer: PeerId,
        outcome: Result<HeadersOutcome, HeadersFailure>,
    ) -> Option<BlockHash> {
        let mut outcome = match outcome {
            Ok(outcome) => outcome,
            Err(HeadersFailure::Misbehaved(what, why)) => {
                warn!(%peer, offence = %what, %why, "bad headers");
                let _ = self.client.penalize(peer, what);
                return None;
            }
            Err(HeadersFailure::Network(error)) => {
                debug!(%peer, %error, "headers request failed");
                return None;
            }
            Err(HeadersFailure::Chain(error)) => {
                debug!(%peer, %error, "headers not taken");
                return None;
            }
        };
        let held_elsewhere: usize = self
            .peers
            .iter()
            .filter(|(other, _)| **other != peer)
            .map(|(_, state)| state.held.headers.len())
            .sum();
        if held_elsewhere + outcome.held.headers.len() > MAX_HELD_HEADERS {
            debug!(%peer, "too many low-work headers held for all peers: this peer's dropped");
            outcome.held = HeldHeaders::default();
            outcome.next_start = None;
        }
        if let Some(state) = self.peers.get_mut(&peer) {
            if let Some(known) = outcome.known {
                state.knows(known);
            }
            state.held = std::mem::take(&mut outcome.held);
        }
        if let Some(last) = outcome.last {
            if self
                .best_header
                .is_none_or(|best| last.chain_work > best.chain_work)
            {
                self.best_header = Some(last);
            }
        }
        if outcome.known.is_some() {
            self.request_plan();
        }
        outcome.next_start
    }

    fn blocks_done(
        &mut self,
        peer: PeerId,
        requested: Vec<(u32, BlockHash)>,
        response: Result<SyncResponse, NetworkError>,
    ) {
        // Blocks taken back from a staller meanwhile are another peer's now.
        let owned: HashSet<BlockHash> = requested
            .iter()
            .map(|(_, hash)| *hash)
            .filter(|hash| self.in_flight.get(hash).is_some_and(|f| f.peer == peer))
            .collect();
        for hash in &owned {
            self.in_flight.remove(hash);
        }
        let state = self.peers.get_mut(&peer);
        let blocks = match response {
            Ok(SyncResponse::Blocks(blocks)) => {
                if let Some(state) = state {
                    state.blocks_in_flight = state.blocks_in_flight.saturating_sub(owned.len());
                }
                if blocks.len() == requested.len() {
                    self.stall_timeout = self.stall_timeout.mul_f64(0.85).max(STALL_TIMEOUT_MIN);
                }
                blocks
            }
            Ok(SyncResponse::Headers(_)) => {
                let _ = self.client.penalize(peer, Misbehaviour::Unsolicited);
                Vec::new()
            }
            Err(error) => {
                debug!(%peer, %error, blocks = requested.len(), "block request failed; retrying elsewhere");
                if let Some(state) = state {
                    state.blocks_in_flight = state.blocks_in_flight.saturating_sub(owned.len());
                    state.stalled_until = Some(Instant::now() + STALL_BACKOFF);
                }
                Vec::new()
            }
        };
        let mut returned = 0;
        let mut bytes = 0;
        for (block, (_, hash)) in blocks.into_iter().zip(&requested) {
            if block.block_hash() != *hash {
                warn!(%peer, expected = %hash, "peer sent a block that was not asked for");
                let _ = self.client.penalize(peer, Misbehaviour::Unsolicited);
                break;
            }
            returned += 1;
            bytes += block.encoded_size();
            self.submit_block(Origin::Download { peer }, block);
        }
        // A short answer under the size limit: the peer does not hold the rest (its chain is
        // not the one we thought). It is asked again once it shows us headers.
        if returned < requested.len() && bytes < RESPONSE_SOFT_LIMIT {
            if let Some(state) = self.peers.get_mut(&peer) {
                debug!(%peer, missing = requested.len() - returned, "peer lacks blocks it was asked for");
                state.best_known = None;
                state.reach = 0;
            }
        }
        for missing in requested[returned..]
            .iter()
            .filter(|(_, hash)| owned.contains(hash))
        {
            self.wanted.insert(*missing);
        }
    }

    /// The highest block downloads may reach: [`DOWNLOAD_WINDOW`] past the lowest block still
    /// missing (wanted or in flight).
    fn window_end(&self) -> u32 {
        let lowest_in_flight = self.in_flight.values().map(|flight| flight.height).min();
        let lowest_wanted = self.wanted.first().map(|(height, _)| *height);
        lowest_in_flight
            .into_iter()
            .chain(lowest_wanted)
            .min()
            .map_or(u32::MAX, |lowest| lowest.saturating_add(DOWNLOAD_WINDOW))
    }

    /// Bitcoin Core's stalling detection: when nothing more can be asked within the window and
    /// the block at its start has been with one peer longer than the stalling timeout while
    /// another peer could serve it, that peer's blocks are asked of others and it is
    /// disconnected (slowness is not misbehaviour: it is not banned).
    fn check_stall(&mut self) {
        let Some(first) = self
            .in_flight
            .values()
            .min_by_key(|flight| flight.height)
            .copied()
        else {
            return;
        };
        let window_end = self.window_end();
        let window_blocked = self
            .wanted
            .first()
            .is_none_or(|(height, _)| *height > window_end);
        if !window_blocked || first.since.elapsed() < self.stall_timeout {
            return;
        }
        let now = Instant::now();
        let served_elsewhere = self.peers.iter().any(|(peer, state)| {
            *peer != first.peer && state.reach >= first.height && state.available(now)
        });
        if !served_elsewhere {
            return;
        }
        info!(peer = %first.peer, height = first.height, timeout = ?self.stall_timeout, "peer stalls the block download: its blocks are asked of others and it is disconnected");
        let reclaimed: Vec<(u32, BlockHash)> = self
            .in_flight
            .iter()
            .filter(|(_, flight)| flight.peer == first.peer)
            .map(|(hash, flight)| (flight.height, *hash))
            .collect();
        for (height, hash) in reclaimed {
            self.in_flight.remove(&hash);
            self.wanted.insert((height, hash));
        }
        if let Some(state) = self.peers.get_mut(&first.peer) {
            state.blocks_in_flight = 0;
            state.stalled_until = Some(now + STALL_BACKOFF);
        }
        let client = self.client.clone();
        tokio::spawn(async move {
            let _ = client.disconnect(first.peer).await;
        });
        self.stall_timeout = (self.stall_timeout * 2).min(STALL_TIMEOUT_MAX);
    }

    /// Whether the best header known has more work than the tip.
    fn behind(&self) -> bool {
        let tip_work = self.reader.tip().chain_work;
        self.best_header
            .is_some_and(|best| best.chain_work > tip_work)
    }

    /// Asks the chain what to download next and from whom (see [`DownloadPlan`]); one plan
    /// at a time, another after it if asked for meanwhile.
    fn request_plan(&mut self) {
        if self.planning {
            self.plan_again = true;
            return;
        }
        let (peers, known): (Vec<PeerId>, Vec<BlockHash>) = self
            .peers
            .iter()
            .filter_map(|(peer, state)| state.best_known.map(|known| (*peer, known.hash)))
            .unzip();
        let (sender, receiver) = oneshot::channel();
        let sent = self.chain.send(ChainCommand::DownloadPlan {
            peers: known,
            limit: PLAN_LIMIT,
            reply: Box::new(move |plan| {
                let _ = sender.send(plan);
            }),
        });
        if let Err(error) = sent {
            debug!(%error, "no download plan: the chain actor stopped");
            return;
        }
        self.planning = true;
        self.settled.clear();
        self.tasks.push(
            async move {
                Task::Planned {
                    peers,
                    plan: receiver.await.ok(),
                }
            }
            .boxed(),
        );
    }

    fn plan_done(&mut self, peers: &[PeerId], plan: Option<DownloadPlan>) {
        self.planning = false;
        if let Some(plan) = plan {
            self.best_header = Some(plan.best_header);
            for state in self.peers.values_mut() {
                state.reach = 0;
            }
            for (peer, reach) in peers.iter().zip(plan.reach) {
                if let Some(state) = self.peers.get_mut(peer) {
                    state.reach = reach;
                }
            }
            self.wanted = plan
                .blocks
                .into_iter()
                .filter(|(_, hash)| {
                    !self.in_flight.contains_key(hash)
                        && !self.submitting.contains(hash)
                        && !self.settled.contains(hash)
                })
                .collect();
        }
        if std::mem::take(&mut self.plan_again) {
            self.request_plan();
        }
    }

    /// Hands queued block downloads to peers with room, round robin, lowest heights first.
    fn schedule_downloads(&mut self) {
        let now = Instant::now();
        let window_end = self.window_end();
        loop {
            let mut progressed = false;
            let mut peers: Vec<PeerId> = self.peers.keys().copied().collect();
            peers.sort();
            for peer in peers {
                if self.wanted.is_empty()
                    || self.in_flight.len() + self.submitting.len() >= MAX_BLOCKS_PENDING
                {
                    return;
                }
                let Some(state) = self.peers.get(&peer) else {
                    continue;
                };
                let room = self
                    .max_in_flight_per_peer
                    .saturating_sub(state.blocks_in_flight);
                if !state.available(now) || room == 0 {
                    continue;
                }
                let batch: Vec<(u32, BlockHash)> = self
                    .wanted
                    .iter()
                    .take_while(|(height, _)| *height <= state.reach && *height <= window_end)
                    .take(room.min(self.blocks_per_request))
                    .copied()
                    .collect();
                if batch.is_empty() {
                    continue;
                }
                progressed = true;
                self.request_blocks(peer, batch);
            }
            if !progressed {
                return;
            }
        }
    }

    fn request_blocks(&mut self, peer: PeerId, batch: Vec<(u32, BlockHash)>) {
        let since = Instant::now();
        for entry in &batch {
            self.wanted.remove(entry);
            let (height, hash) = *entry;
            self.in_flight.insert(
                hash,
                InFlight {
                    peer,
                    height,
                    since,
                },
            );
        }
        if let Some(state) = self.peers.get_mut(&peer) {
            state.blocks_in_flight += batch.len();
        }
        let client = self.client.clone();
        let hashes: Vec<BlockHash> = batch.iter().map(|(_, hash)| *hash).collect();
        self.tasks.push(
            async move {
                let response = client.request(peer, SyncRequest::Blocks(hashes)).await;
                Task::Blocks {
                    peer,
                    requested: batch,
                    response,
                }
            }
            .boxed(),
        );
    }

    fn status(&self) -> SyncStatus {
        let tip = self.reader.tip();
        SyncStatus {
            tip_height: tip.height,
            best_header_height: self
                .best_header
                .filter(|best| best.chain_work > tip.chain_work)
                .map_or(tip.height, |best| best.height.max(tip.height)),
            peers: self.peers.len(),
            blocks_in_flight: self.in_flight.len(),
            blocks_queued: self.wanted.len() + self.submitting.len(),
        }
    }

    fn publish_status(&self) {
        let status = self.status();
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }

    fn log_progress(&mut self) {
        let status = self.status();
        if status.is_synced() || self.last_progress.elapsed() < PROGRESS_INTERVAL {
            return;
        }
        self.last_progress = Instant::now();
        let percent =
            f64::from(status.tip_height) * 100.0 / f64::from(status.best_header_height.max(1));
        info!(
            height = status.tip_height,
            headers = status.best_header_height,
            progress = %format!("{percent:.1}%"),
            peers = status.peers,
            in_flight = status.blocks_in_flight,
            "syncing"
        );
    }
}
