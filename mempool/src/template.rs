//! Block templates: transactions chosen by ancestor fee rate (a child can pay for its parent)
//! up to the block size limit, and the coinbase value they allow.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use quarry_chain::encode::MAX_BLOCK_BYTES;
use quarry_chain::{Amount, BlockHash, CompactTarget, NextBlock, Transaction, Txid};

use crate::config::compare_rates;
use crate::pool::{by_arrival, package_totals, Mempool};

/// Bytes of a block kept for the header, the transaction count and the coinbase.
pub const COINBASE_RESERVE_BYTES: usize = 1_000;

/// What a miner needs to build the next block.
#[derive(Clone, Debug)]
pub struct BlockTemplate {
    /// Parent: the current tip.
    pub prev_blockhash: BlockHash,
    /// Height of the block.
    pub height: u32,
    /// Required target.
    pub bits: CompactTarget,
    /// Timestamp to use (at least the median time past + 1).
    pub time: u32,
    /// Transactions after the coinbase, parents before children.
    pub transactions: Vec<Arc<Transaction>>,
    /// Their total fee.
    pub fees: Amount,
    /// Encoded bytes of those transactions.
    pub transactions_size: usize,
    /// What the coinbase may pay out: subsidy plus fees.
    pub coinbase_value: Amount,
}

/// A package (a transaction with its not-yet-selected ancestors) and its summed fee and size,
/// ordered by fee rate, then by txid for determinism.
#[derive(PartialEq, Eq, Debug)]
struct Package {
    fee: Amount,
    size: usize,
    txid: Txid,
}

impl Ord for Package {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_rates(self.fee, self.size, other.fee, other.size)
            .then_with(|| other.txid.cmp(&self.txid))
    }
}

impl PartialOrd for Package {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The state of a selection: what is in, and each candidate's current package score.
#[derive(Default)]
struct Selection {
    included: HashSet<Txid>,
    scores: HashMap<Txid, (Amount, usize)>,
    heap: BinaryHeap<Package>,
}

impl Selection {
    /// `txid` with its ancestors not yet included.
    fn package_of(&self, pool: &Mempool, txid: &Txid) -> BTreeSet<Txid> {
        let mut package: BTreeSet<Txid> = pool
            .ancestors(txid)
            .into_iter()
            .filter(|ancestor| !self.included.contains(ancestor))
            .collect();
        package.insert(*txid);
        package
    }

    /// Scores `txid`'s package again; older heap entries for it become stale.
    fn rescore(&mut self, pool: &Mempool, txid: Txid) {
        let (fee, size) = package_totals(pool, &self.package_of(pool, &txid));
        self.scores.insert(txid, (fee, size));
        self.heap.push(Package { fee, size, txid });
    }
}

/// Consecutive packages that did not fit after which selection stops.
const MAX_MISFITS: usize = 1_000;

impl Mempool {
    /// Chooses transactions of at most `max_bytes` in total, best ancestor fee rate first.
    /// Returns them (parents before children), their total fee and their size.
    pub fn select_transactions(&self, max_bytes: usize) -> (Vec<Arc<Transaction>>, Amount, usize) {
        let mut selection = Selection::default();
        for entry in self.entries() {
            selection.rescore(self, entry.txid);
        }
        let mut selected = Vec::new();
        let (mut fees, mut used, mut misfits) = (Amount::ZERO, 0, 0);
        while let Some(top) = selection.heap.pop() {
            let current = selection.scores.get(&top.txid) == Some(&(top.fee, top.size));
            if selection.included.contains(&top.txid) || !current {
                continue;
            }
            if used + top.size > max_bytes {
                misfits += 1;
                if misfits > MAX_MISFITS {
                    break;
                }
                continue;
            }
            misfits = 0;
            let package = by_arrival(self, selection.package_of(self, &top.txid));
            for txid in &package {
                let entry = self.get(txid).expect("packages hold pool transactions");
                selection.included.insert(*txid);
                selected.push(Arc::clone(&entry.tx));
            }
            fees = fees.checked_add(top.fee).unwrap_or(Amount::MAX_MONEY);
            used += top.size;
            let affected: BTreeSet<Txid> = package
                .iter()
                .flat_map(|txid| self.descendants(txid))
                .filter(|txid| !selection.included.contains(txid))
                .collect();
            for txid in affected {
                selection.rescore(self, txid);
            }
        }
        (selected, fees, used)
    }

    /// A template for the block on top of the tip described by `next`, whose subsidy is
    /// `subsidy`, timestamped `now` (or the earliest allowed time if later).
    pub fn block_template(&self, next: &NextBlock, subsidy: Amount, now: u64) -> BlockTemplate {
        let (transactions, fees, transactions_size) =
            self.select_transactions(MAX_BLOCK_BYTES - COINBASE_RESERVE_BYTES);
        let now = u32::try_from(now).unwrap_or(u32::MAX);
        BlockTemplate {
            prev_blockhash: next.prev_blockhash,
            height: next.height,
            bits: next.bits,
            time: now.max(next.min_time),
            transactions,
            fees,
            transactions_size,
            coinbase_value: subsidy.checked_add(fees).unwrap_or(Amount::MAX_MONEY),
        }
    }
}
