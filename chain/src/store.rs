//! Storage traits of the chain, split into a reader and a writer, the atomic [`ChainBatch`]
//! every change goes through, and [`MemoryStore`], an in-memory store for tests and benchmarks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::block::{Block, BlockHeader};
use crate::error::StoreError;
use crate::hash::BlockHash;
use crate::index::IndexEntry;
use crate::transaction::OutPoint;
use crate::utxo::{BlockUndo, Coin, UtxoDiff, UtxoReader};

/// Read access to everything the chain stores.
pub trait ChainReader: UtxoReader {
    /// A stored block body.
    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError>;
    /// A connected block's undo data.
    fn undo(&self, hash: &BlockHash) -> Result<Option<BlockUndo>, StoreError>;
    /// Every block index entry, to rebuild the in-memory index at start-up.
    fn index_entries(&self) -> Result<Vec<(BlockHash, IndexEntry)>, StoreError>;
    /// One block's index entry (header, height, work, status).
    fn index_entry(&self, hash: &BlockHash) -> Result<Option<IndexEntry>, StoreError>;
    /// The tip of the best chain, `None` in an empty store.
    fn tip(&self) -> Result<Option<BlockHash>, StoreError>;
    /// The best chain's block at `height`.
    fn hash_at_height(&self, height: u32) -> Result<Option<BlockHash>, StoreError>;
    /// The whole UTXO set, ordered by outpoint (for audits and tests: it reads everything).
    fn utxo_set(&self) -> Result<BTreeMap<OutPoint, Coin>, StoreError>;
}

impl<T: UtxoReader + ?Sized> UtxoReader for Arc<T> {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        (**self).coin(outpoint)
    }
}

impl<T: ChainReader + ?Sized> ChainReader for Arc<T> {
    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        (**self).block(hash)
    }

    fn undo(&self, hash: &BlockHash) -> Result<Option<BlockUndo>, StoreError> {
        (**self).undo(hash)
    }

    fn index_entries(&self) -> Result<Vec<(BlockHash, IndexEntry)>, StoreError> {
        (**self).index_entries()
    }

    fn index_entry(&self, hash: &BlockHash) -> Result<Option<IndexEntry>, StoreError> {
        (**self).index_entry(hash)
    }

    fn tip(&self) -> Result<Option<BlockHash>, StoreError> {
        (**self).tip()
    }

    fn hash_at_height(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        (**self).hash_at_height(height)
    }

    fn utxo_set(&self) -> Result<BTreeMap<OutPoint, Coin>, StoreError> {
        (**self).utxo_set()
    }
}

/// Write access: one atomic commit per change, and the two steps of a reindex.
pub trait ChainWriter {
    /// Applies every change of `batch` or, on error, none of them.
    fn commit(&mut self, batch: ChainBatch) -> Result<(), StoreError>;
    /// The headers of every stored block body, in no particular order: what a reindex
    /// connects again.
    fn stored_headers(&self) -> Result<Vec<BlockHeader>, StoreError>;
    /// Deletes the block index, the best-chain height index, the UTXO set, the undo data and
    /// the tip in one atomic step, keeping the block bodies: the first step of a reindex.
    fn clear_chain_state(&mut self) -> Result<(), StoreError>;
}

/// A store that writes through a shared reference (its engine takes concurrent reads while it
/// writes), so one `Arc` of it serves the chain actor as its writer and any number of readers.
pub trait SharedChainWriter {
    /// Applies every change of `batch` or, on error, none of them.
    fn write(&self, batch: ChainBatch) -> Result<(), StoreError>;
    /// See [`ChainWriter::stored_headers`].
    fn stored_headers(&self) -> Result<Vec<BlockHeader>, StoreError>;
    /// See [`ChainWriter::clear_chain_state`].
    fn clear_chain_state(&self) -> Result<(), StoreError>;
}

impl<T: SharedChainWriter + ?Sized> ChainWriter for Arc<T> {
    fn commit(&mut self, batch: ChainBatch) -> Result<(), StoreError> {
        (**self).write(batch)
    }

    fn stored_headers(&self) -> Result<Vec<BlockHeader>, StoreError> {
        (**self).stored_headers()
    }

    fn clear_chain_state(&mut self) -> Result<(), StoreError> {
        (**self).clear_chain_state()
    }
}

/// A set of changes applied atomically: a block connected or disconnected is one batch (UTXO
/// changes, undo data, index entries, height index and tip together).
#[must_use = "a batch changes nothing until it is committed"]
#[derive(Debug, Default)]
pub struct ChainBatch {
    /// Index entries to write.
    pub index: Vec<(BlockHash, IndexEntry)>,
    /// Block bodies to write.
    pub blocks: Vec<(BlockHash, Block)>,
    /// Undo data to write.
    pub undo: Vec<(BlockHash, BlockUndo)>,
    /// UTXO changes.
    pub coins: UtxoDiff,
    /// Best-chain height index changes (`None` removes the height).
    pub heights: Vec<(u32, Option<BlockHash>)>,
    /// The new tip, if it changes.
    pub tip: Option<BlockHash>,
}

/// A store held in memory, for tests and benchmarks. Nodes use `quarry_store::RocksStore`.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    blocks: HashMap<BlockHash, Block>,
    undo: HashMap<BlockHash, BlockUndo>,
    index: HashMap<BlockHash, IndexEntry>,
    coins: HashMap<OutPoint, Coin>,
    heights: HashMap<u32, BlockHash>,
    tip: Option<BlockHash>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl UtxoReader for MemoryStore {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        Ok(self.coins.get(outpoint).copied())
    }
}

impl ChainReader for MemoryStore {
    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        Ok(self.blocks.get(hash).cloned())
    }

    fn undo(&self, hash: &BlockHash) -> Result<Option<BlockUndo>, StoreError> {
        Ok(self.undo.get(hash).cloned())
    }

    fn index_entries(&self) -> Result<Vec<(BlockHash, IndexEntry)>, StoreError> {
        Ok(self.index.iter().map(|(k, v)| (*k, *v)).collect())
    }

    fn index_entry(&self, hash: &BlockHash) -> Result<Option<IndexEntry>, StoreError> {
        Ok(self.index.get(hash).copied())
    }

    fn tip(&self) -> Result<Option<BlockHash>, StoreError> {
        Ok(self.tip)
    }

    fn hash_at_height(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        Ok(self.heights.get(&height).copied())
    }

    fn utxo_set(&self) -> Result<BTreeMap<OutPoint, Coin>, StoreError> {
        Ok(self.coins.iter().map(|(k, v)| (*k, *v)).collect())
    }
}

impl ChainWriter for MemoryStore {
    fn commit(&mut self, batch: ChainBatch) -> Result<(), StoreError> {
        self.index.extend(batch.index);
        self.blocks.extend(batch.blocks);
        self.undo.extend(batch.undo);
        for (outpoint, coin) in batch.coins {
            match coin {
                Some(coin) => self.coins.insert(outpoint, coin),
                None => self.coins.remove(&outpoint),
            };
        }
        for (height, hash) in batch.heights {
            match hash {
                Some(hash) => self.heights.insert(height, hash),
                None => self.heights.remove(&height),
            };
        }
        if let Some(tip) = batch.tip {
            self.tip = Some(tip);
        }
        Ok(())
    }

    fn stored_headers(&self) -> Result<Vec<BlockHeader>, StoreError> {
        Ok(self.blocks.values().map(|block| block.header).collect())
    }

    fn clear_chain_state(&mut self) -> Result<(), StoreError> {
        self.index.clear();
        self.heights.clear();
        self.coins.clear();
        self.undo.clear();
        self.tip = None;
        Ok(())
    }
}
