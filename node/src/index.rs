//! The node's address and transaction index, kept in its own RocksDB database beside the chain
//! store: for every output key, its unspent outputs and the confirmed transactions that paid
//! or spent it; for every confirmed transaction, its block. Wallets ask the node for their
//! coins and history through it instead of scanning the chain.
//!
//! Like Bitcoin Core's indexes it follows the chain on its own: it records the block it is in
//! step with, and [`AddressIndex::catch_up`] walks from there to the chain's best tip, undoing
//! blocks of an abandoned branch (from the chain's undo data) and applying new ones, one atomic
//! batch per block. A crash between batches loses nothing: the next start resumes.

use std::collections::BTreeMap;
use std::path::Path;

use bincode::{Decode, Encode};
use quarry_chain::encode::{decode, encode};
use quarry_chain::{
    Amount, Block, BlockHash, BlockUndo, ChainReader, Coin, OutPoint, OutputKey, StoreError, Txid,
};
use quarry_store::rocksdb::{ColumnFamily, WriteBatch, DB};
use quarry_store::{database, open_versioned};

/// The on-disk format of the index. Bump it with any change of keys or values.
const FORMAT_VERSION: u32 = 1;

const CF_META: &str = "meta";
const CF_TRANSACTIONS: &str = "transactions";
const CF_HISTORY: &str = "address_history";
const CF_UTXOS: &str = "address_utxos";
const COLUMN_FAMILIES: [&str; 4] = [CF_META, CF_TRANSACTIONS, CF_HISTORY, CF_UTXOS];

const META_TIP: &[u8] = b"tip";

/// What one confirmed transaction did to one key's balance.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
struct Flows {
    received: Amount,
    sent: Amount,
}

impl Flows {
    const NONE: Self = Self {
        received: Amount::ZERO,
        sent: Amount::ZERO,
    };
}

/// One confirmed transaction touching a key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HistoryEntry {
    /// Height of its block.
    pub height: u32,
    /// The transaction.
    pub txid: Txid,
    /// Sum of its outputs paying the key.
    pub received: Amount,
    /// Sum of the key's coins it spent.
    pub sent: Amount,
}

/// Whether a block is being applied to the index or undone.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Connect,
    Disconnect,
}

/// How far one call to [`AddressIndex::catch_up`] moved the index.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CatchUp {
    /// Blocks applied.
    pub connected: u32,
    /// Blocks undone.
    pub disconnected: u32,
    /// Why the index was emptied and rebuilt from genesis, if it was: it stood on a block the
    /// chain store cannot undo (a store rolled back under it).
    pub rebuilt: Option<String>,
}

/// The address and transaction index.
#[derive(Debug)]
pub struct AddressIndex {
    db: DB,
    genesis: BlockHash,
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt {
        what: format!("address index: {what}"),
    }
}

fn missing(what: &str, hash: BlockHash) -> StoreError {
    StoreError::Corrupt {
        what: format!("{what} of block {hash} is missing from the chain store"),
    }
}

fn outpoint_bytes(outpoint: &OutPoint) -> [u8; 36] {
    let mut bytes = [0; 36];
    bytes[..32].copy_from_slice(outpoint.txid.as_byte_array());
    bytes[32..].copy_from_slice(&outpoint.vout.to_be_bytes());
    bytes
}

/// `key ‖ txid ‖ vout`: a key's coins are one contiguous range.
fn utxo_key(key: &OutputKey, outpoint: &OutPoint) -> Vec<u8> {
    [&key.to_byte_array()[..], &outpoint_bytes(outpoint)].concat()
}

/// `key ‖ height ‖ txid`: a key's history is one range, oldest first.
fn history_key(key: &OutputKey, height: u32, txid: &Txid) -> Vec<u8> {
    [
        &key.to_byte_array()[..],
        &height.to_be_bytes(),
        txid.as_byte_array(),
    ]
    .concat()
}

fn hash_from(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| corrupt(format!("{what} of {} bytes", bytes.len())))
}

impl AddressIndex {
    /// Opens (creating if needed) the index in `path` for the chain starting at `genesis`.
    pub fn open(path: &Path, genesis: BlockHash) -> Result<Self, StoreError> {
        let db = open_versioned(path, &COLUMN_FAMILIES, CF_META, FORMAT_VERSION)?;
        Ok(Self { db, genesis })
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| corrupt(format!("column family {name} is missing")))
    }

    /// The block the index is in step with (genesis before the first block).
    pub fn tip(&self) -> Result<BlockHash, StoreError> {
        match self
            .db
            .get_cf(self.cf(CF_META)?, META_TIP)
            .map_err(database)?
        {
            None => Ok(self.genesis),
            Some(bytes) => Ok(BlockHash::from_byte_array(hash_from(&bytes, "tip")?)),
        }
    }

    /// Brings the index in step with the best chain of `chain`: undoes blocks the chain has
    /// left, then applies the chain's blocks above the fork point. Safe to call while the chain
    /// moves; it stops at the tip it finds.
    pub fn catch_up<R: ChainReader + ?Sized>(&self, chain: &R) -> Result<CatchUp, StoreError> {
        let mut progress = CatchUp::default();
        loop {
            let tip = self.tip()?;
            let Some(entry) = chain.index_entry(&tip)? else {
                // The chain store does not know the index's tip: it was rolled back under the
                // index (a restored backup, lost writes). Nothing can undo the index's blocks.
                let why = format!("its tip {tip} is unknown to the chain store");
                progress.rebuilt = Some(self.reset(why)?);
                continue;
            };
            if chain.hash_at_height(entry.height)? != Some(tip) {
                let Some((block, undo)) = stored_body_and_undo(chain, tip)? else {
                    let why = format!("the chain store cannot undo its tip {tip}");
                    progress.rebuilt = Some(self.reset(why)?);
                    continue;
                };
                self.write(&block, &undo, entry.height, Step::Disconnect)?;
                progress.disconnected += 1;
                continue;
            }
            let Some(next) = chain.hash_at_height(entry.height + 1)? else {
                return Ok(progress);
            };
            let next_entry = chain
                .index_entry(&next)?
                .ok_or_else(|| missing("index entry", next))?;
            if next_entry.header.prev_blockhash != tip {
                // The chain reorganised between the two reads: look again.
                continue;
            }
            let (block, undo) = body_and_undo(chain, next)?;
            self.write(&block, &undo, next_entry.height, Step::Connect)?;
            progress.connected += 1;
        }
    }

    /// Empties the index (back to genesis, to be rebuilt by catching up); returns `why`.
    fn reset(&self, why: String) -> Result<String, StoreError> {
        // Longer than any key, so the range holds them all.
        let end = [0xff_u8; 128];
        let mut batch = WriteBatch::default();
        for family in [CF_TRANSACTIONS, CF_HISTORY, CF_UTXOS] {
            batch.delete_range_cf(self.cf(family)?, [].as_slice(), end.as_slice());
        }
        batch.delete_cf(self.cf(CF_META)?, META_TIP);
        self.db.write(batch).map_err(database)?;
        Ok(why)
    }

    /// Applies or undoes `block` at `height` in one atomic batch that also moves the index tip.
    fn write(
        &self,
        block: &Block,
        undo: &BlockUndo,
        height: u32,
        step: Step,
    ) -> Result<(), StoreError> {
        let connect = step == Step::Connect;
        let (transactions, history, utxos) = (
            self.cf(CF_TRANSACTIONS)?,
            self.cf(CF_HISTORY)?,
            self.cf(CF_UTXOS)?,
        );
        let block_hash = block.block_hash();
        let mut batch = WriteBatch::default();
        let mut spent = undo.spent.iter();
        for tx in &block.transactions {
            let txid = tx.txid();
            let mut flows: BTreeMap<OutputKey, Flows> = BTreeMap::new();
            if !tx.is_coinbase() {
                for input in &tx.inputs {
                    let coin = spent
                        .next()
                        .ok_or_else(|| missing("an undo record", block_hash))?;
                    let key = utxo_key(&coin.output.pubkey, &input.prevout);
                    if connect {
                        batch.delete_cf(utxos, key);
                    } else {
                        batch.put_cf(utxos, key, encode(coin));
                    }
                    let entry = flows.entry(coin.output.pubkey).or_insert(Flows::NONE);
                    entry.sent = add(entry.sent, coin.output.value)?;
                }
            }
            for (vout, output) in (0u32..).zip(&tx.outputs) {
                let key = utxo_key(&output.pubkey, &OutPoint { txid, vout });
                if connect {
                    let coin = Coin {
                        output: *output,
                        height,
                        is_coinbase: tx.is_coinbase(),
                    };
                    batch.put_cf(utxos, key, encode(&coin));
                } else {
                    batch.delete_cf(utxos, key);
                }
                let entry = flows.entry(output.pubkey).or_insert(Flows::NONE);
                entry.received = add(entry.received, output.value)?;
            }
            for (key, flows) in &flows {
                let key = history_key(key, height, &txid);
                if connect {
                    batch.put_cf(history, key, encode(flows));
                } else {
                    batch.delete_cf(history, key);
                }
            }
            if connect {
                batch.put_cf(
                    transactions,
                    txid.as_byte_array(),
                    block_hash.as_byte_array(),
                );
            } else {
                batch.delete_cf(transactions, txid.as_byte_array());
            }
        }
        let tip = if connect {
            block_hash
        } else {
            block.header.prev_blockhash
        };
        batch.put_cf(self.cf(CF_META)?, META_TIP, tip.as_byte_array());
        self.db.write(batch).map_err(database)?;
        Ok(())
    }

    /// The block holding confirmed transaction `txid`, if the index has reached it.
    pub fn transaction_block(&self, txid: &Txid) -> Result<Option<BlockHash>, StoreError> {
        self.db
            .get_cf(self.cf(CF_TRANSACTIONS)?, txid.as_byte_array())
            .map_err(database)?
            .map(|bytes| Ok(BlockHash::from_byte_array(hash_from(&bytes, "block hash")?)))
            .transpose()
    }

    /// Every record under `key`'s prefix in `family`, decoded; the key suffix is passed along.
    fn prefixed<T: bincode::Decode<()>>(
        &self,
        family: &'static str,
        key: &OutputKey,
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        let prefix = key.to_byte_array();
        self.db
            .prefix_iterator_cf(self.cf(family)?, prefix)
            .take_while(|item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
            .map(|item| {
                let (k, value) = item.map_err(database)?;
                let value =
                    decode(&value).map_err(|error| corrupt(format!("{family} record: {error}")))?;
                Ok((k[prefix.len()..].to_vec(), value))
            })
            .collect()
    }

    /// The confirmed unspent outputs locked to `key`, by outpoint.
    pub fn utxos(&self, key: &OutputKey) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        self.prefixed::<Coin>(CF_UTXOS, key)?
            .into_iter()
            .map(|(suffix, coin)| {
                let txid = hash_from(suffix.get(..32).unwrap_or_default(), "outpoint")?;
                let vout = <[u8; 4]>::try_from(suffix.get(32..).unwrap_or_default())
                    .map_err(|_| corrupt("outpoint index".into()))?;
                let outpoint = OutPoint {
                    txid: Txid::from_byte_array(txid),
                    vout: u32::from_be_bytes(vout),
                };
                Ok((outpoint, coin))
            })
            .collect()
    }

    /// The confirmed transactions that paid or spent `key`, oldest first.
    pub fn history(&self, key: &OutputKey) -> Result<Vec<HistoryEntry>, StoreError> {
        self.prefixed::<Flows>(CF_HISTORY, key)?
            .into_iter()
            .map(|(suffix, flows)| {
                let height = <[u8; 4]>::try_from(suffix.get(..4).unwrap_or_default())
                    .map_err(|_| corrupt("history height".into()))?;
                let txid = hash_from(suffix.get(4..).unwrap_or_default(), "history txid")?;
                Ok(HistoryEntry {
                    height: u32::from_be_bytes(height),
                    txid: Txid::from_byte_array(txid),
                    received: flows.received,
                    sent: flows.sent,
                })
            })
            .collect()
    }
}

fn add(total: Amount, value: Amount) -> Result<Amount, StoreError> {
    total
        .checked_add(value)
        .ok_or_else(|| corrupt("a transaction's flows exceed the money supply".into()))
}

fn body_and_undo<R: ChainReader + ?Sized>(
    chain: &R,
    hash: BlockHash,
) -> Result<(Block, BlockUndo), StoreError> {
    stored_body_and_undo(chain, hash)?.ok_or_else(|| missing("body or undo data", hash))
}

/// The body and undo data of `hash`, if the chain store has both.
fn stored_body_and_undo<R: ChainReader + ?Sized>(
    chain: &R,
    hash: BlockHash,
) -> Result<Option<(Block, BlockUndo)>, StoreError> {
    Ok(chain.block(&hash)?.zip(chain.undo(&hash)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_chain::testing::WorkloadBuilder;
    use quarry_chain::ChainReader;

    /// The index's coins of every key equal the chain's UTXO set, and each key's history adds up
    /// to its coins: received − sent = unspent value.
    fn assert_matches_chain(index: &AddressIndex, builder: &WorkloadBuilder) {
        let store = builder.harness.chain.store();
        assert_eq!(index.tip().unwrap(), builder.harness.chain.tip_hash());
        let mut by_key: BTreeMap<OutputKey, Vec<(OutPoint, Coin)>> = BTreeMap::new();
        for (outpoint, coin) in store.utxo_set().unwrap() {
            by_key
                .entry(coin.output.pubkey)
                .or_default()
                .push((outpoint, coin));
        }
        assert!(!by_key.is_empty());
        for (key, coins) in &by_key {
            assert_eq!(&index.utxos(key).unwrap(), coins);
            let history = index.history(key).unwrap();
            let received: u64 = history.iter().map(|e| e.received.to_sat()).sum();
            let sent: u64 = history.iter().map(|e| e.sent.to_sat()).sum();
            let unspent: u64 = coins.iter().map(|(_, c)| c.output.value.to_sat()).sum();
            assert_eq!(received - sent, unspent, "history of {key} adds up");
            assert!(history.windows(2).all(|w| w[0].height <= w[1].height));
            for entry in history {
                let block = index.transaction_block(&entry.txid).unwrap().unwrap();
                assert_eq!(store.hash_at_height(entry.height).unwrap(), Some(block));
            }
        }
    }

    #[test]
    fn the_index_follows_the_best_chain_through_reorganisations() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = WorkloadBuilder::new(11);
        let genesis = builder.harness.genesis();
        let index = AddressIndex::open(dir.path(), genesis).unwrap();
        assert_eq!(index.tip().unwrap(), genesis);
        for _ in 0..30 {
            builder.extend(4);
        }
        let store = builder.harness.chain.store().clone();
        assert_eq!(
            index.catch_up(&store).unwrap(),
            CatchUp {
                connected: 30,
                disconnected: 0,
                rebuilt: None,
            }
        );
        assert_matches_chain(&index, &builder);

        // A branch from three blocks back overtakes the tip: three undone, four applied.
        let abandoned = store
            .block(&builder.harness.chain.tip_hash())
            .unwrap()
            .unwrap();
        builder.overtake(3, 4);
        let store = builder.harness.chain.store().clone();
        assert_eq!(
            index.catch_up(&store).unwrap(),
            CatchUp {
                connected: 4,
                disconnected: 3,
                rebuilt: None,
            }
        );
        assert_matches_chain(&index, &builder);
        let coinbase = abandoned.transactions[0].txid();
        assert_eq!(index.transaction_block(&coinbase).unwrap(), None);

        // Reopened, the index resumes where it was.
        drop(index);
        let index = AddressIndex::open(dir.path(), genesis).unwrap();
        for _ in 0..5 {
            builder.extend(4);
        }
        let store = builder.harness.chain.store().clone();
        assert_eq!(index.catch_up(&store).unwrap().connected, 5);
        assert_matches_chain(&index, &builder);
    }

    #[test]
    fn an_index_ahead_of_its_chain_store_is_rebuilt_to_match_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = WorkloadBuilder::new(12);
        let genesis = builder.harness.genesis();
        let index = AddressIndex::open(dir.path(), genesis).unwrap();
        for _ in 0..10 {
            builder.extend(3);
        }
        index.catch_up(builder.harness.chain.store()).unwrap();
        // Another chain store of the same network that never saw the index's tip.
        let mut behind = WorkloadBuilder::new(13);
        for _ in 0..4 {
            behind.extend(3);
        }
        let progress = index.catch_up(behind.harness.chain.store()).unwrap();
        assert!(progress
            .rebuilt
            .unwrap()
            .contains("unknown to the chain store"));
        assert_eq!(progress.connected, 4);
        assert_matches_chain(&index, &behind);
    }
}
