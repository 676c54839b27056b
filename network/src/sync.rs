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
    Acceptance, Block, BlockError, BlockHash, BlockHeader, BlockStatus, ChainError, ChainEvent,
    ChainHandle, ChainReadHandle, ChainReader, StoreError, Work,
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::config::NetworkConfig;
use crate::error::NetworkError;
use crate::peers::Misbehaviour;
use crate::protocol::{SyncRequest, SyncResponse, MAX_HEADERS, MAX_LOCATOR_HASHES};
use crate::serve;
use crate::service::{Client, NetworkEvent, Validation};

/// Most blocks fetched or waiting for the chain actor at once: bounds memory while the chain
/// validates.
const MAX_BLOCKS_PENDING: usize = 2_048;
/// How long a gossiped block with unknown ancestors waits for them before it is dropped.
const ORPHAN_GOSSIP_WAIT: Duration = Duration::from_secs(12);
/// How long a peer that failed a block request is passed over.
const STALL_BACKOFF: Duration = Duration::from_secs(10);
/// Block hashes remembered as already gossiped, so they are not announced again.
const GOSSIPED_MEMORY: usize = 4_096;
/// Most newly connected blocks gossiped at once; peers further behind catch up by headers.
const MAX_ANNOUNCED: usize = 16;
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
    best_height: u32,
    headers_in_flight: bool,
    /// Another headers exchange was asked for while one was running.
    headers_again: bool,
    blocks_in_flight: usize,
    stalled_until: Option<Instant>,
}

impl PeerSync {
    fn new() -> Self {
        Self {
            best_height: 0,
            headers_in_flight: false,
            headers_again: false,
            blocks_in_flight: 0,
            stalled_until: None,
        }
    }

    fn available(&self, now: Instant) -> bool {
        self.stalled_until.is_none_or(|until| until <= now)
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
        height: u32,
    },
}

/// A header learned from a peer, with its place in the chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct HeaderTip {
    height: u32,
    hash: BlockHash,
    chain_work: Work,
}

/// The chain actor's answer to a submitted block.
type Submission = (Origin, BlockHash, Result<Acceptance, ChainError>);

/// What a headers exchange with a peer produced.
#[derive(Debug)]
struct HeadersOutcome {
    /// Headers received.
    received: usize,
    /// The last header, if any.
    last: Option<HeaderTip>,
    /// Header-only blocks on a chain with more work than the tip: their bodies are wanted.
    needed: Vec<(u32, BlockHash)>,
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
    peers: HashMap<PeerId, PeerSync>,
    wanted: BTreeSet<(u32, BlockHash)>,
    in_flight: HashMap<BlockHash, PeerId>,
    submitting: usize,
    best_header: Option<HeaderTip>,
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
) -> Result<HeadersOutcome, HeadersFailure>
where
    S: ChainReader + Clone + Send + Sync + 'static,
{
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
    submit_headers(&chain, &headers).await?;
    let hashes: Vec<BlockHash> = headers.iter().map(BlockHeader::block_hash).collect();
    let tip_work = reader.tip().chain_work;
    let received = headers.len();
    read_store(&reader, move |store| {
        let mut needed = Vec::new();
        let mut last = None;
        for hash in &hashes {
            let Some(entry) = store.index_entry(hash)? else {
                continue;
            };
            last = Some(HeaderTip {
                height: entry.height,
                hash: *hash,
                chain_work: entry.chain_work,
            });
            if entry.status == BlockStatus::HeaderOnly {
                needed.push((entry.height, *hash));
            }
        }
        // Bodies are only worth fetching for a chain with more work than ours.
        let more_work = match hashes.last() {
            Some(hash) => store
                .index_entry(hash)?
                .is_some_and(|entry| entry.chain_work > tip_work),
            None => false,
        };
        if !more_work {
            needed.clear();
        }
        Ok(HeadersOutcome {
            received,
            last,
            needed,
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
    /// A synchroniser over the network `client` and its `events`, submitting to `chain`.
    /// Transactions and peer events go to `node` (without one, transactions are ignored).
    /// Returns it with a watch of the sync status.
    pub fn new(
        config: &NetworkConfig,
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
            peers: HashMap::new(),
            wanted: BTreeSet::new(),
            in_flight: HashMap::new(),
            submitting: 0,
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
                message_id, source, ..
            } if self.node.is_none() => {
                let _ = self.client.validate(message_id, source, Validation::Ignore);
            }
            event @ (NetworkEvent::Transaction { .. } | NetworkEvent::PeerBanned(_)) => {
                self.forward(event).await;
            }
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
            self.submitting += 1;
        }
        let results = self.submitted.0.clone();
        let reply_origin = origin.clone();
        let sent = self.chain.send(ChainCommand::SubmitBlock(
            Box::new(block),
            Box::new(move |result| {
                let _ = results.send((reply_origin, hash, result));
            }),
        ));
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
                    Ok(Acceptance::AlreadyKnown) => Validation::Ignore,
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
            Origin::Download { peer, height } => {
                self.submitting = self.submitting.saturating_sub(1);
                if let Err(error) = result {
                    if let Some(what) = penalty_for(&error) {
                        warn!(%hash, %peer, %error, "invalid block downloaded");
                        let _ = self.client.penalize(peer, what);
                    } else {
                        debug!(%hash, %peer, %error, "downloaded block not accepted");
                    }
                    let copy_specific = matches!(&error, ChainError::InvalidBlock { source, .. } if source.is_copy_specific());
                    if copy_specific {
                        self.wanted.insert((height, hash));
                    }
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
        let tip_work = self.reader.tip().chain_work;
        let start = start.or_else(|| {
            self.best_header
                .filter(|best| best.chain_work > tip_work)
                .map(|best| best.hash)
        });
        let exchange = exchange_headers(
            self.client.clone(),
            self.chain.clone(),
            self.reader.clone(),
            peer,
            start,
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
            Task::Announced => {}
        }
    }

    fn headers_done(&mut self, peer: PeerId, outcome: Result<HeadersOutcome, HeadersFailure>) {
        let again = self.peers.get_mut(&peer).is_some_and(|state| {
            state.headers_in_flight = false;
            std::mem::take(&mut state.headers_again)
        });
        if again {
            self.fetch_headers(peer, None);
        }
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(HeadersFailure::Misbehaved(what, why)) => {
                warn!(%peer, offence = %what, %why, "bad headers");
                let _ = self.client.penalize(peer, what);
                return;
            }
            Err(HeadersFailure::Network(error)) => {
                debug!(%peer, %error, "headers request failed");
                return;
            }
            Err(HeadersFailure::Chain(error)) => {
                debug!(%peer, %error, "headers not taken");
                return;
            }
        };
        if let Some(last) = outcome.last {
            if let Some(state) = self.peers.get_mut(&peer) {
                state.best_height = state.best_height.max(last.height);
            }
            if self
                .best_header
                .is_none_or(|best| last.chain_work > best.chain_work)
            {
                self.best_header = Some(last);
            }
        }
        for needed in outcome.needed {
            if !self.in_flight.contains_key(&needed.1) {
                self.wanted.insert(needed);
            }
        }
        if outcome.received == MAX_HEADERS {
            let last = outcome.last.map(|last| last.hash);
            self.fetch_headers(peer, last);
        }
    }

    fn blocks_done(
        &mut self,
        peer: PeerId,
        requested: Vec<(u32, BlockHash)>,
        response: Result<SyncResponse, NetworkError>,
    ) {
        for (_, hash) in &requested {
            self.in_flight.remove(hash);
        }
        let state = self.peers.get_mut(&peer);
        let blocks = match response {
            Ok(SyncResponse::Blocks(blocks)) => {
                if let Some(state) = state {
                    state.blocks_in_flight = state.blocks_in_flight.saturating_sub(requested.len());
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
                    state.blocks_in_flight = state.blocks_in_flight.saturating_sub(requested.len());
                    state.stalled_until = Some(Instant::now() + STALL_BACKOFF);
                }
                Vec::new()
            }
        };
        let mut returned = 0;
        for (block, (height, hash)) in blocks.into_iter().zip(&requested) {
            if block.block_hash() != *hash {
                warn!(%peer, expected = %hash, "peer sent a block that was not asked for");
                let _ = self.client.penalize(peer, Misbehaviour::Unsolicited);
                break;
            }
            returned += 1;
            self.submit_block(
                Origin::Download {
                    peer,
                    height: *height,
                },
                block,
            );
        }
        // What did not come back is asked of someone else, or of this peer after a pause.
        if returned < requested.len() {
            if let Some(state) = self.peers.get_mut(&peer) {
                state.stalled_until = Some(Instant::now() + STALL_BACKOFF);
            }
        }
        for missing in &requested[returned..] {
            self.wanted.insert(*missing);
        }
    }

    /// Hands queued block downloads to peers with room, round robin, lowest heights first.
    fn schedule_downloads(&mut self) {
        let now = Instant::now();
        loop {
            let mut progressed = false;
            let mut peers: Vec<PeerId> = self.peers.keys().copied().collect();
            peers.sort();
            for peer in peers {
                if self.wanted.is_empty()
                    || self.in_flight.len() + self.submitting >= MAX_BLOCKS_PENDING
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
                    .take_while(|(height, _)| *height <= state.best_height)
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
        for entry in &batch {
            self.wanted.remove(entry);
            self.in_flight.insert(entry.1, peer);
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
            blocks_queued: self.wanted.len() + self.submitting,
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
