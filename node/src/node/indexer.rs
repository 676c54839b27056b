//! The indexer thread: keeps the address and transaction index on the best chain.

use std::sync::Arc;

use quarry_chain::{ChainEvent, ChainReadHandle, ChainReader};
use tracing::{info, warn};

use super::follower::observe_block_delay;
use super::{NodeError, Store};
use crate::index::{AddressIndex, CatchUp};
use crate::metrics::{Metrics, ReorgTracker};

/// Keeps the index in step with the chain, and counts reorganisations and block delays.
pub(super) fn spawn_indexer(
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
