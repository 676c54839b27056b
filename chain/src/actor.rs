//! The chain actor: one thread owns the [`Chain`] and is the store's only writer. Other
//! components send it commands through a cloneable [`ChainHandle`] and get answers back, read
//! the store concurrently through a [`ChainReadHandle`], follow the tip on a [`TipWatch`] and
//! receive every connect and disconnect as a [`ChainEvent`].
//!
//! Nothing here needs an async runtime: a command's answer can be awaited by blocking
//! ([`ChainHandle::submit_block`]) or delivered to a callback ([`ChainHandle::send`]) that
//! forwards it to whatever channel the caller uses.

mod summary;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{error, info};

use crate::block::{Block, BlockHeader};
use crate::chain::{Acceptance, Chain, ChainEvent, ChainTip, DownloadPlan, NextBlock};
use crate::error::{ChainError, StoreError};
use crate::hash::BlockHash;
use crate::pow::Work;
use crate::store::{ChainReader, ChainWriter};

pub use summary::{SummaryCell, TreeSummary};

/// How often, at most, the actor recounts branch tips for the [`TreeSummary`]: a recount walks
/// every branch back to the best chain, too much to do after every block of a sync.
pub const TIP_RECOUNT_INTERVAL: Duration = Duration::from_secs(1);

/// The best chain's tip as last published by the chain actor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TipInfo {
    /// The tip block.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// Its header.
    pub header: BlockHeader,
    /// Cumulative work of the best chain.
    pub chain_work: Work,
    /// What the next block on top of it must satisfy.
    pub next: NextBlock,
}

impl TipInfo {
    fn of<S: ChainReader + ChainWriter>(chain: &Chain<S>) -> Self {
        let hash = chain.tip_hash();
        let header = chain.index().get(&hash).expect("the tip is indexed").header;
        Self {
            hash,
            height: chain.tip_height(),
            header,
            chain_work: chain.tip_work(),
            next: chain.next_block(),
        }
    }
}

#[derive(Debug)]
struct WatchShared {
    tip: Mutex<TipInfo>,
    version: AtomicU64,
    changed: Condvar,
}

/// A watch on the best tip: the latest value, a version number that increases with every
/// change (cheap to poll from a hot loop such as a nonce search), and a blocking wait.
#[derive(Clone, Debug)]
pub struct TipWatch {
    shared: Arc<WatchShared>,
}

impl TipWatch {
    fn new(tip: TipInfo) -> Self {
        Self {
            shared: Arc::new(WatchShared {
                tip: Mutex::new(tip),
                version: AtomicU64::new(0),
                changed: Condvar::new(),
            }),
        }
    }

    fn publish(&self, tip: TipInfo) {
        let mut current = self
            .shared
            .tip
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *current != tip {
            *current = tip;
            self.shared.version.fetch_add(1, Ordering::Release);
            self.shared.changed.notify_all();
        }
    }

    /// The current tip.
    pub fn get(&self) -> TipInfo {
        *self
            .shared
            .tip
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many times the tip has changed since the actor started.
    pub fn version(&self) -> u64 {
        self.shared.version.load(Ordering::Acquire)
    }

    /// Waits until the version differs from `seen` or `timeout` passes; returns the new
    /// version and tip, or `None` on timeout.
    pub fn wait_for_change(&self, seen: u64, timeout: Duration) -> Option<(u64, TipInfo)> {
        let guard = self
            .shared
            .tip
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .shared
            .changed
            .wait_timeout_while(guard, timeout, |_| self.version() == seen)
            .unwrap_or_else(PoisonError::into_inner);
        let version = self.version();
        (version != seen).then_some((version, *guard))
    }
}

/// A callback that receives a command's answer.
pub type Reply<T> = Box<dyn FnOnce(T) + Send>;

/// A request to the chain actor.
#[non_exhaustive]
pub enum Command {
    /// Validate and store a block, then follow the most-work chain.
    SubmitBlock(Box<Block>, Reply<Result<Acceptance, ChainError>>),
    /// The same for a block nobody asked for (gossip): ignored unless it could lead to a chain
    /// with the tip's work ([`Chain::process_unrequested_block`]).
    SubmitUnrequestedBlock(Box<Block>, Reply<Result<Acceptance, ChainError>>),
    /// Validate and index a header (headers-first sync).
    SubmitHeader(BlockHeader, Reply<Result<Acceptance, ChainError>>),
    /// Bitcoin Core's `invalidateblock`.
    Invalidate(BlockHash, Reply<Result<(), ChainError>>),
    /// Bitcoin Core's `reconsiderblock`.
    Reconsider(BlockHash, Reply<Result<(), ChainError>>),
    /// Bitcoin Core's `getchaintips`.
    ChainTips(Reply<Vec<ChainTip>>),
    /// What headers-first sync should fetch next: up to `limit` blocks, and how far each of
    /// the given peers' best known blocks reaches along the way (see [`DownloadPlan`]).
    DownloadPlan {
        /// The best known block of each peer.
        peers: Vec<BlockHash>,
        /// Most blocks listed.
        limit: usize,
        /// Receives the plan.
        reply: Reply<DownloadPlan>,
    },
    /// Send every future [`ChainEvent`] to this channel.
    Subscribe(Sender<ChainEvent>),
    /// Finish the current command and stop.
    Shutdown,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::SubmitBlock(block, _) => return write!(f, "SubmitBlock({})", block.block_hash()),
            Self::SubmitUnrequestedBlock(block, _) => {
                return write!(f, "SubmitUnrequestedBlock({})", block.block_hash())
            }
            Self::SubmitHeader(header, _) => {
                return write!(f, "SubmitHeader({})", header.block_hash())
            }
            Self::Invalidate(hash, _) => return write!(f, "Invalidate({hash})"),
            Self::Reconsider(hash, _) => return write!(f, "Reconsider({hash})"),
            Self::ChainTips(_) => "ChainTips",
            Self::DownloadPlan { .. } => "DownloadPlan",
            Self::Subscribe(_) => "Subscribe",
            Self::Shutdown => "Shutdown",
        };
        f.write_str(name)
    }
}

/// Sends commands to the chain actor. Cloneable; the actor stops when every handle is dropped
/// or [`ChainHandle::shutdown`] is called.
#[derive(Clone, Debug)]
pub struct ChainHandle {
    commands: Sender<Command>,
}

impl ChainHandle {
    /// Sends `command`; its reply callback is called by the actor thread. Fails with
    /// [`ChainError::Stopped`] if the actor has stopped (after a shutdown or a storage failure).
    pub fn send(&self, command: Command) -> Result<(), ChainError> {
        self.commands.send(command).map_err(|_| ChainError::Stopped)
    }

    /// Sends the command built by `make` and blocks until its answer arrives.
    fn call<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, ChainError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        self.send(make(Box::new(move |answer| {
            // The caller may have given up waiting; the answer is then not needed.
            let _ = sender.send(answer);
        })))?;
        receiver.recv().map_err(|_| ChainError::Stopped)
    }

    /// Validates and stores `block`, then follows the most-work chain; blocks until done.
    pub fn submit_block(&self, block: Block) -> Result<Acceptance, ChainError> {
        self.call(|reply| Command::SubmitBlock(Box::new(block), reply))?
    }

    /// Validates and indexes `header`; blocks until done.
    pub fn submit_header(&self, header: BlockHeader) -> Result<Acceptance, ChainError> {
        self.call(|reply| Command::SubmitHeader(header, reply))?
    }

    /// Marks `hash` invalid and moves to the best remaining chain (`invalidateblock`).
    pub fn invalidate_block(&self, hash: BlockHash) -> Result<(), ChainError> {
        self.call(|reply| Command::Invalidate(hash, reply))?
    }

    /// Clears invalidity of `hash` and its relatives (`reconsiderblock`).
    pub fn reconsider_block(&self, hash: BlockHash) -> Result<(), ChainError> {
        self.call(|reply| Command::Reconsider(hash, reply))?
    }

    /// Every branch tip with its status (`getchaintips`).
    pub fn chain_tips(&self) -> Result<Vec<ChainTip>, ChainError> {
        self.call(Command::ChainTips)
    }

    /// A channel receiving every connect and disconnect from now on, in order.
    pub fn subscribe(&self) -> Result<Receiver<ChainEvent>, ChainError> {
        let (sender, receiver) = mpsc::channel();
        self.send(Command::Subscribe(sender))?;
        Ok(receiver)
    }

    /// Asks the actor to stop after the command in progress. Join its thread to wait.
    pub fn shutdown(&self) {
        // An actor that already stopped needs no telling.
        let _ = self.commands.send(Command::Shutdown);
    }
}

/// Concurrent read access to the chain's store, plus the tip watch. Reads never wait for the
/// writer; each read sees the state after some complete commit.
#[derive(Clone, Debug)]
pub struct ChainReadHandle<S> {
    store: S,
    tip: TipWatch,
    summary: SummaryCell,
    failure: Arc<Mutex<Option<StoreError>>>,
}

impl<S: ChainReader> ChainReadHandle<S> {
    /// The store, for reads.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The tip watch.
    pub fn tip_watch(&self) -> &TipWatch {
        &self.tip
    }

    /// The current tip.
    pub fn tip(&self) -> TipInfo {
        self.tip.get()
    }

    /// The block tree at a glance, without asking the actor.
    pub fn summary(&self) -> TreeSummary {
        self.summary.get()
    }

    /// The storage failure that stopped the actor, if one did: nothing more can be written.
    pub fn store_failure(&self) -> Option<StoreError> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The clock the actor checks block timestamps against, in Unix seconds.
pub type Clock = Box<dyn Fn() -> u64 + Send>;

/// The system clock.
pub fn system_clock() -> Clock {
    Box::new(crate::clock::unix_now)
}

/// A running chain actor.
#[derive(Debug)]
pub struct ChainService<S> {
    /// Sends commands.
    pub handle: ChainHandle,
    /// Reads the store and watches the tip.
    pub reader: ChainReadHandle<S>,
    /// The actor thread. It ends with the storage error that stopped it, if one did.
    pub thread: JoinHandle<Result<(), StoreError>>,
}

/// Starts the actor thread that owns `chain`. `S` must share its state between clones (as
/// `Arc<quarry_store::RocksStore>` does): one clone goes to the readers.
pub fn spawn<S>(chain: Chain<S>, clock: Clock) -> std::io::Result<ChainService<S>>
where
    S: ChainReader + ChainWriter + Clone + Send + 'static,
{
    let (commands, receiver) = mpsc::channel();
    let tip = TipWatch::new(TipInfo::of(&chain));
    let summary = SummaryCell::new(summary_of(&chain));
    let failure = Arc::new(Mutex::new(None));
    let reader = ChainReadHandle {
        store: chain.store().clone(),
        tip: tip.clone(),
        summary: summary.clone(),
        failure: Arc::clone(&failure),
    };
    let thread = std::thread::Builder::new()
        .name("chain".into())
        .spawn(move || {
            let ended = run(chain, &receiver, &tip, &summary, &clock);
            if let Err(error) = &ended {
                *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
            }
            ended
        })?;
    Ok(ChainService {
        handle: ChainHandle { commands },
        reader,
        thread,
    })
}

/// A full summary of `chain`, tips counted now.
fn summary_of<S: ChainReader + ChainWriter>(chain: &Chain<S>) -> TreeSummary {
    TreeSummary {
        best_header: chain.best_header(),
        orphans: chain.orphan_count(),
        tips: TreeSummary::count_tips(&chain.chain_tips()),
    }
}

/// The actor's state: the chain and who follows it.
struct Actor<'a, S> {
    chain: Chain<S>,
    subscribers: Vec<Sender<ChainEvent>>,
    tip: &'a TipWatch,
    summary: &'a SummaryCell,
    /// When tips were last counted, and whether the tree changed since.
    tips_counted: Instant,
    tips_stale: bool,
}

impl<S: ChainReader + ChainWriter> Actor<'_, S> {
    /// Publishes the best-chain changes behind `result` (events, then the tip) before the
    /// caller sees it, so an answered submitter finds the new tip already published.
    fn settle<T>(&mut self, result: T) -> T {
        let events = self.chain.take_events();
        if !events.is_empty() {
            self.subscribers
                .retain(|subscriber| events.iter().all(|event| subscriber.send(*event).is_ok()));
            self.tip.publish(TipInfo::of(&self.chain));
        }
        self.tips_stale = true;
        if self.tips_counted.elapsed() >= TIP_RECOUNT_INTERVAL {
            self.recount();
        } else {
            let mut summary = self.summary.get();
            summary.best_header = self.chain.best_header();
            summary.orphans = self.chain.orphan_count();
            self.summary.set(summary);
        }
        result
    }

    /// Publishes a full summary, tips counted now.
    fn recount(&mut self) {
        self.summary.set(summary_of(&self.chain));
        self.tips_counted = Instant::now();
        self.tips_stale = false;
    }

    /// The next command, or `None` when the actor should stop; while the tip counts are out of
    /// date, waits no longer than their next recount is due (and recounts then).
    fn next_command(&mut self, commands: &Receiver<Command>) -> Option<Command> {
        loop {
            if !self.tips_stale {
                return commands.recv().ok();
            }
            let due = TIP_RECOUNT_INTERVAL.saturating_sub(self.tips_counted.elapsed());
            match commands.recv_timeout(due) {
                Ok(command) => return Some(command),
                Err(RecvTimeoutError::Timeout) => self.recount(),
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

/// The actor loop. A storage failure stops it (every later command gets
/// [`ChainError::Stopped`]); the store holds the state of the last complete commit.
fn run<S: ChainReader + ChainWriter>(
    chain: Chain<S>,
    commands: &Receiver<Command>,
    tip: &TipWatch,
    summary: &SummaryCell,
    clock: &Clock,
) -> Result<(), StoreError> {
    let mut actor = Actor {
        chain,
        subscribers: Vec::new(),
        tip,
        summary,
        tips_counted: Instant::now(),
        tips_stale: false,
    };
    while let Some(command) = actor.next_command(commands) {
        let fatal = match command {
            Command::SubmitBlock(block, reply) => {
                let result = actor.chain.process_block(*block, clock());
                answer(actor.settle(result), reply)
            }
            Command::SubmitUnrequestedBlock(block, reply) => {
                let result = actor.chain.process_unrequested_block(*block, clock());
                answer(actor.settle(result), reply)
            }
            Command::SubmitHeader(header, reply) => {
                let result = actor.chain.process_header(header, clock());
                answer(actor.settle(result), reply)
            }
            Command::Invalidate(hash, reply) => {
                let result = actor.chain.invalidate_block(hash);
                answer(actor.settle(result), reply)
            }
            Command::Reconsider(hash, reply) => {
                let result = actor.chain.reconsider_block(hash);
                answer(actor.settle(result), reply)
            }
            Command::ChainTips(reply) => {
                reply(actor.chain.chain_tips());
                None
            }
            Command::DownloadPlan {
                peers,
                limit,
                reply,
            } => {
                reply(actor.chain.download_plan(&peers, limit));
                None
            }
            Command::Subscribe(sender) => {
                actor.subscribers.push(sender);
                None
            }
            Command::Shutdown => break,
        };
        if let Some(failure) = fatal {
            error!(error = %failure, "chain store failed; the chain actor stops");
            return Err(failure);
        }
    }
    let chain = &actor.chain;
    info!(tip = %chain.tip_hash(), height = chain.tip_height(), "chain actor stopped");
    Ok(())
}

/// Sends `result` to `reply`; returns a storage failure, which must stop the actor.
fn answer<T>(
    result: Result<T, ChainError>,
    reply: Reply<Result<T, ChainError>>,
) -> Option<StoreError> {
    match result {
        Err(ChainError::Store(failure)) => {
            reply(Err(ChainError::Store(failure.clone())));
            Some(failure)
        }
        other => {
            reply(other);
            None
        }
    }
}
