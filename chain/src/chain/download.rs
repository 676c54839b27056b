//! What headers-first sync downloads next, as Bitcoin Core's `FindNextBlocksToDownload`: the
//! blocks on the path from the active chain to the best header whose bodies are missing,
//! lowest first, whatever header batch they arrived in, and how far along that path each
//! peer's best known block reaches (a peer is only asked for blocks its chain holds).

use std::collections::VecDeque;

use super::Chain;
use crate::hash::BlockHash;
use crate::index::BlockStatus;
use crate::pow::Work;
use crate::store::{ChainReader, ChainWriter};

/// Most steps walked back from a peer's best known block looking for the download path; a
/// peer on a branch that parted further away is not asked for the path's blocks.
const MAX_REACH_WALK: usize = 10_000;

/// A block in the index: hash, height and the chain's cumulative work up to it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HeaderPoint {
    /// The block.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// Work of the chain from genesis up to and including it.
    pub chain_work: Work,
}

/// The chain's answer to "what should be downloaded, and from whom".
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DownloadPlan {
    /// The most-work header not known to be invalid.
    pub best_header: HeaderPoint,
    /// Header-only blocks on the way to `best_header`, lowest first (none when the best header
    /// has no more work than the tip).
    pub blocks: Vec<(u32, BlockHash)>,
    /// For each peer block asked about, in order: a height such that every block of `blocks`
    /// at or below it is on that block's chain (the peer can serve it), and none above it is.
    pub reach: Vec<u32>,
}

/// The blocks from (at most) the fork with the active chain up to the best header, kept
/// between plans so that each plan walks only what changed: new headers on top, and bodies
/// that arrived at the bottom.
#[derive(Debug, Default)]
pub(super) struct PathCache {
    /// The header the path leads to.
    to: Option<BlockHash>,
    /// Height of `path[0]`.
    base: u32,
    /// Consecutive blocks ending at `to`; every block of its chain below `base` has its body.
    path: VecDeque<BlockHash>,
}

impl PathCache {
    /// The block at `height` if it is on the path.
    fn at(&self, height: u32) -> Option<BlockHash> {
        let offset = height.checked_sub(self.base)?;
        self.path.get(offset as usize).copied()
    }
}

impl<S: ChainReader + ChainWriter> Chain<S> {
    /// Up to `limit` header-only blocks to fetch toward the best header, lowest first, and the
    /// reach of each of `peers` (their best known blocks) along that way.
    pub fn download_plan(&mut self, peers: &[BlockHash], limit: usize) -> DownloadPlan {
        let best_header = self.best_header();
        if best_header.chain_work <= self.tip_work() {
            return DownloadPlan {
                best_header,
                blocks: Vec::new(),
                reach: vec![0; peers.len()],
            };
        }
        self.extend_download_path(best_header.hash);
        self.trim_download_path();
        let cache = &self.download_path;
        let blocks = cache
            .path
            .iter()
            .zip(cache.base..)
            .filter(|(hash, _)| {
                self.index
                    .get(hash)
                    .is_some_and(|entry| entry.status == BlockStatus::HeaderOnly)
            })
            .map(|(hash, height)| (height, *hash))
            .take(limit)
            .collect();
        let reach = peers.iter().map(|peer| self.reach_of(*peer)).collect();
        DownloadPlan {
            best_header,
            blocks,
            reach,
        }
    }

    /// Makes the cached path lead to `best`: appends the headers above the old end when `best`
    /// descends from it, else walks back from `best` to the active chain.
    fn extend_download_path(&mut self, best: BlockHash) {
        if self.download_path.to == Some(best) {
            return;
        }
        let old_end = self.download_path.to;
        let mut above = Vec::new();
        let mut current = best;
        let mut reached_old_end = false;
        while let Some(entry) = self.index.get(&current) {
            if Some(current) == old_end {
                reached_old_end = true;
                break;
            }
            if self.hash_at_height(entry.height) == Some(current) {
                break;
            }
            above.push(current);
            if entry.height == 0 {
                break;
            }
            current = entry.header.prev_blockhash;
        }
        let cache = &mut self.download_path;
        if !reached_old_end {
            cache.path.clear();
            cache.base = self
                .index
                .get(&best)
                .map_or(0, |entry| entry.height + 1)
                .saturating_sub(above.len() as u32);
        }
        cache.path.extend(above.into_iter().rev());
        cache.to = Some(best);
    }

    /// Drops blocks from the bottom of the path once their bodies are stored.
    fn trim_download_path(&mut self) {
        let cache = &mut self.download_path;
        while let Some(first) = cache.path.front() {
            let has_body = self.index.get(first).is_some_and(|entry| {
                matches!(entry.status, BlockStatus::DataStored | BlockStatus::Valid)
            });
            if !has_body {
                break;
            }
            cache.path.pop_front();
            cache.base += 1;
        }
    }

    /// The height up to which the chain of `peer_block` follows the cached path; below the
    /// path (whose blocks all have bodies already) it is only a height no planned block is at.
    fn reach_of(&self, peer_block: BlockHash) -> u32 {
        let cache = &self.download_path;
        let mut current = peer_block;
        for _ in 0..MAX_REACH_WALK {
            let Some(entry) = self.index.get(&current) else {
                return 0;
            };
            if entry.height < cache.base || cache.at(entry.height) == Some(current) {
                return entry.height;
            }
            current = entry.header.prev_blockhash;
        }
        0
    }
}
