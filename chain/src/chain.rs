//! The chain state machine: accepts blocks, keeps the block index, chooses the most-work valid
//! chain (first seen wins ties), and connects or disconnects blocks against the UTXO set with
//! undo data, one atomic store batch per step.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, VecDeque};

use tracing::{debug, info, warn};

use crate::block::{Block, BlockHeader};
use crate::error::{BlockError, ChainError, StoreError};
use crate::hash::BlockHash;
use crate::index::{BlockIndex, BlockStatus, IndexEntry};
use crate::params::ChainParams;
use crate::pow::{CompactTarget, Work};
use crate::retarget::RetargetRule;
use crate::store::{ChainBatch, ChainReader, ChainWriter};
use crate::validation::header_context::{
    check_coinbase_height, check_difficulty, check_time_after_median, check_time_not_too_new,
    check_time_warp,
};
use crate::validation::isolation::{check_block, check_proof_of_work};
use crate::validation::utxo_context::{
    connect_block, disconnect_block, ConnectContext, ConnectError,
};

mod download;
mod failed;

pub use download::{DownloadPlan, HeaderPoint};
pub use failed::MAX_FAILED_BLOCKS;

/// Blocks waiting for their parent, at most.
pub const MAX_ORPHAN_BLOCKS: usize = 256;
/// Bytes of blocks waiting for their parent, at most.
pub const MAX_ORPHAN_BYTES: usize = 32 * 1024 * 1024;
/// Most blocks an unrequested block may be ahead of the tip (Bitcoin Core's
/// `MIN_BLOCKS_TO_KEEP`): further ahead, it is fetched by headers-first sync when its turn comes.
pub const MAX_UNREQUESTED_AHEAD: u32 = 288;
/// The arrival number of a block whose chain of bodies is not complete yet.
pub const UNSEQUENCED: u64 = u64::MAX;

/// A change of the best chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChainEvent {
    /// A block was connected on top of the best chain.
    Connected {
        /// The block.
        hash: BlockHash,
        /// Its height.
        height: u32,
    },
    /// The best chain's tip was disconnected (a reorganisation).
    Disconnected {
        /// The block.
        hash: BlockHash,
        /// Its height.
        height: u32,
    },
}

/// What became of a submitted block that broke no rule.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Acceptance {
    /// Stored and indexed (connected or not: see [`Chain::take_events`]).
    Accepted,
    /// Already known; nothing changed.
    AlreadyKnown,
    /// Parent unknown: held until the parent arrives.
    Orphan,
    /// Not asked for and of no use now: its chain has less work than the tip's (or it is too
    /// far ahead of it). Neither stored nor an offence: an honest peer may send a stale block.
    Ignored,
}

/// The status of a branch tip, as Bitcoin Core's `getchaintips` reports it (and names it, in
/// serde).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum TipStatus {
    /// The tip of the best chain.
    Active,
    /// A fully validated branch that is not active.
    ValidFork,
    /// Every body is stored but some were never connected.
    ValidHeaders,
    /// Some bodies are missing.
    HeadersOnly,
    /// The branch contains an invalid block.
    Invalid,
}

impl TipStatus {
    /// The status as `getchaintips` names it (`active`, `valid-fork`, ...), as serde writes it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::ValidFork => "valid-fork",
            Self::ValidHeaders => "valid-headers",
            Self::HeadersOnly => "headers-only",
            Self::Invalid => "invalid",
        }
    }
}

/// One branch tip.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChainTip {
    /// The tip block.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// Blocks between the tip and the best chain (0 for the active tip).
    pub branch_len: u32,
    /// Status of the branch.
    pub status: TipStatus,
    /// Cumulative work up to the tip.
    pub chain_work: Work,
}

/// What a new block on top of the tip must satisfy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NextBlock {
    /// Parent: the current tip.
    pub prev_blockhash: BlockHash,
    /// Height of the new block.
    pub height: u32,
    /// Required `bits`.
    pub bits: CompactTarget,
    /// Smallest allowed timestamp (median time past + 1).
    pub min_time: u32,
}

/// Order of fork choice: most work first, then earliest arrival.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Candidate {
    work: Reverse<Work>,
    sequence: u64,
    hash: BlockHash,
}

impl Candidate {
    fn of(hash: BlockHash, entry: &IndexEntry) -> Self {
        Self {
            work: Reverse(entry.chain_work),
            sequence: entry.sequence,
            hash,
        }
    }
}

/// Blocks whose parent is unknown, bounded in count and bytes, oldest evicted first.
#[derive(Debug, Default)]
struct OrphanPool {
    blocks: HashMap<BlockHash, (Block, usize)>,
    by_parent: HashMap<BlockHash, Vec<BlockHash>>,
    arrival: VecDeque<BlockHash>,
    bytes: usize,
}

impl OrphanPool {
    fn contains(&self, hash: &BlockHash) -> bool {
        self.blocks.contains_key(hash)
    }

    fn insert(&mut self, hash: BlockHash, block: Block) {
        let size = block.encoded_size();
        while !self.blocks.is_empty()
            && (self.blocks.len() >= MAX_ORPHAN_BLOCKS || self.bytes + size > MAX_ORPHAN_BYTES)
        {
            let Some(oldest) = self.arrival.pop_front() else {
                break;
            };
            self.remove(&oldest);
        }
        self.by_parent
            .entry(block.header.prev_blockhash)
            .or_default()
            .push(hash);
        self.arrival.push_back(hash);
        self.bytes += size;
        self.blocks.insert(hash, (block, size));
    }

    fn remove(&mut self, hash: &BlockHash) -> Option<Block> {
        let (block, size) = self.blocks.remove(hash)?;
        self.bytes -= size;
        let parent = block.header.prev_blockhash;
        if let Some(siblings) = self.by_parent.get_mut(&parent) {
            siblings.retain(|sibling| sibling != hash);
            if siblings.is_empty() {
                self.by_parent.remove(&parent);
            }
        }
        Some(block)
    }

    fn take_children(&mut self, parent: &BlockHash) -> Vec<(BlockHash, Block)> {
        let children = self.by_parent.remove(parent).unwrap_or_default();
        children
            .into_iter()
            .filter_map(|hash| {
                let (block, size) = self.blocks.remove(&hash)?;
                self.bytes -= size;
                Some((hash, block))
            })
            .collect()
    }
}

/// The chain: block index, fork choice and UTXO set over a store.
#[derive(Debug)]
pub struct Chain<S> {
    params: ChainParams,
    store: S,
    index: BlockIndex,
    candidates: BTreeSet<Candidate>,
    active: Vec<BlockHash>,
    next_sequence: u64,
    /// The most-work header not known to be invalid (Bitcoin Core's `pindexBestHeader`).
    best_header: BlockHash,
    /// The blocks leading to `best_header` whose bodies may still be missing.
    download_path: download::PathCache,
    orphans: OrphanPool,
    /// Blocks found invalid before they were indexed: remembered in memory only.
    failed: failed::FailedBlocks,
    events: Vec<ChainEvent>,
}

impl<S: ChainReader + ChainWriter> Chain<S> {
    /// Opens the chain in `store`, writing the genesis block of `params` into an empty store.
    pub fn open(params: ChainParams, mut store: S) -> Result<Self, ChainError> {
        let genesis_hash = params.genesis_hash();
        let mut entries = store.index_entries()?;
        if entries.is_empty() {
            let genesis = params.genesis_block().clone();
            let entry = IndexEntry {
                header: genesis.header,
                height: 0,
                chain_work: params.pow_limit().to_work(),
                status: BlockStatus::Valid,
                sequence: 0,
            };
            store.commit(ChainBatch {
                index: vec![(genesis_hash, entry)],
                blocks: vec![(genesis_hash, genesis)],
                heights: vec![(0, Some(genesis_hash))],
                tip: Some(genesis_hash),
                ..ChainBatch::default()
            })?;
            entries.push((genesis_hash, entry));
        }
        let corrupt = |what: String| ChainError::Store(StoreError::Corrupt { what });
        let mut index = BlockIndex::default();
        let mut next_sequence = 0;
        for (hash, entry) in &entries {
            index.insert(*hash, *entry);
            if entry.sequence != UNSEQUENCED {
                next_sequence = next_sequence.max(entry.sequence + 1);
            }
        }
        if let Some((found, _)) = entries
            .iter()
            .find(|(hash, entry)| entry.height == 0 && *hash != genesis_hash)
        {
            return Err(ChainError::OtherNetwork {
                network: params.name().to_owned(),
                expected: genesis_hash,
                found: *found,
            });
        }
        for (hash, entry) in &entries {
            let linked = if entry.height == 0 {
                *hash == genesis_hash
            } else {
                index
                    .get(&entry.header.prev_blockhash)
                    .is_some_and(|parent| parent.height + 1 == entry.height)
            };
            if !linked {
                return Err(corrupt(format!(
                    "block {hash} at height {} is not linked to this network's genesis {genesis_hash}",
                    entry.height
                )));
            }
        }
        let tip = store
            .tip()?
            .ok_or_else(|| corrupt("no tip recorded".into()))?;
        let tip_height = index
            .get(&tip)
            .ok_or_else(|| corrupt(format!("tip {tip} has no index entry")))?
            .height;
        let mut active = vec![BlockHash::ZERO; tip_height as usize + 1];
        let mut current = tip;
        for height in (0..=tip_height).rev() {
            active[height as usize] = current;
            if let Some(entry) = index.get(&current) {
                current = entry.header.prev_blockhash;
            }
        }
        info!(network = params.name(), %tip, height = tip_height, blocks = index.len(), "chain opened");
        let mut chain = Self {
            params,
            store,
            index,
            candidates: BTreeSet::new(),
            active,
            next_sequence,
            best_header: genesis_hash,
            download_path: download::PathCache::default(),
            orphans: OrphanPool::default(),
            failed: failed::FailedBlocks::default(),
            events: Vec::new(),
        };
        chain.refresh_candidates();
        chain.refresh_best_header();
        // A reorganisation interrupted between two commits is finished now.
        chain.activate_best_chain()?;
        Ok(chain)
    }

    /// Validates and stores `block`, then moves to the most-work valid chain. `now` is the local
    /// clock in Unix seconds. Blocks whose parent is unknown wait in a bounded orphan pool and
    /// are processed when the parent arrives. Best-chain changes, including any caused by a
    /// failed call, are collected for [`Chain::take_events`].
    pub fn process_block(&mut self, block: Block, now: u64) -> Result<Acceptance, ChainError> {
        let hash = block.block_hash();
        if let Some(entry) = self.index.get(&hash) {
            if entry.status.is_invalid() {
                return Err(self.known_invalid(hash));
            }
            if entry.status != BlockStatus::HeaderOnly {
                return Ok(Acceptance::AlreadyKnown);
            }
        }
        if self.failed.contains(&hash) {
            return Err(ChainError::KnownInvalid { hash });
        }
        if self.orphans.contains(&hash) {
            return Ok(Acceptance::AlreadyKnown);
        }
        check_block(&block, self.params.pow_check())
            .map_err(|source| ChainError::InvalidBlock { hash, source })?;
        self.refuse_child_of_failed(hash, block.header.prev_blockhash)?;
        if self.index.get(&block.header.prev_blockhash).is_none() {
            debug!(%hash, parent = %block.header.prev_blockhash, "orphan block held");
            self.orphans.insert(hash, block);
            return Ok(Acceptance::Orphan);
        }
        let accepted = self.accept(hash, block, now);
        let failures = match accepted {
            Ok(()) => self.activate_best_chain()?,
            Err(_) => Vec::new(),
        };
        // Orphans of an indexed block learn their fate now, even if the block is invalid.
        if self.index.get(&hash).is_some() || self.failed.contains(&hash) {
            self.process_orphans_of(hash, now)?;
        }
        accepted?;
        match failures.into_iter().find(|(failed, _)| *failed == hash) {
            Some((_, source)) => Err(ChainError::InvalidBlock { hash, source }),
            None => Ok(Acceptance::Accepted),
        }
    }

    /// Like [`Chain::process_block`] for a block nobody asked for (one gossiped by a peer), as
    /// Bitcoin Core's `AcceptBlock` without `fRequested`: it is ignored unless its chain has at
    /// least the tip's work (less half the tip block's work, so that a sibling of the tip
    /// whose retargeted target is a little easier still counts) and it is at most
    /// [`MAX_UNREQUESTED_AHEAD`] blocks ahead. Storing and relaying a block must cost its
    /// sender as much work as the tip's chain.
    pub fn process_unrequested_block(
        &mut self,
        block: Block,
        now: u64,
    ) -> Result<Acceptance, ChainError> {
        if let Some(parent) = self.index.get(&block.header.prev_blockhash) {
            let chain_work = parent.chain_work.saturating_add(block.header.work());
            let tip = self.tip_hash();
            let tip_block_work = self
                .index
                .get(&tip)
                .map_or(Work::ZERO, |entry| entry.header.work());
            let margin = Work::from_u256(tip_block_work.to_u256() >> 1);
            let too_little_work = chain_work.saturating_add(margin) < self.tip_work();
            let too_far_ahead = parent.height >= self.tip_height() + MAX_UNREQUESTED_AHEAD;
            let known = self
                .index
                .get(&block.block_hash())
                .is_some_and(|entry| entry.status != BlockStatus::HeaderOnly);
            if !known && (too_little_work || too_far_ahead) {
                debug!(hash = %block.block_hash(), too_little_work, too_far_ahead, "unrequested block ignored");
                return Ok(Acceptance::Ignored);
            }
        }
        self.process_block(block, now)
    }

    /// Best-chain changes since the last call, in order.
    pub fn take_events(&mut self) -> Vec<ChainEvent> {
        std::mem::take(&mut self.events)
    }

    /// Processes, breadth first, the orphans waiting on `parent`. Their rule violations are
    /// logged, not returned: they came from earlier calls.
    fn process_orphans_of(&mut self, parent: BlockHash, now: u64) -> Result<(), ChainError> {
        let mut ready = VecDeque::from([parent]);
        while let Some(parent) = ready.pop_front() {
            for (hash, block) in self.orphans.take_children(&parent) {
                match self.accept(hash, block, now) {
                    Ok(()) => {
                        self.activate_best_chain()?;
                    }
                    Err(ChainError::Store(error)) => return Err(ChainError::Store(error)),
                    Err(error) => warn!(%hash, %error, "orphan block rejected"),
                }
                if self.index.get(&hash).is_some() || self.failed.contains(&hash) {
                    ready.push_back(hash);
                }
            }
        }
        Ok(())
    }

    /// Validates and indexes a header whose body has not arrived yet (headers-first sync): proof
    /// of work, difficulty and timestamps against its parent, which must be indexed. The body
    /// is later given to [`Chain::process_block`].
    pub fn process_header(
        &mut self,
        header: BlockHeader,
        now: u64,
    ) -> Result<Acceptance, ChainError> {
        let hash = header.block_hash();
        if let Some(entry) = self.index.get(&hash) {
            if entry.status.is_invalid() {
                return Err(self.known_invalid(hash));
            }
            return Ok(Acceptance::AlreadyKnown);
        }
        if self.failed.contains(&hash) {
            return Err(ChainError::KnownInvalid { hash });
        }
        check_proof_of_work(&header, self.params.pow_check())
            .map_err(|source| ChainError::InvalidBlock { hash, source })?;
        self.refuse_child_of_failed(hash, header.prev_blockhash)?;
        let (entry, parent_status) = self.new_entry(hash, header, BlockStatus::HeaderOnly)?;
        if let Err(source) = self.check_header_context(&header, parent_status, entry.height, now) {
            return Err(self.record_invalid(hash, source)?);
        }
        self.store.commit(ChainBatch {
            index: vec![(hash, entry)],
            ..ChainBatch::default()
        })?;
        self.index.insert(hash, entry);
        self.note_header(hash, &entry);
        debug!(%hash, height = entry.height, "header indexed");
        Ok(Acceptance::Accepted)
    }

    /// A new index entry for `header` with `status`, and its parent's status. The parent must
    /// be indexed.
    fn new_entry(
        &mut self,
        hash: BlockHash,
        header: BlockHeader,
        status: BlockStatus,
    ) -> Result<(IndexEntry, BlockStatus), ChainError> {
        let parent_hash = header.prev_blockhash;
        let parent = *self
            .index
            .get(&parent_hash)
            .ok_or(ChainError::InvalidBlock {
                hash,
                source: BlockError::UnknownParent {
                    parent: parent_hash,
                },
            })?;
        if parent.status.is_invalid() && self.invalidated_by_operator(parent_hash) {
            return Err(ChainError::Invalidated { hash });
        }
        let work = header.work();
        let entry = IndexEntry {
            header,
            height: parent.height + 1,
            chain_work: parent.chain_work.saturating_add(work),
            status,
            sequence: UNSEQUENCED,
        };
        Ok((entry, parent.status))
    }

    /// The error for an indexed block known to be invalid: [`ChainError::Invalidated`] when the
    /// operator's decision is the cause, else [`ChainError::KnownInvalid`].
    fn known_invalid(&self, hash: BlockHash) -> ChainError {
        if self.invalidated_by_operator(hash) {
            ChainError::Invalidated { hash }
        } else {
            ChainError::KnownInvalid { hash }
        }
    }

    /// Whether the invalid block `hash` is invalid because the operator invalidated it or an
    /// ancestor, rather than because a rule was broken.
    fn invalidated_by_operator(&self, hash: BlockHash) -> bool {
        let mut current = hash;
        while let Some(entry) = self.index.get(&current) {
            match entry.status {
                BlockStatus::Invalidated => return true,
                BlockStatus::InvalidAncestor if entry.height > 0 => {
                    current = entry.header.prev_blockhash;
                }
                _ => return false,
            }
        }
        false
    }

    /// Refuses the block `hash` when its parent is a block found invalid before it was indexed;
    /// it is remembered as failed too, so that its own children are refused in turn.
    fn refuse_child_of_failed(
        &mut self,
        hash: BlockHash,
        parent: BlockHash,
    ) -> Result<(), ChainError> {
        if !self.failed.contains(&parent) {
            return Ok(());
        }
        self.failed.insert(hash);
        Err(ChainError::InvalidBlock {
            hash,
            source: BlockError::InvalidParent { parent },
        })
    }

    /// Records that the block `hash` broke a rule (unless the failure is specific to this copy
    /// of it) and returns the error to report. A block already indexed (its header arrived
    /// first) is marked invalid in the index with its descendants, so that nobody fetches it
    /// again; any other is remembered in memory only ([`MAX_FAILED_BLOCKS`]).
    fn record_invalid(
        &mut self,
        hash: BlockHash,
        source: BlockError,
    ) -> Result<ChainError, StoreError> {
        if !source.is_copy_specific() {
            if self.index.get(&hash).is_some() {
                self.mark_invalid(hash, BlockStatus::Invalid)?;
            } else {
                self.failed.insert(hash);
            }
        }
        Ok(ChainError::InvalidBlock { hash, source })
    }

    /// Checks the block against its parent and stores it. The parent is indexed.
    fn accept(&mut self, hash: BlockHash, block: Block, now: u64) -> Result<(), ChainError> {
        let parent_hash = block.header.prev_blockhash;
        let (entry, parent_status) = self.new_entry(hash, block.header, BlockStatus::DataStored)?;
        let checked = self
            .check_header_context(&block.header, parent_status, entry.height, now)
            .and_then(|()| check_coinbase_height(&block, entry.height));
        if let Err(source) = checked {
            return Err(self.record_invalid(hash, source)?);
        }
        let parent_is_candidate = self.index.get(&parent_hash).is_some_and(|parent| {
            self.candidates
                .contains(&Candidate::of(parent_hash, parent))
        });
        let mut entry = entry;
        if parent_is_candidate {
            entry.sequence = self.take_sequence();
        }
        self.store.commit(ChainBatch {
            index: vec![(hash, entry)],
            blocks: vec![(hash, block)],
            ..ChainBatch::default()
        })?;
        let had_descendants = self.index.get(&hash).is_some();
        self.index.insert(hash, entry);
        self.note_header(hash, &entry);
        if parent_is_candidate {
            self.candidates.insert(Candidate::of(hash, &entry));
            if had_descendants {
                self.add_complete_descendants(hash)?;
            }
        }
        debug!(%hash, height = entry.height, "block stored");
        Ok(())
    }

    /// The next arrival number. Ties in chain work go to the lowest, so it is taken when a
    /// block's whole chain of bodies has arrived (as Bitcoin Core's `nSequenceId`): announcing
    /// a header early, or a body before its ancestors', wins no tie.
    fn take_sequence(&mut self) -> u64 {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        sequence
    }

    /// The rules that need the header's place in the chain, cheapest first.
    fn check_header_context(
        &self,
        header: &BlockHeader,
        parent_status: BlockStatus,
        height: u32,
        now: u64,
    ) -> Result<(), BlockError> {
        let parent = header.prev_blockhash;
        if parent_status.is_invalid() {
            return Err(BlockError::InvalidParent { parent });
        }
        let expected = self
            .index
            .next_work_required(&self.params, &parent)
            .ok_or(BlockError::UnknownParent { parent })?;
        check_difficulty(height, header.bits, expected)?;
        check_time_after_median(header.time, self.index.median_time_past(&parent))?;
        if let RetargetRule::Epoch { interval } = self.params.spec().retarget {
            let parent_time = self.index.get(&parent).map_or(0, |entry| entry.header.time);
            check_time_warp(height, interval, header.time, parent_time)?;
        }
        check_time_not_too_new(header.time, now, self.params.max_future_block_time())
    }

    /// Moves the best chain to the most-work valid candidate, marking blocks that fail to
    /// connect invalid and retrying with the next best. Returns the blocks found invalid.
    fn activate_best_chain(&mut self) -> Result<Vec<(BlockHash, BlockError)>, ChainError> {
        let mut failures = Vec::new();
        while let Some(best) = self.candidates.first().map(|candidate| candidate.hash) {
            if best == self.tip_hash() {
                break;
            }
            let path = self.path_from_active_chain(best);
            let fork_height = self.index.get(&path[0]).map_or(0, |entry| entry.height) - 1;
            while self.tip_height() > fork_height {
                self.disconnect_tip()?;
            }
            for hash in path {
                match self.connect(hash) {
                    Ok(()) => {}
                    Err(ConnectError::Invalid(source)) => {
                        warn!(%hash, error = %source, "block failed to connect; marked invalid");
                        self.mark_invalid(hash, BlockStatus::Invalid)?;
                        failures.push((hash, source));
                        break;
                    }
                    Err(ConnectError::Store(error)) => return Err(error.into()),
                }
            }
        }
        Ok(failures)
    }

    /// The blocks from just after the fork with the active chain up to `hash`, in order.
    fn path_from_active_chain(&self, hash: BlockHash) -> Vec<BlockHash> {
        let mut path = Vec::new();
        let mut current = hash;
        while let Some(entry) = self.index.get(&current) {
            if self.active.get(entry.height as usize) == Some(&current) {
                break;
            }
            path.push(current);
            current = entry.header.prev_blockhash;
        }
        path.reverse();
        path
    }

    fn connect(&mut self, hash: BlockHash) -> Result<(), ConnectError> {
        let mut entry = *self
            .index
            .get(&hash)
            .ok_or_else(|| missing("index entry", hash))?;
        let block = self
            .store
            .block(&hash)?
            .ok_or_else(|| missing("block body", hash))?;
        let txids: Vec<_> = block.transactions.iter().map(|tx| tx.txid()).collect();
        let context = ConnectContext {
            height: entry.height,
            subsidy: self.params.block_subsidy(entry.height),
            coinbase_maturity: self.params.coinbase_maturity(),
            genesis: self.params.genesis_hash(),
        };
        let connected = connect_block(&block, &txids, &context, &self.store)?;
        entry.status = BlockStatus::Valid;
        self.store.commit(ChainBatch {
            index: vec![(hash, entry)],
            undo: vec![(hash, connected.undo)],
            coins: connected.diff,
            heights: vec![(entry.height, Some(hash))],
            tip: Some(hash),
            ..ChainBatch::default()
        })?;
        self.index.insert(hash, entry);
        self.active.push(hash);
        debug!(%hash, height = entry.height, fees = %connected.fees, "block connected");
        self.events.push(ChainEvent::Connected {
            hash,
            height: entry.height,
        });
        Ok(())
    }

    fn disconnect_tip(&mut self) -> Result<(), StoreError> {
        let hash = self.tip_hash();
        let height = self.tip_height();
        let block = self
            .store
            .block(&hash)?
            .ok_or_else(|| missing("block body", hash))?;
        let undo = self
            .store
            .undo(&hash)?
            .ok_or_else(|| missing("undo data", hash))?;
        let diff = disconnect_block(&block, &undo)?;
        self.store.commit(ChainBatch {
            coins: diff,
            heights: vec![(height, None)],
            tip: Some(block.header.prev_blockhash),
            ..ChainBatch::default()
        })?;
        self.active.pop();
        debug!(%hash, height, "block disconnected");
        self.events.push(ChainEvent::Disconnected { hash, height });
        Ok(())
    }

    /// Marks `hash` with `status` (broken rule or operator's decision) and its descendants as
    /// having an invalid ancestor.
    fn mark_invalid(&mut self, hash: BlockHash, status: BlockStatus) -> Result<(), StoreError> {
        let mut batch = ChainBatch::default();
        let descendants = self.index.descendants(&hash);
        let marks = std::iter::once((hash, status)).chain(
            descendants
                .into_iter()
                .map(|descendant| (descendant, BlockStatus::InvalidAncestor)),
        );
        for (marked, status) in marks {
            if let Some(before) = self.index.get(&marked).copied() {
                self.candidates.remove(&Candidate::of(marked, &before));
            }
            if let Some(entry) = self.index.set_status(&marked, status) {
                batch.index.push((marked, entry));
            }
        }
        self.store.commit(batch)?;
        if self
            .index
            .get(&self.best_header)
            .is_none_or(|entry| entry.status.is_invalid())
        {
            self.refresh_best_header();
        }
        Ok(())
    }

    /// Makes the newly indexed `hash` the best header if it has more work than the current one
    /// (on equal work the earlier arrival stays, as in fork choice).
    fn note_header(&mut self, hash: BlockHash, entry: &IndexEntry) {
        let best_work = self
            .index
            .get(&self.best_header)
            .map_or(Work::ZERO, |best| best.chain_work);
        if !entry.status.is_invalid() && entry.chain_work > best_work {
            self.best_header = hash;
        }
    }

    /// Finds the best header again by scanning the index (after blocks were found invalid or
    /// reconsidered).
    fn refresh_best_header(&mut self) {
        let best = self
            .index
            .iter()
            .filter(|(_, entry)| !entry.status.is_invalid())
            .min_by_key(|(hash, entry)| Candidate::of(**hash, entry));
        if let Some((hash, _)) = best {
            self.best_header = *hash;
        }
        self.download_path = download::PathCache::default();
    }

    /// The most-work header not known to be invalid, with its height and work: the chain
    /// headers-first sync downloads toward.
    pub fn best_header(&self) -> HeaderPoint {
        let entry = self
            .index
            .get(&self.best_header)
            .expect("the best header is indexed");
        HeaderPoint {
            hash: self.best_header,
            height: entry.height,
            chain_work: entry.chain_work,
        }
    }

    /// The network parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The store, for reads.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The block index.
    pub fn index(&self) -> &BlockIndex {
        &self.index
    }

    /// The best chain's tip.
    pub fn tip_hash(&self) -> BlockHash {
        *self
            .active
            .last()
            .expect("the active chain always holds genesis")
    }

    /// The best chain's height.
    pub fn tip_height(&self) -> u32 {
        (self.active.len() - 1) as u32
    }

    /// The best chain's cumulative work.
    pub fn tip_work(&self) -> Work {
        self.index
            .get(&self.tip_hash())
            .map_or(Work::ZERO, |entry| entry.chain_work)
    }

    /// The best chain's block at `height`.
    pub fn hash_at_height(&self, height: u32) -> Option<BlockHash> {
        self.active.get(height as usize).copied()
    }

    /// What a block on top of the current tip must satisfy.
    pub fn next_block(&self) -> NextBlock {
        let tip = self.tip_hash();
        NextBlock {
            prev_blockhash: tip,
            height: self.tip_height() + 1,
            bits: self
                .index
                .next_work_required(&self.params, &tip)
                .expect("the tip is indexed"),
            min_time: self.index.median_time_past(&tip).saturating_add(1),
        }
    }

    /// Marks `hash` invalid by decision of the operator (Bitcoin Core's `invalidateblock`):
    /// it and its descendants become invalid, the best chain is rewound below it if needed, and
    /// the most-work chain among the rest becomes active. Genesis cannot be invalidated.
    pub fn invalidate_block(&mut self, hash: BlockHash) -> Result<(), ChainError> {
        let entry = *self
            .index
            .get(&hash)
            .ok_or(ChainError::UnknownBlock { hash })?;
        if entry.height == 0 {
            return Err(ChainError::GenesisImmutable);
        }
        while self.hash_at_height(entry.height) == Some(hash) {
            self.disconnect_tip()?;
        }
        self.mark_invalid(hash, BlockStatus::Invalidated)?;
        info!(%hash, height = entry.height, "block invalidated");
        self.activate_best_chain()?;
        Ok(())
    }

    /// Undoes [`Chain::invalidate_block`] and any rule failures recorded for `hash`, its
    /// ancestors and its descendants (Bitcoin Core's `reconsiderblock`), then moves to the
    /// most-work chain. Blocks that really break a rule are found invalid again when connected.
    pub fn reconsider_block(&mut self, hash: BlockHash) -> Result<(), ChainError> {
        let entry = *self
            .index
            .get(&hash)
            .ok_or(ChainError::UnknownBlock { hash })?;
        let mut related = self.index.descendants(&hash);
        related.push(hash);
        let mut ancestor = entry.header.prev_blockhash;
        while let Some(parent) = self.index.get(&ancestor) {
            related.push(ancestor);
            if parent.height == 0 {
                break;
            }
            ancestor = parent.header.prev_blockhash;
        }
        let mut batch = ChainBatch::default();
        for block in related {
            let Some(entry) = self.index.get(&block).copied() else {
                continue;
            };
            if !entry.status.is_invalid() {
                continue;
            }
            let status = if self.store.block(&block)?.is_some() {
                BlockStatus::DataStored
            } else {
                BlockStatus::HeaderOnly
            };
            if let Some(updated) = self.index.set_status(&block, status) {
                batch.index.push((block, updated));
            }
        }
        self.store.commit(batch)?;
        self.refresh_candidates();
        self.refresh_best_header();
        info!(%hash, "block reconsidered");
        self.activate_best_chain()?;
        Ok(())
    }

    /// Makes candidates of the descendants of the candidate `hash` whose bodies are stored and
    /// whose chain back to it is now complete (headers-first sync fills gaps this way), giving
    /// them arrival numbers in that order, parents first.
    fn add_complete_descendants(&mut self, hash: BlockHash) -> Result<(), StoreError> {
        let mut batch = ChainBatch::default();
        let mut ready = VecDeque::from(self.index.children(&hash).to_vec());
        while let Some(current) = ready.pop_front() {
            let Some(mut entry) = self.index.get(&current).copied() else {
                continue;
            };
            if !matches!(entry.status, BlockStatus::DataStored | BlockStatus::Valid) {
                continue;
            }
            if entry.sequence == UNSEQUENCED {
                entry.sequence = self.take_sequence();
                self.index.insert(current, entry);
                batch.index.push((current, entry));
            }
            self.candidates.insert(Candidate::of(current, &entry));
            ready.extend(self.index.children(&current).iter().copied());
        }
        self.store.commit(batch)
    }

    /// Rebuilds the candidate set: blocks whose body and all ancestors' bodies are stored and
    /// none of which is known to be invalid.
    fn refresh_candidates(&mut self) {
        let mut complete: HashMap<BlockHash, bool> = HashMap::new();
        let mut entries: Vec<(BlockHash, IndexEntry)> = self
            .index
            .iter()
            .map(|(hash, entry)| (*hash, *entry))
            .collect();
        entries.sort_by_key(|(_, entry)| entry.height);
        self.candidates.clear();
        for (hash, entry) in entries {
            let usable = matches!(entry.status, BlockStatus::DataStored | BlockStatus::Valid);
            let parent_complete = entry.height == 0
                || complete
                    .get(&entry.header.prev_blockhash)
                    .copied()
                    .unwrap_or(false);
            let is_complete = usable && parent_complete;
            complete.insert(hash, is_complete);
            if is_complete {
                self.candidates.insert(Candidate::of(hash, &entry));
            }
        }
    }

    /// Every branch tip the index knows, with its status, like Bitcoin Core's `getchaintips`:
    /// leaves of the block tree plus the active tip, most work first.
    pub fn chain_tips(&self) -> Vec<ChainTip> {
        let active = self.tip_hash();
        let active_inner = !self.index.children(&active).is_empty();
        let mut tips: Vec<ChainTip> = self
            .index
            .leaves()
            .chain(active_inner.then_some(&active))
            .filter_map(|hash| Some((hash, self.index.get(hash)?)))
            .map(|(hash, entry)| {
                let mut status = TipStatus::ValidFork;
                let mut current = *hash;
                let mut branch_len = 0;
                while let Some(block) = self.index.get(&current) {
                    if self.hash_at_height(block.height) == Some(current) {
                        break;
                    }
                    branch_len += 1;
                    status = status.max(match block.status {
                        BlockStatus::Valid => TipStatus::ValidFork,
                        BlockStatus::DataStored => TipStatus::ValidHeaders,
                        BlockStatus::HeaderOnly => TipStatus::HeadersOnly,
                        BlockStatus::Invalid
                        | BlockStatus::InvalidAncestor
                        | BlockStatus::Invalidated => TipStatus::Invalid,
                    });
                    current = block.header.prev_blockhash;
                }
                ChainTip {
                    hash: *hash,
                    height: entry.height,
                    branch_len,
                    status: if *hash == active {
                        TipStatus::Active
                    } else {
                        status
                    },
                    chain_work: entry.chain_work,
                }
            })
            .collect();
        tips.sort_by_key(|tip| (Reverse(tip.chain_work), tip.hash));
        tips
    }

    /// Number of blocks waiting for their parent.
    pub fn orphan_count(&self) -> usize {
        self.orphans.blocks.len()
    }

    /// Rebuilds the block index, the UTXO set and the undo data from the block bodies stored
    /// in `store`, validating every block again (parents before children). `progress` is told
    /// `(blocks done, blocks stored)` after each block. An interrupted reindex leaves a
    /// consistent but shorter chain; running it again finishes the work.
    pub fn reindex(
        params: ChainParams,
        mut store: S,
        now: u64,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Self, ChainError> {
        let headers = store.stored_headers()?;
        store.clear_chain_state()?;
        let mut children: HashMap<BlockHash, Vec<BlockHash>> = HashMap::new();
        for header in &headers {
            children
                .entry(header.prev_blockhash)
                .or_default()
                .push(header.block_hash());
        }
        let total = headers.len();
        drop(headers);
        let mut chain = Self::open(params, store)?;
        let mut ready = VecDeque::from([chain.params.genesis_hash()]);
        let mut done = 0;
        while let Some(hash) = ready.pop_front() {
            let block = chain
                .store
                .block(&hash)?
                .ok_or_else(|| missing("block body", hash))?;
            match chain.process_block(block, now) {
                Ok(_) => {}
                Err(ChainError::Store(error)) => return Err(ChainError::Store(error)),
                Err(error) => warn!(%hash, %error, "stored block is invalid"),
            }
            done += 1;
            progress(done, total);
            if let Some(mut next) = children.remove(&hash) {
                next.sort();
                ready.extend(next);
            }
        }
        chain.events.clear();
        info!(blocks = done, stored = total, tip = %chain.tip_hash(), "reindex finished");
        Ok(chain)
    }
}

fn missing(what: &str, hash: BlockHash) -> StoreError {
    StoreError::Corrupt {
        what: format!("{what} of block {hash} is missing"),
    }
}
