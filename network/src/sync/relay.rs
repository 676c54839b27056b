//! Gossip relay memory: blocks already gossiped, gossip waiting for the chain's verdict, and
//! announcements of the node's new tips.

use futures::FutureExt;
use quarry_chain::{BlockHash, ChainReader};
use std::time::Duration;
use tracing::{debug, warn};

use crate::service::Validation;

use super::{read_store, Syncer, Task};

/// How long a gossiped block with unknown ancestors waits for them before it is dropped.
pub(super) const ORPHAN_GOSSIP_WAIT: Duration = Duration::from_secs(12);

/// Block hashes remembered as already gossiped, so they are not announced again.
pub(super) const GOSSIPED_MEMORY: usize = 4_096;

impl<S> Syncer<S>
where
    S: ChainReader + Clone + Send + Sync + 'static,
{
    pub(super) fn remember_gossiped(&mut self, hash: BlockHash) {
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
    pub(super) fn announce_tip(&mut self) {
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

    pub(super) fn expire_pending_gossip(&mut self) {
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
}
