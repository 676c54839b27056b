//! Blocks found invalid before they were indexed (a header or body failing its checks against
//! the parent, or a child of such a block). They are remembered only in memory and only so
//! many, like Bitcoin Core, which never adds a header failing its contextual checks to the
//! block index: writing them down would let any peer grow the store with junk.

use std::collections::{HashSet, VecDeque};

use crate::hash::BlockHash;

/// How many such blocks are remembered; the oldest are forgotten first. A forgotten one is
/// checked again if it comes back, which costs a header check, not storage.
pub const MAX_FAILED_BLOCKS: usize = 10_000;

/// A bounded set of block hashes, oldest evicted first.
#[derive(Debug, Default)]
pub(crate) struct FailedBlocks {
    hashes: HashSet<BlockHash>,
    order: VecDeque<BlockHash>,
}

impl FailedBlocks {
    pub(crate) fn insert(&mut self, hash: BlockHash) {
        if !self.hashes.insert(hash) {
            return;
        }
        self.order.push_back(hash);
        if self.order.len() > MAX_FAILED_BLOCKS {
            if let Some(oldest) = self.order.pop_front() {
                self.hashes.remove(&oldest);
            }
        }
    }

    pub(crate) fn contains(&self, hash: &BlockHash) -> bool {
        self.hashes.contains(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_are_forgotten_past_the_bound() {
        let hash = |n: u32| {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&n.to_le_bytes());
            BlockHash::from_byte_array(bytes)
        };
        let mut failed = FailedBlocks::default();
        let total = MAX_FAILED_BLOCKS as u32 + 5;
        for n in 0..total {
            failed.insert(hash(n));
            failed.insert(hash(n));
        }
        assert!((0..5).all(|n| !failed.contains(&hash(n))));
        assert!((5..total).all(|n| failed.contains(&hash(n))));
        assert_eq!(failed.hashes.len(), MAX_FAILED_BLOCKS);
        assert_eq!(failed.order.len(), MAX_FAILED_BLOCKS);
    }
}
