//! The RocksDB chain store: one column family per kind of record, typed key and value codecs,
//! a format version check, and every [`ChainBatch`] written as one atomic `WriteBatch`.

use std::collections::BTreeMap;
use std::path::Path;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};

use quarry_chain::encode::{decode, encode};
use quarry_chain::{
    Block, BlockHash, BlockHeader, BlockUndo, ChainBatch, ChainReader, ChainWriter, Coin,
    IndexEntry, OutPoint, SharedChainWriter, StoreError, Txid, UtxoReader,
};

/// The on-disk format this code reads and writes. Bump it with any change of keys or values.
pub const FORMAT_VERSION: u32 = 1;

const CF_INDEX: &str = "block_index";
const CF_BLOCKS: &str = "block_bodies";
const CF_HEIGHTS: &str = "best_chain_heights";
const CF_UTXO: &str = "utxo";
const CF_UNDO: &str = "undo";
const CF_META: &str = "meta";
const COLUMN_FAMILIES: [&str; 6] = [CF_INDEX, CF_BLOCKS, CF_HEIGHTS, CF_UTXO, CF_UNDO, CF_META];

const META_FORMAT: &[u8] = b"format_version";
const META_TIP: &[u8] = b"tip";

/// The chain's state in a RocksDB database. Every commit is one atomic write-ahead-logged
/// batch: a crash of the process loses nothing committed. Whether a commit also waits for the
/// disk (fsync) is [`RocksStore::with_synced_writes`]'s choice: without it a power loss may
/// lose the last commits, and the store reopens at an earlier, consistent tip.
#[derive(Debug)]
pub struct RocksStore {
    db: DB,
    synced_writes: bool,
}

impl RocksStore {
    /// Opens (creating if needed) the database in `path`. A database written in another format
    /// is refused with an error naming both versions.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = open_versioned(path, &COLUMN_FAMILIES, CF_META, FORMAT_VERSION)?;
        Ok(Self {
            db,
            synced_writes: false,
        })
    }

    /// Makes every commit wait until it is on disk (fsync), so a power loss loses nothing
    /// committed; costs a disk flush per block.
    pub fn with_synced_writes(mut self, synced: bool) -> Self {
        self.synced_writes = synced;
        self
    }

    fn write_batch(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut options = WriteOptions::default();
        options.set_sync(self.synced_writes);
        self.db.write_opt(batch, &options).map_err(database)?;
        Ok(())
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| corrupt(format!("column family {name} is missing")))
    }

    fn get(&self, family: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(family)?, key).map_err(database)
    }

    fn get_decoded<T: bincode::Decode<()>>(
        &self,
        family: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.get(family, key)?
            .map(|bytes| {
                decode(&bytes).map_err(|error| corrupt(format!("{family} record: {error}")))
            })
            .transpose()
    }
}

/// The write-ahead logs' total size before RocksDB flushes the memtables they hold. RocksDB
/// reserves each new log file on disk (fallocate) at 1.1 × the write buffer, 64 MiB by default,
/// unless this is smaller: without it every store took 70 MiB of disk before its first block,
/// 150 MiB a node with its indexes, which bounded a one-machine testnet by disk (89 nodes used
/// 13 GB). The store bench connects as fast with it (flushes come every 16 MiB written).
const MAX_TOTAL_WAL_BYTES: u64 = 16 << 20;

/// Opens (creating if needed) a database in `path` with the column `families` (LZ4
/// compressed), and checks the format version kept in `meta_family`: a new database gets
/// `format_version`, an existing one in another version is refused with an error naming both.
/// The chain store and the node's indexes share it.
pub fn open_versioned(
    path: &Path,
    families: &[&str],
    meta_family: &str,
    format_version: u32,
) -> Result<DB, StoreError> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    options.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
    let descriptors = families
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, options.clone()));
    let db = DB::open_cf_descriptors(&options, path, descriptors).map_err(database)?;
    let meta = db
        .cf_handle(meta_family)
        .ok_or_else(|| corrupt(format!("column family {meta_family} is missing")))?;
    match db.get_cf(meta, META_FORMAT).map_err(database)? {
        None => db
            .put_cf(meta, META_FORMAT, format_version.to_le_bytes())
            .map_err(database)?,
        Some(bytes) => {
            let found = <[u8; 4]>::try_from(bytes.as_slice())
                .map(u32::from_le_bytes)
                .map_err(|_| corrupt(format!("format version of {} bytes", bytes.len())))?;
            if found != format_version {
                return Err(StoreError::FormatVersion {
                    found,
                    expected: format_version,
                });
            }
        }
    }
    Ok(db)
}

/// A RocksDB failure as the chain's storage error, keeping RocksDB's message (which names the
/// cause: I/O error, full disk, a lock held by another process).
pub fn database(error: rocksdb::Error) -> StoreError {
    StoreError::Database(error.into_string())
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

fn outpoint_key(outpoint: &OutPoint) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(outpoint.txid.as_byte_array());
    key[32..].copy_from_slice(&outpoint.vout.to_be_bytes());
    key
}

fn outpoint_from_key(key: &[u8]) -> Result<OutPoint, StoreError> {
    let txid: [u8; 32] = key
        .get(..32)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| corrupt(format!("UTXO key of {} bytes", key.len())))?;
    let vout: [u8; 4] = key
        .get(32..)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| corrupt(format!("UTXO key of {} bytes", key.len())))?;
    Ok(OutPoint {
        txid: Txid::from_byte_array(txid),
        vout: u32::from_be_bytes(vout),
    })
}

fn block_hash_from(bytes: &[u8], what: &str) -> Result<BlockHash, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(BlockHash::from_byte_array)
        .map_err(|_| corrupt(format!("{what} of {} bytes", bytes.len())))
}

impl UtxoReader for RocksStore {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        self.get_decoded(CF_UTXO, &outpoint_key(outpoint))
    }
}

impl ChainReader for RocksStore {
    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        self.get_decoded(CF_BLOCKS, hash.as_byte_array())
    }

    fn undo(&self, hash: &BlockHash) -> Result<Option<BlockUndo>, StoreError> {
        self.get_decoded(CF_UNDO, hash.as_byte_array())
    }

    fn index_entries(&self) -> Result<Vec<(BlockHash, IndexEntry)>, StoreError> {
        self.db
            .iterator_cf(self.cf(CF_INDEX)?, IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.map_err(database)?;
                let hash = block_hash_from(&key, "block index key")?;
                let entry = decode(&value)
                    .map_err(|error| corrupt(format!("index entry of {hash}: {error}")))?;
                Ok((hash, entry))
            })
            .collect()
    }

    fn index_entry(&self, hash: &BlockHash) -> Result<Option<IndexEntry>, StoreError> {
        self.get_decoded(CF_INDEX, hash.as_byte_array())
    }

    fn tip(&self) -> Result<Option<BlockHash>, StoreError> {
        self.get(CF_META, META_TIP)?
            .map(|bytes| block_hash_from(&bytes, "tip"))
            .transpose()
    }

    fn hash_at_height(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        self.get(CF_HEIGHTS, &height.to_be_bytes())?
            .map(|bytes| block_hash_from(&bytes, "height index value"))
            .transpose()
    }

    fn utxo_set(&self) -> Result<BTreeMap<OutPoint, Coin>, StoreError> {
        self.db
            .iterator_cf(self.cf(CF_UTXO)?, IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.map_err(database)?;
                let outpoint = outpoint_from_key(&key)?;
                let coin =
                    decode(&value).map_err(|error| corrupt(format!("coin {outpoint}: {error}")))?;
                Ok((outpoint, coin))
            })
            .collect()
    }
}

impl RocksStore {
    /// Writes `batch` as one atomic `WriteBatch`. RocksDB takes concurrent reads, so the store
    /// can be shared (`Arc<RocksStore>`) between its one writer and any number of readers.
    fn write_batch_of(&self, batch: ChainBatch) -> Result<(), StoreError> {
        let mut write = WriteBatch::default();
        let index = self.cf(CF_INDEX)?;
        for (hash, entry) in &batch.index {
            write.put_cf(index, hash.as_byte_array(), encode(entry));
        }
        let blocks = self.cf(CF_BLOCKS)?;
        for (hash, block) in &batch.blocks {
            write.put_cf(blocks, hash.as_byte_array(), encode(block));
        }
        let undo = self.cf(CF_UNDO)?;
        for (hash, data) in &batch.undo {
            write.put_cf(undo, hash.as_byte_array(), encode(data));
        }
        let utxo = self.cf(CF_UTXO)?;
        for (outpoint, coin) in &batch.coins {
            match coin {
                Some(coin) => write.put_cf(utxo, outpoint_key(outpoint), encode(coin)),
                None => write.delete_cf(utxo, outpoint_key(outpoint)),
            }
        }
        let heights = self.cf(CF_HEIGHTS)?;
        for (height, hash) in &batch.heights {
            match hash {
                Some(hash) => write.put_cf(heights, height.to_be_bytes(), hash.as_byte_array()),
                None => write.delete_cf(heights, height.to_be_bytes()),
            }
        }
        if let Some(tip) = batch.tip {
            write.put_cf(self.cf(CF_META)?, META_TIP, tip.as_byte_array());
        }
        self.write_batch(write)
    }

    fn headers_of_bodies(&self) -> Result<Vec<BlockHeader>, StoreError> {
        self.db
            .iterator_cf(self.cf(CF_BLOCKS)?, IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.map_err(database)?;
                let hash = block_hash_from(&key, "block body key")?;
                let block: Block = decode(&value)
                    .map_err(|error| corrupt(format!("block body {hash}: {error}")))?;
                Ok(block.header)
            })
            .collect()
    }

    /// Deletes the block index, the best-chain height index, the UTXO set, the undo data and
    /// the tip in one atomic batch, keeping the block bodies.
    fn clear(&self) -> Result<(), StoreError> {
        // Every key of these families is shorter than this bound and sorts below it.
        let end = [0xff_u8; 64];
        let mut write = WriteBatch::default();
        for family in [CF_INDEX, CF_HEIGHTS, CF_UTXO, CF_UNDO] {
            write.delete_range_cf(self.cf(family)?, [].as_slice(), end.as_slice());
        }
        write.delete_cf(self.cf(CF_META)?, META_TIP);
        self.write_batch(write)
    }
}

impl ChainWriter for RocksStore {
    fn commit(&mut self, batch: ChainBatch) -> Result<(), StoreError> {
        self.write_batch_of(batch)
    }

    fn stored_headers(&self) -> Result<Vec<BlockHeader>, StoreError> {
        self.headers_of_bodies()
    }

    fn clear_chain_state(&mut self) -> Result<(), StoreError> {
        self.clear()
    }
}

impl SharedChainWriter for RocksStore {
    fn write(&self, batch: ChainBatch) -> Result<(), StoreError> {
        self.write_batch_of(batch)
    }

    fn stored_headers(&self) -> Result<Vec<BlockHeader>, StoreError> {
        self.headers_of_bodies()
    }

    fn clear_chain_state(&self) -> Result<(), StoreError> {
        self.clear()
    }
}
