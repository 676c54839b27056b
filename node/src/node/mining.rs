//! The block factory that `generate` and the background miner share, the mempool's
//! follow point it waits on, and the background mining loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use quarry_chain::clock::unix_now;

use quarry_chain::{
    Acceptance, Block, BlockHash, ChainHandle, ChainParams, ChainReadHandle, OutputKey,
};
use quarry_mempool::Mempool;
use quarry_miner::Miner;
use tracing::{debug, error, info, warn};

use super::{lock, NodeError, Store};

/// How long a miner works on one template before taking a fresh one (new transactions, time).
pub(super) const TEMPLATE_REFRESH: Duration = Duration::from_secs(5);

/// Least time between two log lines of the background miner.
pub(super) const MINING_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The block the mempool was last brought in step with, so that a template is never built
/// from a pool that has not yet seen the tip's block (it would still hold its transactions).
#[derive(Debug)]
pub(super) struct PoolTip {
    pub(super) hash: Mutex<BlockHash>,
    pub(super) changed: std::sync::Condvar,
}

impl PoolTip {
    pub(super) fn new(hash: BlockHash) -> Self {
        Self {
            hash: Mutex::new(hash),
            changed: std::sync::Condvar::new(),
        }
    }

    pub(super) fn set(&self, hash: BlockHash) {
        *lock(&self.hash) = hash;
        self.changed.notify_all();
    }

    /// Waits until the pool is in step with `tip`, or with the chain's tip of the moment
    /// (`current`) if the chain has moved on meanwhile; `false` after `timeout`.
    pub(super) fn wait_for(
        &self,
        tip: BlockHash,
        current: impl Fn() -> BlockHash,
        timeout: Duration,
    ) -> bool {
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
pub(super) const POOL_FOLLOW_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds block templates from the mempool on the best tip and hands mined blocks to the chain:
/// what `generate` and the background miner share.
#[derive(Clone, Debug)]
pub(super) struct BlockFactory {
    pub(super) params: ChainParams,
    pub(super) mempool: Arc<Mutex<Mempool>>,
    pub(super) pool_tip: Arc<PoolTip>,
    pub(super) reader: ChainReadHandle<Store>,
    pub(super) handle: ChainHandle,
}

impl BlockFactory {
    pub(super) fn template(&self) -> quarry_mempool::BlockTemplate {
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

    pub(super) fn submit(&self, block: Block) -> Result<(), NodeError> {
        let hash = block.block_hash();
        match self.handle.submit_block(block)? {
            Acceptance::Accepted => Ok(()),
            acceptance => Err(NodeError::MinedBlockRefused { hash, acceptance }),
        }
    }
}

/// The background miner started by `--mine` or `setgenerate`.
#[derive(Debug)]
pub(super) struct MiningJob {
    pub(super) payout: OutputKey,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) thread: std::thread::JoinHandle<()>,
}

impl MiningJob {
    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.thread.join().is_err() {
            warn!("the miner thread panicked");
        }
        info!("mining stopped");
    }
}

/// Mines block after block on the best tip until `stop` is set; a template is dropped as soon
/// as the tip moves, and refreshed every few seconds to take in new transactions.
pub(super) fn mine_until_stopped(
    miner: &Miner,
    factory: &BlockFactory,
    payout: OutputKey,
    stop: &AtomicBool,
) {
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
