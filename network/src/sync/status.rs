//! Where synchronisation stands: the status watch and the progress log.

use std::time::Duration;
use std::time::Instant;

use quarry_chain::ChainReader;
use tracing::info;

use super::Syncer;

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

/// How often sync progress is logged while blocks are downloading.
pub(super) const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

impl<S> Syncer<S>
where
    S: ChainReader + Clone + Send + Sync + 'static,
{
    pub(super) fn status(&self) -> SyncStatus {
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

    pub(super) fn publish_status(&self) {
        let status = self.status();
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }

    pub(super) fn log_progress(&mut self) {
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
