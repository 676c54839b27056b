//! The follower thread: keeps the mempool and the metrics in step with every block the chain
//! connects or disconnects.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use quarry_chain::clock::unix_now;

use quarry_chain::{ChainEvent, ChainParams, ChainReadHandle, ChainReader};
use quarry_mempool::{BlockChange, Mempool};
use tracing::{info, warn};

use super::mining::PoolTip;
use super::{lock, tip_context, NodeError, Store};
use crate::metrics::Metrics;

/// Keeps the mempool in step with the chain: each batch of connects and disconnects is applied
/// with the blocks read from the store.
pub(super) fn spawn_follower(
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

/// Records how long after its timestamp a block was connected; blocks older than two hours
/// (a sync, not propagation) are left out.
pub(super) fn observe_block_delay(metrics: &Metrics, block_time: u32) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64());
    let delay = (now - f64::from(block_time)).max(0.0);
    if delay < 7_200.0 {
        metrics.block_delay.observe(delay);
    }
}
