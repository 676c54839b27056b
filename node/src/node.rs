//! A running node: the chain actor owns the store; a follower thread keeps the mempool in step
//! with every connect and disconnect; the network's syncer feeds blocks to the chain, and
//! gossiped transactions are validated against the mempool here before they are forwarded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quarry_chain::actor::{self, ChainService};
use quarry_chain::{
    Acceptance, Block, BlockHash, Chain, ChainError, ChainEvent, ChainHandle, ChainParams,
    ChainReadHandle, ChainReader, OutputKey, RocksStore, StoreError, TipInfo, Transaction,
};
use quarry_mempool::{Accepted, BlockChange, Mempool, MempoolConfig, MempoolError, TipContext};
use quarry_miner::{GenerateError, Miner, MinerConfig, MinerError};
use quarry_network::{
    Ban, Client, Keypair, Misbehaviour, Multiaddr, NetworkConfig, NetworkError, NetworkEvent,
    NetworkService, SyncStatus, Validation,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::index::{AddressIndex, CatchUp};
use crate::metrics::{Metrics, ReorgTracker};

/// How long a miner works on one template before taking a fresh one (new transactions, time).
const TEMPLATE_REFRESH: Duration = Duration::from_secs(5);
/// Least time between two log lines of the background miner.
const MINING_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How often peers added with `addnode` are redialled while disconnected.
const ADDED_NODE_REDIAL: Duration = Duration::from_secs(10);
/// The ban list, kept across restarts.
const BANLIST_FILE: &str = "banlist.json";

/// The node's configuration: one section per component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Peer-to-peer settings.
    pub network: NetworkConfig,
    /// Transaction pool policy.
    pub mempool: MempoolConfig,
    /// Mining threads (0: one per CPU).
    pub miner_threads: usize,
    /// Hashes per second the miner may do at most (none: as fast as it can).
    pub max_hash_rate: Option<u64>,
    /// Wait for the disk (fsync) at every chain commit, so a power loss loses no block the
    /// node accepted. Off by default: commits are atomic and a crash of the process loses
    /// nothing; a power loss may lose the last few, and the node reopens at an earlier tip.
    pub sync_writes: bool,
}

/// Why the node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The chain store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain refused something.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The network failed.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The mempool refused a transaction.
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// The miner could not start.
    #[error(transparent)]
    Miner(#[from] MinerError),
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    /// A mined block was not taken by the chain.
    #[error("mined block {hash} was not accepted: {acceptance:?}")]
    MinedBlockRefused {
        /// The block.
        hash: BlockHash,
        /// What the chain said.
        acceptance: Acceptance,
    },
    /// The template's difficulty bits do not decode.
    #[error("cannot mine: the next block's bits do not decode to a target")]
    BadTemplate,
    /// A file of the data directory could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A background task ended abnormally.
    #[error("a node task failed: {0}")]
    Task(String),
}

type Store = Arc<RocksStore>;

/// The block the mempool was last brought in step with, so that a template is never built
/// from a pool that has not yet seen the tip's block (it would still hold its transactions).
#[derive(Debug)]
struct PoolTip {
    hash: Mutex<BlockHash>,
    changed: std::sync::Condvar,
}

impl PoolTip {
    fn new(hash: BlockHash) -> Self {
        Self {
            hash: Mutex::new(hash),
            changed: std::sync::Condvar::new(),
        }
    }

    fn set(&self, hash: BlockHash) {
        *lock(&self.hash) = hash;
        self.changed.notify_all();
    }

    /// Waits until the pool is in step with `tip`, or with the chain's tip of the moment
    /// (`current`) if the chain has moved on meanwhile; `false` after `timeout`.
    fn wait_for(&self, tip: BlockHash, current: impl Fn() -> BlockHash, timeout: Duration) -> bool {
        let guard = lock(&self.hash);
        let behind = |hash: &mut BlockHash| *hash != tip && *hash != current();
        let (mut guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, behind)
            .unwrap_or_else(PoisonError::into_inner);
        !behind(&mut guard)
    }
}

/// How long a template waits for the mempool to follow a new tip.
const POOL_FOLLOW_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds block templates from the mempool on the best tip and hands mined blocks to the chain:
/// what `generate` and the background miner share.
#[derive(Clone, Debug)]
struct BlockFactory {
    params: ChainParams,
    mempool: Arc<Mutex<Mempool>>,
    pool_tip: Arc<PoolTip>,
    reader: ChainReadHandle<Store>,
    handle: ChainHandle,
}

impl BlockFactory {
    fn template(&self) -> quarry_mempool::BlockTemplate {
        let tip = self.reader.tip();
        if !self
            .pool_tip
            .wait_for(tip.hash, || self.reader.tip().hash, POOL_FOLLOW_TIMEOUT)
        {
            warn!(tip = %tip.hash, "the mempool lags the tip; the template may hold confirmed transactions");
        }
        let subsidy = self.params.block_subsidy(tip.next.height);
        lock(&self.mempool).block_template(&tip.next, subsidy, unix_now())
    }

    fn submit(&self, block: Block) -> Result<(), NodeError> {
        let hash = block.block_hash();
        match self.handle.submit_block(block)? {
            Acceptance::Accepted => Ok(()),
            acceptance => Err(NodeError::MinedBlockRefused { hash, acceptance }),
        }
    }
}

/// The background miner started by `--mine` or `setgenerate`.
#[derive(Debug)]
struct MiningJob {
    payout: OutputKey,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl MiningJob {
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.thread.join().is_err() {
            warn!("the miner thread panicked");
        }
        info!("mining stopped");
    }
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    params: ChainParams,
    data_dir: PathBuf,
    chain: ChainService<Store>,
    mempool: Arc<Mutex<Mempool>>,
    pool_tip: Arc<PoolTip>,
    network: NetworkService,
    miner: Mutex<Arc<Miner>>,
    max_hash_rate: Option<u64>,
    mining: Mutex<Option<MiningJob>>,
    index: Arc<AddressIndex>,
    metrics: Arc<Metrics>,
    added_nodes: Arc<Mutex<BTreeSet<Multiaddr>>>,
    started: Instant,
    follower: std::thread::JoinHandle<()>,
    indexer: std::thread::JoinHandle<()>,
    transactions: tokio::task::JoinHandle<()>,
    redial: tokio::task::JoinHandle<()>,
    expiry: tokio::task::JoinHandle<()>,
    /// Set once the node is asked to stop, so long calls such as `generate` end early.
    stopping: Arc<AtomicBool>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves the value consistent enough to keep serving: every
    // mutation is completed before the next check.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn new_miner(threads: usize, max_hash_rate: Option<u64>) -> Result<Arc<Miner>, NodeError> {
    Ok(Arc::new(Miner::new(MinerConfig {
        threads,
        max_hash_rate,
        ..MinerConfig::default()
    })?))
}

fn tip_context(params: &ChainParams, tip: &TipInfo) -> TipContext {
    TipContext {
        height: tip.height,
        genesis: params.genesis_hash(),
        coinbase_maturity: params.coinbase_maturity(),
    }
}

impl Node {
    /// Opens (or creates) the chain in `data_dir` and starts every component on the current
    /// tokio runtime. The node's peer identity is `keypair`.
    pub async fn start(
        params: ChainParams,
        data_dir: &Path,
        config: NodeConfig,
        keypair: Keypair,
    ) -> Result<Self, NodeError> {
        let path = data_dir.join("chain");
        let chain_params = params.clone();
        let chain = tokio::task::spawn_blocking(move || {
            let store = Arc::new(RocksStore::open(&path)?.with_synced_writes(config.sync_writes));
            let chain = Chain::open(chain_params, store)?;
            actor::spawn(chain, actor::system_clock()).map_err(NodeError::Thread)
        })
        .await
        .map_err(|join| NodeError::Task(join.to_string()))??;
        let mempool = Arc::new(Mutex::new(Mempool::new(config.mempool.clone())));
        let pool_tip = Arc::new(PoolTip::new(chain.reader.tip().hash));
        let follower = spawn_follower(
            params.clone(),
            chain.handle.subscribe()?,
            chain.reader.clone(),
            Arc::clone(&mempool),
            Arc::clone(&pool_tip),
        )?;
        let index_genesis = params.genesis_hash();
        let index_path = data_dir.join("indexes");
        let index = Arc::new(
            tokio::task::spawn_blocking(move || AddressIndex::open(&index_path, index_genesis))
                .await
                .map_err(|join| NodeError::Task(join.to_string()))??,
        );
        let metrics = Arc::new(Metrics::new());
        let indexer = spawn_indexer(
            chain.handle.subscribe()?,
            chain.reader.clone(),
            Arc::clone(&index),
            Arc::clone(&metrics),
        )?;
        let (node_events, events) = mpsc::channel(1_024);
        let network = quarry_network::start(
            config.network.clone(),
            keypair,
            &params,
            chain.handle.clone(),
            chain.reader.clone(),
            Some(node_events),
        )?;
        let transactions = tokio::spawn(validate_transactions(
            events,
            network.client.clone(),
            params.clone(),
            chain.reader.clone(),
            Arc::clone(&mempool),
        ));
        let miner = new_miner(config.miner_threads, config.max_hash_rate)?;
        let added_nodes = Arc::new(Mutex::new(BTreeSet::new()));
        let redial = tokio::spawn(redial_added_nodes(
            network.client.clone(),
            Arc::clone(&added_nodes),
        ));
        let expiry = tokio::spawn(expire_mempool(
            Arc::clone(&mempool),
            expiry_interval(&config.mempool),
        ));
        restore_bans(&network.client, &data_dir.join(BANLIST_FILE))?;
        info!(network = params.name(), peer = %network.client.local_peer_id(), "node started");
        Ok(Self {
            params,
            data_dir: data_dir.to_path_buf(),
            chain,
            mempool,
            pool_tip,
            network,
            miner: Mutex::new(miner),
            max_hash_rate: config.max_hash_rate,
            mining: Mutex::new(None),
            index,
            metrics,
            added_nodes,
            started: Instant::now(),
            follower,
            indexer,
            transactions,
            redial,
            expiry,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// When the node started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The address and transaction index.
    pub fn index(&self) -> &AddressIndex {
        &self.index
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The miner used by `generate` and the background miner.
    pub fn miner(&self) -> Arc<Miner> {
        Arc::clone(&lock(&self.miner))
    }

    fn block_factory(&self) -> BlockFactory {
        BlockFactory {
            params: self.params.clone(),
            mempool: Arc::clone(&self.mempool),
            pool_tip: Arc::clone(&self.pool_tip),
            reader: self.chain.reader.clone(),
            handle: self.chain.handle.clone(),
        }
    }

    /// A template for the next block: the best tip and the mempool's best transactions (once
    /// the mempool has followed that tip).
    pub fn block_template(&self) -> quarry_mempool::BlockTemplate {
        self.block_factory().template()
    }

    /// Starts mining on the best tip in the background, paying `payout`, with `threads`
    /// threads (`None`: as configured; 0: one per CPU). A running miner is replaced.
    pub fn start_mining(&self, payout: OutputKey, threads: Option<usize>) -> Result<(), NodeError> {
        self.stop_mining();
        if let Some(threads) = threads {
            if threads != self.miner().threads() || threads == 0 {
                *lock(&self.miner) = new_miner(threads, self.max_hash_rate)?;
            }
        }
        let miner = self.miner();
        let factory = self.block_factory();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("miner".into())
            .spawn(move || mine_until_stopped(&miner, &factory, payout, &stopped))
            .map_err(NodeError::Thread)?;
        info!(threads = self.miner().threads(), "mining started");
        *lock(&self.mining) = Some(MiningJob {
            payout,
            stop,
            thread,
        });
        Ok(())
    }

    /// Stops the background miner, if any, and waits for it.
    pub fn stop_mining(&self) {
        let job = lock(&self.mining).take();
        if let Some(job) = job {
            job.stop();
        }
    }

    /// Where the background miner pays, if it runs.
    pub fn mining_payout(&self) -> Option<OutputKey> {
        lock(&self.mining).as_ref().map(|job| job.payout)
    }

    /// Adds `address` to the peers kept connected (redialled while disconnected) and dials it;
    /// `false` if it was there already.
    pub fn add_node(&self, address: Multiaddr) -> bool {
        let added = lock(&self.added_nodes).insert(address.clone());
        if added {
            spawn_dial(self.network.client.clone(), address);
        }
        added
    }

    /// Removes `address` from the peers kept connected; `false` if it was not there.
    pub fn remove_added_node(&self, address: &Multiaddr) -> bool {
        lock(&self.added_nodes).remove(address)
    }

    /// The peers kept connected.
    pub fn added_nodes(&self) -> Vec<Multiaddr> {
        lock(&self.added_nodes).iter().cloned().collect()
    }

    /// Writes the ban list to the data directory, so bans survive a restart.
    pub async fn save_bans(&self) -> Result<(), NodeError> {
        let bans = self.network.client.bans().await?;
        let path = self.data_dir.join(BANLIST_FILE);
        tokio::task::spawn_blocking(move || write_bans(&path, &bans))
            .await
            .map_err(|join| NodeError::Task(join.to_string()))?
    }

    /// The network parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The network client (peers, bans, dialling).
    pub fn client(&self) -> &Client {
        &self.network.client
    }

    /// Where block sync stands.
    pub fn sync_status(&self) -> watch::Receiver<SyncStatus> {
        self.network.status.clone()
    }

    /// The chain actor.
    pub fn chain(&self) -> &ChainHandle {
        &self.chain.handle
    }

    /// Reads of the chain store.
    pub fn reader(&self) -> &ChainReadHandle<Store> {
        &self.chain.reader
    }

    /// The best tip.
    pub fn tip(&self) -> TipInfo {
        self.chain.reader.tip()
    }

    /// Runs `read` on the mempool.
    pub fn with_mempool<T>(&self, read: impl FnOnce(&Mempool) -> T) -> T {
        read(&lock(&self.mempool))
    }

    /// Validates `tx` into the mempool and gossips it.
    pub async fn submit_transaction(&self, tx: Transaction) -> Result<Accepted, NodeError> {
        let mempool = Arc::clone(&self.mempool);
        let reader = self.chain.reader.clone();
        let params = self.params.clone();
        let announced = tx.clone();
        let accepted = tokio::task::spawn_blocking(move || {
            let tip = tip_context(&params, &reader.tip());
            lock(&mempool).accept(tx, reader.store(), &tip, unix_now())
        })
        .await
        .map_err(|join| NodeError::Task(join.to_string()))??;
        if let Err(error) = self.network.client.publish_transaction(&announced).await {
            // Alone on the network, or the same bytes were gossiped already: the pool has it.
            debug!(txid = %accepted.txid, %error, "transaction not gossiped");
        }
        Ok(accepted)
    }

    /// Mines `count` blocks on the best tip, one after the other, with the mempool's best
    /// transactions, paying `payout`; each goes through the chain actor and is announced to
    /// peers. Returns their hashes once the mempool has followed the last one.
    pub async fn generate(
        &self,
        count: usize,
        payout: OutputKey,
    ) -> Result<Vec<BlockHash>, NodeError> {
        self.generate_within(count, payout, u64::MAX).await
    }

    /// [`Node::generate`] trying at most `max_tries` nonces in all (Bitcoin Core's `maxtries`):
    /// returns the blocks found when they run out, or when the node is asked to stop.
    pub async fn generate_within(
        &self,
        count: usize,
        payout: OutputKey,
        max_tries: u64,
    ) -> Result<Vec<BlockHash>, NodeError> {
        let miner = self.miner();
        let factory = self.block_factory();
        let stopping = Arc::clone(&self.stopping);
        tokio::task::spawn_blocking(move || {
            let hashes = miner
                .generate(
                    count,
                    payout,
                    max_tries,
                    &|| stopping.load(Ordering::Relaxed),
                    || factory.template(),
                    |block| factory.submit(block),
                )
                .map_err(|error| match error {
                    GenerateError::Submit(error) => error,
                    _ => NodeError::BadTemplate,
                })?;
            // As with Bitcoin Core, the mempool has let go of the mined transactions on return
            // (it follows the best tip, which a block of a lost race is not).
            if !hashes.is_empty() {
                let current = || factory.reader.tip().hash;
                factory
                    .pool_tip
                    .wait_for(current(), current, POOL_FOLLOW_TIMEOUT);
            }
            Ok(hashes)
        })
        .await
        .map_err(|join| NodeError::Task(join.to_string()))?
    }

    /// Ends long calls in progress (`generate`) and the background miner, so the node can be
    /// shut down without waiting for them.
    pub fn request_stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.stop_mining();
    }

    /// Stops mining, saves the ban list, stops the network, the chain actor and the helpers,
    /// and waits for them: the store is closed when this returns.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let joined = |join: tokio::task::JoinError| NodeError::Task(join.to_string());
        let job = lock(&self.mining).take();
        if let Some(job) = job {
            tokio::task::spawn_blocking(move || job.stop())
                .await
                .map_err(joined)?;
        }
        if let Err(error) = self.save_bans().await {
            warn!(%error, "cannot save the ban list");
        }
        self.redial.abort();
        self.expiry.abort();
        self.network.client.shutdown();
        self.network.event_loop.await.map_err(joined)?;
        self.network.syncer.await.map_err(joined)?;
        self.transactions.await.map_err(joined)?;
        self.chain.handle.shutdown();
        let (thread, follower, indexer) = (self.chain.thread, self.follower, self.indexer);
        tokio::task::spawn_blocking(move || {
            let stopped = thread
                .join()
                .map_err(|_| NodeError::Task("the chain thread panicked".into()))?;
            // The follower ends when the chain actor drops its event channel.
            follower
                .join()
                .map_err(|_| NodeError::Task("the mempool follower panicked".into()))?;
            indexer
                .join()
                .map_err(|_| NodeError::Task("the indexer panicked".into()))?;
            stopped.map_err(NodeError::from)
        })
        .await
        .map_err(joined)?
    }
}

/// Keeps the mempool in step with the chain: each batch of connects and disconnects is applied
/// with the blocks read from the store.
fn spawn_follower(
    params: ChainParams,
    events: std::sync::mpsc::Receiver<ChainEvent>,
    reader: ChainReadHandle<Store>,
    mempool: Arc<Mutex<Mempool>>,
    pool_tip: Arc<PoolTip>,
) -> Result<std::thread::JoinHandle<()>, NodeError> {
    std::thread::Builder::new()
        .name("mempool-follower".into())
        .spawn(move || {
            while let Ok(first) = events.recv() {
                let batch: Vec<ChainEvent> =
                    std::iter::once(first).chain(events.try_iter()).collect();
                let mut blocks = Vec::with_capacity(batch.len());
                for event in &batch {
                    let (ChainEvent::Connected { hash, .. }
                    | ChainEvent::Disconnected { hash, .. }) = event;
                    match reader.store().block(hash) {
                        Ok(Some(block)) => {
                            blocks.push((matches!(event, ChainEvent::Connected { .. }), block))
                        }
                        Ok(None) => warn!(%hash, "connected block missing from the store"),
                        Err(error) => warn!(%hash, %error, "cannot read a block for the mempool"),
                    }
                }
                let changes = blocks.iter().map(|(connected, block)| {
                    if *connected {
                        BlockChange::Connected(block)
                    } else {
                        BlockChange::Disconnected(block)
                    }
                });
                let tip = tip_context(&params, &reader.tip());
                match lock(&mempool).update(changes, reader.store(), &tip, unix_now()) {
                    Ok(update) if !update.readded.is_empty() => {
                        info!(
                            readded = update.readded.len(),
                            "transactions of disconnected blocks back in the mempool"
                        );
                    }
                    Ok(_) => {}
                    Err(error) => warn!(%error, "mempool could not follow the chain"),
                }
                // The tip the pool now reflects: the last connected block, or the parent of the
                // last disconnected one.
                let followed = match blocks.last() {
                    Some((true, block)) => block.block_hash(),
                    Some((false, block)) => block.header.prev_blockhash,
                    None => reader.tip().hash,
                };
                pool_tip.set(followed);
            }
        })
        .map_err(NodeError::Thread)
}

/// Validates gossiped transactions against the mempool and reports the verdict, so that only
/// valid ones are forwarded and senders of invalid ones are penalised.
async fn validate_transactions(
    mut events: mpsc::Receiver<NetworkEvent>,
    client: Client,
    params: ChainParams,
    reader: ChainReadHandle<Store>,
    mempool: Arc<Mutex<Mempool>>,
) {
    while let Some(event) = events.recv().await {
        let NetworkEvent::Transaction {
            message_id,
            source,
            transaction,
        } = event
        else {
            continue;
        };
        let mempool = Arc::clone(&mempool);
        let reader = reader.clone();
        let params = params.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            let tip = tip_context(&params, &reader.tip());
            let txid = transaction.txid();
            match lock(&mempool).accept(*transaction, reader.store(), &tip, unix_now()) {
                Ok(_) => Validation::Accept,
                Err(error @ (MempoolError::Invalid(_) | MempoolError::Coinbase)) => {
                    warn!(%txid, peer = %source, %error, "invalid gossiped transaction");
                    Validation::Reject(Misbehaviour::InvalidTransaction)
                }
                Err(error) => {
                    debug!(%txid, %error, "gossiped transaction not taken");
                    Validation::Ignore
                }
            }
        })
        .await
        .unwrap_or(Validation::Ignore);
        if client.validate(message_id, source, verdict).is_err() {
            break;
        }
    }
}

/// Mines block after block on the best tip until `stop` is set; a template is dropped as soon
/// as the tip moves, and refreshed every few seconds to take in new transactions.
fn mine_until_stopped(miner: &Miner, factory: &BlockFactory, payout: OutputKey, stop: &AtomicBool) {
    let watch = factory.reader.tip_watch();
    // Blocks found since the last log line: a fast miner (regtest) is summarised, a slow one
    // has each block logged.
    let (mut unreported, mut reported_at) = (0u64, None::<Instant>);
    while !stop.load(Ordering::Relaxed) {
        let seen = watch.version();
        let template = factory.template();
        let started = Instant::now();
        let is_stale = || {
            stop.load(Ordering::Relaxed)
                || watch.version() != seen
                || started.elapsed() > TEMPLATE_REFRESH
        };
        let Some(block) = miner.mine(&template, payout, &is_stale) else {
            if template.bits.to_target().is_none() {
                warn!(bits = %template.bits, "cannot mine: the next block's bits do not decode");
                return;
            }
            continue;
        };
        let (hash, height) = (block.block_hash(), template.height);
        match factory.submit(block) {
            Ok(()) => {
                unreported += 1;
                if reported_at.is_none_or(|at| at.elapsed() >= MINING_LOG_INTERVAL) {
                    info!(%hash, height, blocks = unreported, "mined {unreported} block(s) since the last report");
                    (unreported, reported_at) = (0, Some(Instant::now()));
                } else {
                    debug!(%hash, height, "mined a block");
                }
            }
            Err(_) if factory.reader.store_failure().is_some() => {
                // Nothing more can be stored: mining on would only spin.
                error!("the chain store failed: mining stops");
                return;
            }
            Err(error) => warn!(%hash, %error, "mined block not accepted"),
        }
    }
}

/// Keeps the index in step with the chain, and counts reorganisations and block delays.
fn spawn_indexer(
    events: std::sync::mpsc::Receiver<ChainEvent>,
    reader: ChainReadHandle<Store>,
    index: Arc<AddressIndex>,
    metrics: Arc<Metrics>,
) -> Result<std::thread::JoinHandle<()>, NodeError> {
    let catch_up = move |store: &Store| match index.catch_up(store) {
        Ok(CatchUp {
            rebuilt: Some(why),
            connected,
            ..
        }) => {
            warn!(%why, blocks = connected, "the address index was ahead of the chain store: rebuilt from genesis");
        }
        Ok(progress) if progress.connected > 1_000 => {
            info!(blocks = progress.connected, "address index caught up");
        }
        Ok(_) => {}
        Err(error) => warn!(%error, "the address index cannot follow the chain"),
    };
    std::thread::Builder::new()
        .name("indexer".into())
        .spawn(move || {
            let store = reader.store();
            catch_up(store);
            let mut reorgs = ReorgTracker::default();
            while let Ok(first) = events.recv() {
                for event in std::iter::once(first).chain(events.try_iter()) {
                    match event {
                        ChainEvent::Connected { hash, .. } => {
                            metrics.blocks_connected.inc();
                            if let Some(depth) = reorgs.connected() {
                                metrics.reorgs.inc();
                                metrics.reorg_depth.observe(depth as f64);
                                metrics.last_reorg_depth.set(depth as i64);
                            }
                            if let Ok(Some(entry)) = store.index_entry(&hash) {
                                observe_block_delay(&metrics, entry.header.time);
                            }
                        }
                        ChainEvent::Disconnected { .. } => reorgs.disconnected(),
                    }
                }
                catch_up(store);
            }
        })
        .map_err(NodeError::Thread)
}

/// Records how long after its timestamp a block was connected; blocks older than two hours
/// (a sync, not propagation) are left out.
fn observe_block_delay(metrics: &Metrics, block_time: u32) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64());
    let delay = (now - f64::from(block_time)).max(0.0);
    if delay < 7_200.0 {
        metrics.block_delay.observe(delay);
    }
}

/// How often the mempool is swept for expired transactions and orphans: every minute, or
/// more often when an expiry is shorter (a local test network's, say).
fn expiry_interval(config: &MempoolConfig) -> Duration {
    let shortest = config.expiry_secs.min(config.orphan_expiry_secs);
    Duration::from_secs((shortest / 2).clamp(1, 60))
}

/// Drops transactions and orphans past their expiry (Bitcoin Core's `-mempoolexpiry`), with
/// their descendants.
async fn expire_mempool(mempool: Arc<Mutex<Mempool>>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let mempool = Arc::clone(&mempool);
        let expired = tokio::task::spawn_blocking(move || lock(&mempool).expire(unix_now())).await;
        if let Ok(expired) = expired {
            if !expired.is_empty() {
                info!(
                    transactions = expired.len(),
                    "expired transactions left the mempool"
                );
            }
        }
    }
}

/// Redials every peer added with `addnode` that is not connected.
async fn redial_added_nodes(client: Client, added: Arc<Mutex<BTreeSet<Multiaddr>>>) {
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
fn same_endpoint(a: &Multiaddr, b: &Multiaddr) -> bool {
    let endpoint = |address: &Multiaddr| {
        address
            .iter()
            .filter(|part| !matches!(part, quarry_network::Protocol::P2p(_)))
            .collect::<Multiaddr>()
    };
    endpoint(a) == endpoint(b)
}

fn spawn_dial(client: Client, address: Multiaddr) {
    tokio::spawn(async move {
        match client.dial(address.clone()).await {
            Ok(peer) => debug!(%address, %peer, "connected to an added node"),
            Err(error) => debug!(%address, %error, "cannot connect to an added node"),
        }
    });
}

/// Reapplies the bans saved in `path` that have not expired.
fn restore_bans(client: &Client, path: &Path) -> Result<(), NodeError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(NodeError::File {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    // A damaged ban list is not worth refusing to start over: the good entries are kept, and
    // peers behind the bad ones get banned again if they misbehave again.
    let (bans, problems) = parse_bans(&bytes);
    for problem in problems {
        warn!(path = %path.display(), "ban list: {problem}");
    }
    let now = unix_now();
    for ban in bans.iter().filter(|ban| ban.until > now) {
        client.restore_ban(*ban)?;
    }
    Ok(())
}

/// The bans in a ban list file's `bytes`, and what was wrong with the entries left out.
fn parse_bans(bytes: &[u8]) -> (Vec<Ban>, Vec<String>) {
    let text = String::from_utf8_lossy(bytes);
    let entries: Vec<serde_json::Value> = match serde_json::from_str(&text) {
        Ok(entries) => entries,
        Err(error) => {
            return (
                Vec::new(),
                vec![format!("not a JSON list ({error}); ignored")],
            )
        }
    };
    let mut problems = Vec::new();
    let bans = entries
        .into_iter()
        .enumerate()
        .filter_map(|(index, entry)| match serde_json::from_value(entry) {
            Ok(ban) => Some(ban),
            Err(error) => {
                problems.push(format!("entry {} skipped: {error}", index + 1));
                None
            }
        })
        .collect();
    (bans, problems)
}

fn write_bans(path: &Path, bans: &[Ban]) -> Result<(), NodeError> {
    let file_error = |source| NodeError::File {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_string_pretty(bans).expect("bans serialize");
    let temporary = path.with_extension("json.new");
    std::fs::write(&temporary, text).map_err(file_error)?;
    std::fs::rename(&temporary, path).map_err(file_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_ban_list_keeps_its_good_entries() {
        let peer = quarry_network::PeerId::random();
        let good = format!(r#"{{"peer":"{peer}","until":4000000000,"reason":"Manual"}}"#);
        let mut bytes =
            format!(r#"[{good}, {{"peer":"not a peer","until":1,"reason":"Manual"}}, {{"peer":""#)
                .into_bytes();
        // Invalid UTF-8 inside the third entry.
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(br#"","until":1,"reason":"Manual"}]"#);
        let (bans, problems) = parse_bans(&bytes);
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].peer, peer);
        assert_eq!(
            bans[0].address, None,
            "lists written before addresses were kept load"
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("entry 2 skipped"), "{problems:?}");

        let (bans, problems) = parse_bans(b"\xff\xfe not json");
        assert!(bans.is_empty());
        assert!(problems[0].contains("not a JSON list"), "{problems:?}");
    }
}
