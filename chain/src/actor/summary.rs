//! Statistics of the block tree for cheap readers: `/metrics` and `getblockchaininfo` answer
//! anyone who can reach them, so they read a copy the chain actor keeps up to date instead of
//! asking the chain thread to walk every branch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::chain::{ChainTip, HeaderPoint, TipStatus};

/// The block tree at a glance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeSummary {
    /// The most-work header not known invalid (at least the tip).
    pub best_header: HeaderPoint,
    /// Blocks waiting for their parent.
    pub orphans: usize,
    /// Branch tips by `getchaintips` status. Recounted at most once a second
    /// ([`TIP_RECOUNT_INTERVAL`](super::TIP_RECOUNT_INTERVAL)), so it may trail the tree by
    /// that long.
    pub tips: BTreeMap<TipStatus, usize>,
}

impl TreeSummary {
    /// Counts `tips` by status.
    pub(super) fn count_tips(tips: &[ChainTip]) -> BTreeMap<TipStatus, usize> {
        let mut counts = BTreeMap::new();
        for tip in tips {
            *counts.entry(tip.status).or_default() += 1;
        }
        counts
    }

    /// Tips of branches off the best chain whose every block is stored (Core's stale blocks).
    pub fn stale_tips(&self) -> usize {
        [TipStatus::ValidFork, TipStatus::ValidHeaders]
            .iter()
            .filter_map(|status| self.tips.get(status))
            .sum()
    }
}

/// The latest [`TreeSummary`], shared between the actor (which writes it) and readers.
#[derive(Clone, Debug)]
pub struct SummaryCell(Arc<Mutex<TreeSummary>>);

impl SummaryCell {
    pub(super) fn new(summary: TreeSummary) -> Self {
        Self(Arc::new(Mutex::new(summary)))
    }

    /// The latest summary.
    pub fn get(&self) -> TreeSummary {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set(&self, summary: TreeSummary) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = summary;
    }
}
