//! A running node: the chain actor owns the store; a follower thread keeps the mempool in step
//! with every connect and disconnect; the network's syncer feeds blocks to the chain, and
//! gossiped transactions are validated against the mempool here before they are forwarded.

mod bans;
mod expiry;
mod follower;
mod indexer;
mod mining;
mod peers;
mod relay;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use quarry_chain::clock::unix_now;

use quarry_chain::actor::{self, ChainService};
use quarry_chain::{
    Acceptance, BlockHash, Chain, ChainError, ChainHandle, ChainParams, ChainReadHandle, OutputKey,
    PowMode, StoreError, TipInfo, Transaction,
};
use quarry_mempool::{Accepted, Mempool, MempoolConfig, MempoolError, TipContext};
use quarry_miner::{GenerateError, Miner, MinerConfig, MinerError};
use quarry_network::{
    Client, Keypair, Multiaddr, NetworkConfig, NetworkError, NetworkService, SyncStatus,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::index::AddressIndex;
use crate::metrics::Metrics;

use bans::{restore_bans, write_bans, BANLIST_FILE};
use expiry::{expire_mempool, expiry_interval};
use follower::spawn_follower;
use indexer::spawn_indexer;
use mining::{mine_until_stopped, BlockFactory, MiningJob, PoolTip, POOL_FOLLOW_TIMEOUT};
use peers::{redial_added_nodes, spawn_dial};
use relay::validate_transactions;

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
    /// Hashes per second the background miner may do at most (none: as fast as it can);
    /// `generate` always runs at full speed. On a network with simulated proof of work, the
    /// background miner's virtual hash rate (required to mine there).
    pub max_hash_rate: Option<u64>,
    /// Seed of the simulated miner's waits (simulated proof of work only; random when absent).
    pub mining_seed: Option<u64>,
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
    /// Background mining on a simulated-work network was asked for without a rate.
    #[error("this network's proof of work is simulated: give the miner a virtual hash rate with --max-hash-rate")]
    NoVirtualHashRate,
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

type Store = Arc<quarry_store::RocksStore>;

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
    miner_config: MinerConfig,
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves the value consistent enough to keep serving: every
    // mutation is completed before the next check.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn new_miner(config: MinerConfig) -> Result<Arc<Miner>, NodeError> {
    Ok(Arc::new(Miner::new(config)?))
}

/// The miner's settings: on a network with simulated proof of work, a simulated miner seeded
/// with `config.mining_seed` (or at random).
fn miner_config(config: &NodeConfig, params: &ChainParams) -> MinerConfig {
    MinerConfig {
        threads: config.miner_threads,
        max_hash_rate: config.max_hash_rate,
        simulation: (params.pow_mode() == PowMode::Simulated)
            .then(|| config.mining_seed.unwrap_or_else(rand::random)),
        ..MinerConfig::default()
    }
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
            let store = Arc::new(
                quarry_store::RocksStore::open(&path)?.with_synced_writes(config.sync_writes),
            );
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
        let miner_config = miner_config(&config, &params);
        let miner = new_miner(miner_config)?;
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
            miner_config,
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
        if self.miner_config.simulation.is_some() && self.miner_config.max_hash_rate.is_none() {
            return Err(NodeError::NoVirtualHashRate);
        }
        if let Some(threads) = threads {
            if threads != self.miner().threads() || threads == 0 {
                *lock(&self.miner) = new_miner(MinerConfig {
                    threads,
                    ..self.miner_config
                })?;
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
    /// returns the blocks found when they run out, or when the node is asked to stop. It
    /// mines at full speed whatever the background miner's cap: blocks on demand (funding a
    /// testnet, say) should not wait on a rate meant to set a miner's share.
    pub async fn generate_within(
        &self,
        count: usize,
        payout: OutputKey,
        max_tries: u64,
    ) -> Result<Vec<BlockHash>, NodeError> {
        let capped = self.miner_config.max_hash_rate.is_some();
        let miner = if capped && self.miner_config.simulation.is_none() {
            new_miner(MinerConfig {
                threads: self.miner().threads(),
                max_hash_rate: None,
                ..self.miner_config
            })?
        } else {
            self.miner()
        };
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

    /// Whether the node is shutting down: long calls end early.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
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
