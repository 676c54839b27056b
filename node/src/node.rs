//! A running node: the chain actor owns the store; a follower thread keeps the mempool in step
//! with every connect and disconnect; the network's syncer feeds blocks to the chain, and
//! gossiped transactions are validated against the mempool here before they are forwarded.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use quarry_chain::actor::{self, ChainService};
use quarry_chain::{
    Acceptance, Block, BlockHash, Chain, ChainError, ChainEvent, ChainHandle, ChainParams,
    ChainReadHandle, ChainReader, OutputKey, RocksStore, StoreError, TipInfo, Transaction,
};
use quarry_mempool::{Accepted, BlockChange, Mempool, MempoolConfig, MempoolError, TipContext};
use quarry_miner::{GenerateError, Miner, MinerConfig, MinerError};
use quarry_network::{
    Client, Keypair, Misbehaviour, NetworkConfig, NetworkError, NetworkEvent, NetworkService,
    SyncStatus, Validation,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

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
    /// A background task ended abnormally.
    #[error("a node task failed: {0}")]
    Task(String),
}

type Store = Arc<RocksStore>;

/// A running node.
#[derive(Debug)]
pub struct Node {
    params: ChainParams,
    chain: ChainService<Store>,
    mempool: Arc<Mutex<Mempool>>,
    network: NetworkService,
    miner: Arc<Miner>,
    follower: std::thread::JoinHandle<()>,
    transactions: tokio::task::JoinHandle<()>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn lock(mempool: &Mutex<Mempool>) -> MutexGuard<'_, Mempool> {
    // A panic while holding the lock leaves the pool consistent enough to keep serving: every
    // mutation is completed before the next check.
    mempool.lock().unwrap_or_else(PoisonError::into_inner)
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
            let store = Arc::new(RocksStore::open(&path)?);
            let chain = Chain::open(chain_params, store)?;
            actor::spawn(chain, actor::system_clock()).map_err(NodeError::Thread)
        })
        .await
        .map_err(|join| NodeError::Task(join.to_string()))??;
        let mempool = Arc::new(Mutex::new(Mempool::new(config.mempool.clone())));
        let follower = spawn_follower(
            params.clone(),
            chain.handle.subscribe()?,
            chain.reader.clone(),
            Arc::clone(&mempool),
        )?;
        let (node_events, events) = mpsc::channel(1_024);
        let network = quarry_network::start(
            config.network.clone(),
            keypair,
            params.genesis_hash(),
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
        let miner = Arc::new(Miner::new(MinerConfig {
            threads: config.miner_threads,
            ..MinerConfig::default()
        })?);
        info!(network = params.name(), peer = %network.client.local_peer_id(), "node started");
        Ok(Self {
            params,
            chain,
            mempool,
            network,
            miner,
            follower,
            transactions,
        })
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
    /// peers. Returns their hashes.
    pub async fn generate(
        &self,
        count: usize,
        payout: OutputKey,
    ) -> Result<Vec<BlockHash>, NodeError> {
        let miner = Arc::clone(&self.miner);
        let mempool = Arc::clone(&self.mempool);
        let reader = self.chain.reader.clone();
        let handle = self.chain.handle.clone();
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || {
            let template = || {
                let tip = reader.tip();
                let subsidy = params.block_subsidy(tip.next.height);
                lock(&mempool).block_template(&tip.next, subsidy, unix_now())
            };
            let submit = |block: Block| {
                let hash = block.block_hash();
                match handle.submit_block(block)? {
                    Acceptance::Accepted => Ok(()),
                    acceptance => Err(NodeError::MinedBlockRefused { hash, acceptance }),
                }
            };
            miner
                .generate(count, payout, template, submit)
                .map_err(|error| match error {
                    GenerateError::Submit(error) => error,
                    _ => NodeError::BadTemplate,
                })
        })
        .await
        .map_err(|join| NodeError::Task(join.to_string()))?
    }

    /// Stops the network, the chain actor and the helpers, and waits for them.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        self.network.client.shutdown();
        let joined = |join: tokio::task::JoinError| NodeError::Task(join.to_string());
        self.network.event_loop.await.map_err(joined)?;
        self.network.syncer.await.map_err(joined)?;
        self.transactions.await.map_err(joined)?;
        self.chain.handle.shutdown();
        let (thread, follower) = (self.chain.thread, self.follower);
        tokio::task::spawn_blocking(move || {
            let stopped = thread
                .join()
                .map_err(|_| NodeError::Task("the chain thread panicked".into()))?;
            // The follower ends when the chain actor drops its event channel.
            follower
                .join()
                .map_err(|_| NodeError::Task("the mempool follower panicked".into()))?;
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
