//! The block index: every known block header with its height, cumulative work and validation
//! status, linked into a tree by parent hashes.

use std::collections::{HashMap, HashSet};

use bincode::de::{BorrowDecoder, Decoder};
use bincode::enc::Encoder;
use bincode::error::{DecodeError as BincodeDecodeError, EncodeError};
use bincode::{BorrowDecode, Decode, Encode};

use crate::block::BlockHeader;
use crate::hash::BlockHash;
use crate::pow::Work;
use crate::retarget::HeaderSummary;
use crate::validation::header_context::{median_time, MEDIAN_TIME_SPAN};

/// How far a block in the index has been validated.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
pub enum BlockStatus {
    /// Header known and valid in its context, body not stored (e.g. a block once refused and
    /// then reconsidered: its body must be sent again).
    HeaderOnly,
    /// Body stored; it passed the context-free and header-context rules, not yet connected.
    DataStored,
    /// Connected to the chain at least once: every rule passed.
    Valid,
    /// The block breaks a rule.
    Invalid,
    /// An ancestor breaks a rule, or was invalidated by the operator.
    InvalidAncestor,
    /// The operator marked the block invalid (`invalidateblock`); no rule is known broken, so
    /// peers that send it or its descendants are not at fault.
    Invalidated,
}

impl BlockStatus {
    /// Whether the block is known to be invalid, itself or through an ancestor.
    pub fn is_invalid(self) -> bool {
        matches!(
            self,
            Self::Invalid | Self::InvalidAncestor | Self::Invalidated
        )
    }
}

/// One block's entry in the index.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
pub struct IndexEntry {
    /// The header.
    pub header: BlockHeader,
    /// Height (genesis is 0).
    pub height: u32,
    /// Work of the chain from genesis up to and including this block.
    pub chain_work: Work,
    /// Validation status.
    pub status: BlockStatus,
    /// Arrival order, numbered when the block's whole chain of bodies has arrived
    /// ([`UNSEQUENCED`](crate::chain::UNSEQUENCED) before): among chains of equal work, the
    /// lowest wins.
    pub sequence: u64,
}

impl IndexEntry {
    /// What retargeting needs of this header.
    pub fn summary(&self) -> HeaderSummary {
        HeaderSummary {
            height: self.height,
            time: self.header.time,
            bits: self.header.bits,
        }
    }
}

impl Encode for Work {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.to_be_bytes().encode(encoder)
    }
}

impl<Context> Decode<Context> for Work {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, BincodeDecodeError> {
        Ok(Self::from_be_bytes(<[u8; 32]>::decode(decoder)?))
    }
}

impl<'de, Context> BorrowDecode<'de, Context> for Work {
    fn borrow_decode<D: BorrowDecoder<'de, Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, BincodeDecodeError> {
        Self::decode(decoder)
    }
}

/// The tree of known blocks.
#[derive(Debug, Default)]
pub struct BlockIndex {
    entries: HashMap<BlockHash, IndexEntry>,
    children: HashMap<BlockHash, Vec<BlockHash>>,
    /// Entries without children: the tips of branches, kept so that listing them does not
    /// scan the whole index.
    leaves: HashSet<BlockHash>,
}

impl BlockIndex {
    /// The entry of `hash`.
    pub fn get(&self, hash: &BlockHash) -> Option<&IndexEntry> {
        self.entries.get(hash)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds or replaces an entry.
    pub fn insert(&mut self, hash: BlockHash, entry: IndexEntry) {
        if self.entries.insert(hash, entry).is_some() {
            return;
        }
        if !self.children.contains_key(&hash) {
            self.leaves.insert(hash);
        }
        if entry.height > 0 {
            let parent = entry.header.prev_blockhash;
            self.children.entry(parent).or_default().push(hash);
            self.leaves.remove(&parent);
        }
    }

    /// Sets the status of an existing entry and returns the updated entry.
    pub fn set_status(&mut self, hash: &BlockHash, status: BlockStatus) -> Option<IndexEntry> {
        let entry = self.entries.get_mut(hash)?;
        entry.status = status;
        Some(*entry)
    }

    /// Entries without children.
    pub fn leaves(&self) -> impl Iterator<Item = &BlockHash> {
        self.leaves.iter()
    }

    /// The known children of `hash`.
    pub fn children(&self, hash: &BlockHash) -> &[BlockHash] {
        self.children.get(hash).map_or(&[], Vec::as_slice)
    }

    /// All descendants of `hash`, parents before children.
    pub fn descendants(&self, hash: &BlockHash) -> Vec<BlockHash> {
        let mut found = Vec::new();
        let mut next = vec![*hash];
        while let Some(current) = next.pop() {
            for child in self.children(&current) {
                found.push(*child);
                next.push(*child);
            }
        }
        found
    }

    /// The ancestor of `hash` at `height` (`hash` itself at its own height), walking parent links.
    pub fn ancestor(&self, hash: &BlockHash, height: u32) -> Option<(BlockHash, &IndexEntry)> {
        let mut current = *hash;
        loop {
            let entry = self.entries.get(&current)?;
            if entry.height == height {
                return Some((current, entry));
            }
            if entry.height < height {
                return None;
            }
            current = entry.header.prev_blockhash;
        }
    }

    /// The median time of `hash` and up to ten of its ancestors: a block's time must exceed the
    /// median time past of its parent.
    pub fn median_time_past(&self, hash: &BlockHash) -> u32 {
        let mut times = Vec::with_capacity(MEDIAN_TIME_SPAN);
        let mut current = self.entries.get(hash);
        while let Some(entry) = current {
            times.push(entry.header.time);
            if times.len() == MEDIAN_TIME_SPAN || entry.height == 0 {
                break;
            }
            current = self.entries.get(&entry.header.prev_blockhash);
        }
        median_time(times)
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = (&BlockHash, &IndexEntry)> {
        self.entries.iter()
    }
}

impl BlockIndex {
    /// The `bits` a child of `parent` must carry, or `None` if `parent` is not indexed.
    pub fn next_work_required(
        &self,
        params: &crate::params::ChainParams,
        parent: &BlockHash,
    ) -> Option<crate::pow::CompactTarget> {
        let parent_entry = self.get(parent)?;
        Some(crate::retarget::next_work_required(
            &params.retarget_params(),
            &parent_entry.summary(),
            |height| {
                self.ancestor(parent, height)
                    .map(|(_, entry)| entry.summary())
                    .expect("the index holds every ancestor of an indexed block")
            },
        ))
    }
}
