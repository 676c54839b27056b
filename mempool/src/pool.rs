//! The pool: unconfirmed transactions valid against the tip's UTXO set plus their in-pool
//! parents, linked to parents and children, with conflict handling, size limits, orphans and
//! expiry, following the chain through connects and reorganisations.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use quarry_chain::validation::isolation::check_transaction;
use quarry_chain::validation::utxo_context::{check_tx_inputs, verify_tx_signatures};
use quarry_chain::{
    Amount, Block, BlockHash, Coin, OutPoint, Transaction, TxOut, Txid, UtxoReader,
};
use tracing::debug;

use crate::config::{compare_rates, MempoolConfig, ReplacementPolicy};
use crate::error::{MempoolError, ReplacementShortfall};
use crate::orphans::OrphanPool;
use quarry_chain::FeeRate;

/// What the pool needs to know of the chain tip.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TipContext {
    /// Height of the tip; pool transactions must be valid in a block at `height + 1`.
    pub height: u32,
    /// The network's genesis hash, committed to by signatures.
    pub genesis: BlockHash,
    /// Coinbase maturity depth.
    pub coinbase_maturity: u32,
}

impl TipContext {
    fn spend_height(&self) -> u32 {
        self.height + 1
    }
}

/// A transaction in the pool.
#[derive(Clone, Debug)]
pub struct PoolEntry {
    /// The transaction.
    pub tx: Arc<Transaction>,
    /// Its id.
    pub txid: Txid,
    /// Inputs minus outputs.
    pub fee: Amount,
    /// Encoded size in bytes.
    pub size: usize,
    /// When it entered the pool (Unix seconds).
    pub time: u64,
    /// The chain's height when it entered the pool.
    pub height: u32,
    /// Arrival order, which is also a topological order (parents arrive first).
    pub sequence: u64,
    /// In-pool transactions it spends outputs of.
    pub parents: BTreeSet<Txid>,
    /// In-pool transactions spending its outputs.
    pub children: BTreeSet<Txid>,
}

impl PoolEntry {
    /// Its own fee rate.
    pub fn fee_rate(&self) -> FeeRate {
        FeeRate::of(self.fee, self.size)
    }
}

/// A transaction the pool took.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Accepted {
    /// The transaction.
    pub txid: Txid,
    /// Its fee.
    pub fee: Amount,
    /// Its size.
    pub size: usize,
    /// Transactions it replaced (conflicts and their descendants).
    pub replaced: Vec<Txid>,
    /// Orphans that could be accepted because of it, in order.
    pub resolved_orphans: Vec<Txid>,
}

/// The outcome of a dry run ([`Mempool::test_accept`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TestAccept {
    /// The transaction.
    pub txid: Txid,
    /// Its fee.
    pub fee: Amount,
    /// Its size.
    pub size: usize,
    /// Transactions it would replace.
    pub replaces: Vec<Txid>,
}

/// A change of the best chain, with the block, as the pool follows it.
#[derive(Clone, Copy, Debug)]
pub enum BlockChange<'a> {
    /// The block was connected.
    Connected(&'a Block),
    /// The block was disconnected.
    Disconnected(&'a Block),
}

/// What following the chain did to the pool.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ChainUpdate {
    /// Transactions removed because a block confirmed them.
    pub confirmed: Vec<Txid>,
    /// Transactions removed because they conflict with the chain or are no longer valid.
    pub removed: Vec<Txid>,
    /// Transactions of disconnected blocks back in the pool.
    pub readded: Vec<Txid>,
}

/// Everything [`Mempool::check`] learns about a transaction it would accept.
#[derive(Debug)]
struct Checked {
    txid: Txid,
    fee: Amount,
    size: usize,
    parents: BTreeSet<Txid>,
    evicted: BTreeSet<Txid>,
}

/// The transaction pool.
#[derive(Debug)]
pub struct Mempool {
    config: MempoolConfig,
    entries: HashMap<Txid, PoolEntry>,
    spent_by: HashMap<OutPoint, Txid>,
    bytes: usize,
    next_sequence: u64,
    orphans: OrphanPool,
}

impl Mempool {
    /// An empty pool with `config`.
    pub fn new(config: MempoolConfig) -> Self {
        let orphans = OrphanPool::new(&config);
        Self {
            config,
            entries: HashMap::new(),
            spent_by: HashMap::new(),
            bytes: 0,
            next_sequence: 0,
            orphans,
        }
    }

    /// The settings.
    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Encoded bytes of all transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Total fees of all transactions.
    pub fn total_fee(&self) -> Amount {
        Amount::checked_sum(self.entries.values().map(|entry| entry.fee))
            .unwrap_or(Amount::MAX_MONEY)
    }

    /// Transactions waiting for missing parents.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// One entry.
    pub fn get(&self, txid: &Txid) -> Option<&PoolEntry> {
        self.entries.get(txid)
    }

    /// Whether `txid` is in the pool.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    /// The pool transaction spending `outpoint`, if any.
    pub fn spender_of(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spent_by.get(outpoint).copied()
    }

    /// All entries in arrival order (parents before children).
    pub fn entries(&self) -> Vec<&PoolEntry> {
        let mut entries: Vec<&PoolEntry> = self.entries.values().collect();
        entries.sort_by_key(|entry| entry.sequence);
        entries
    }

    /// In-pool ancestors of `txid`, itself excluded.
    pub fn ancestors(&self, txid: &Txid) -> BTreeSet<Txid> {
        self.entries
            .get(txid)
            .map(|entry| self.closure(entry.parents.iter().copied(), |entry| &entry.parents))
            .unwrap_or_default()
    }

    /// In-pool descendants of `txid`, itself excluded.
    pub fn descendants(&self, txid: &Txid) -> BTreeSet<Txid> {
        self.entries
            .get(txid)
            .map(|entry| self.closure(entry.children.iter().copied(), |entry| &entry.children))
            .unwrap_or_default()
    }

    /// `start` and everything reachable from it through `links`.
    fn closure(
        &self,
        start: impl IntoIterator<Item = Txid>,
        links: impl Fn(&PoolEntry) -> &BTreeSet<Txid>,
    ) -> BTreeSet<Txid> {
        let mut found = BTreeSet::new();
        let mut queue: VecDeque<Txid> = start.into_iter().collect();
        while let Some(txid) = queue.pop_front() {
            if found.insert(txid) {
                if let Some(entry) = self.entries.get(&txid) {
                    queue.extend(links(entry).iter().copied());
                }
            }
        }
        found
    }

    /// Checks `tx` against the pool and the tip without changing anything (Bitcoin Core's
    /// `testmempoolaccept`).
    pub fn test_accept<R: UtxoReader + ?Sized>(
        &self,
        tx: &Transaction,
        utxos: &R,
        tip: &TipContext,
    ) -> Result<TestAccept, MempoolError> {
        let checked = self.check(tx, utxos, tip, self.config.replacement, true)?;
        Ok(TestAccept {
            txid: checked.txid,
            fee: checked.fee,
            size: checked.size,
            replaces: checked.evicted.into_iter().collect(),
        })
    }

    /// Validates `tx` against the tip's UTXO set (`utxos`) and the pool and adds it, replacing
    /// conflicts if the policy allows. A transaction with missing inputs is held in the orphan
    /// pool (and reported as [`MempoolError::MissingInputs`]) until its parents arrive.
    pub fn accept<R: UtxoReader + ?Sized>(
        &mut self,
        tx: Transaction,
        utxos: &R,
        tip: &TipContext,
        now: u64,
    ) -> Result<Accepted, MempoolError> {
        let mut accepted = self.accept_one(tx, utxos, tip, now)?;
        accepted.resolved_orphans = self.accept_orphans_of(vec![accepted.txid], utxos, tip, now)?;
        Ok(accepted)
    }

    fn accept_one<R: UtxoReader + ?Sized>(
        &mut self,
        tx: Transaction,
        utxos: &R,
        tip: &TipContext,
        now: u64,
    ) -> Result<Accepted, MempoolError> {
        let checked = match self.check(&tx, utxos, tip, self.config.replacement, true) {
            Ok(checked) => checked,
            Err(MempoolError::MissingInputs { missing }) => {
                self.orphans.insert(tx, &missing, now);
                return Err(MempoolError::MissingInputs { missing });
            }
            Err(error) => return Err(error),
        };
        let (txid, fee, size) = (checked.txid, checked.fee, checked.size);
        let replaced: Vec<Txid> = checked.evicted.iter().copied().collect();
        self.insert(Arc::new(tx), checked, (now, tip.height));
        let trimmed = self.trim_to_size();
        if trimmed.contains(&txid) {
            return Err(MempoolError::PoolFull { fee, size });
        }
        debug!(%txid, %fee, size, replaced = replaced.len(), "transaction accepted");
        Ok(Accepted {
            txid,
            fee,
            size,
            replaced,
            resolved_orphans: Vec::new(),
        })
    }

    /// Accepts, breadth first, the orphans waiting on `parents` and on those accepted.
    fn accept_orphans_of<R: UtxoReader + ?Sized>(
        &mut self,
        parents: Vec<Txid>,
        utxos: &R,
        tip: &TipContext,
        now: u64,
    ) -> Result<Vec<Txid>, MempoolError> {
        let mut resolved = Vec::new();
        let mut queue = VecDeque::from(parents);
        while let Some(parent) = queue.pop_front() {
            for orphan in self.orphans.take_children(&parent) {
                match self.accept_one(orphan, utxos, tip, now) {
                    Ok(accepted) => {
                        queue.push_back(accepted.txid);
                        resolved.push(accepted.txid);
                    }
                    Err(MempoolError::Store(error)) => return Err(MempoolError::Store(error)),
                    Err(error) => debug!(%error, "orphan transaction dropped"),
                }
            }
        }
        Ok(resolved)
    }

    /// Every policy and consensus rule, cheapest first, signatures last.
    fn check<R: UtxoReader + ?Sized>(
        &self,
        tx: &Transaction,
        utxos: &R,
        tip: &TipContext,
        replacement: ReplacementPolicy,
        verify_signatures: bool,
    ) -> Result<Checked, MempoolError> {
        if tx.is_coinbase() {
            return Err(MempoolError::Coinbase);
        }
        check_transaction(tx)?;
        let txid = tx.txid();
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::AlreadyInPool { txid });
        }
        let size = tx.encoded_size();
        if size > self.config.max_tx_bytes {
            return Err(MempoolError::TooLarge {
                size,
                max: self.config.max_tx_bytes,
            });
        }
        let mut coins = Vec::with_capacity(tx.inputs.len());
        let mut missing = Vec::new();
        let mut parents = BTreeSet::new();
        let mut conflicts: Vec<(OutPoint, Txid)> = Vec::new();
        for input in &tx.inputs {
            let prevout = input.prevout;
            if let Some(spender) = self.spent_by.get(&prevout) {
                conflicts.push((prevout, *spender));
            }
            let coin = match self.entries.get(&prevout.txid) {
                Some(parent) => {
                    parents.insert(parent.txid);
                    parent
                        .tx
                        .outputs
                        .get(prevout.vout as usize)
                        .map(|output| Coin {
                            output: *output,
                            height: tip.spend_height(),
                            is_coinbase: false,
                        })
                }
                None => utxos.coin(&prevout)?,
            };
            match coin {
                Some(coin) => coins.push(coin),
                None => missing.push(prevout),
            }
        }
        if !missing.is_empty() {
            return Err(MempoolError::MissingInputs { missing });
        }
        let evicted = match (conflicts.first(), replacement) {
            (None, _) => BTreeSet::new(),
            (Some(&(outpoint, conflicting)), ReplacementPolicy::FirstSeen) => {
                return Err(MempoolError::Conflict {
                    outpoint,
                    conflicting,
                })
            }
            (Some(_), ReplacementPolicy::ReplaceByFee) => {
                let direct = conflicts.iter().map(|(_, txid)| *txid);
                let mut evicted: BTreeSet<Txid> = direct.clone().collect();
                for txid in direct {
                    evicted.extend(self.descendants(&txid));
                }
                evicted
            }
        };
        let fee = check_tx_inputs(tx, &coins, tip.spend_height(), tip.coinbase_maturity)?;
        let rate = FeeRate::of(fee, size);
        let min = self.config.min_relay_fee_rate;
        if rate < min || fee < min.fee_for(size) {
            return Err(MempoolError::FeeTooLow { rate, min });
        }
        if let Some(&(_, conflicting)) = conflicts.first() {
            self.check_replacement(fee, size, &conflicts, &evicted, &parents)
                .map_err(|why| MempoolError::ReplacementRejected { conflicting, why })?;
        }
        self.check_package_limits(&parents, &evicted)?;
        if verify_signatures {
            let spent: Vec<TxOut> = coins.iter().map(|coin| coin.output).collect();
            verify_tx_signatures(tx, &spent, tip.genesis)?;
        }
        Ok(Checked {
            txid,
            fee,
            size,
            parents,
            evicted,
        })
    }

    /// Replace-by-fee: a higher fee rate than each directly conflicting transaction, more fee
    /// than everything evicted plus relay fee for its own bytes, a bounded eviction, and no
    /// spending of what it evicts.
    fn check_replacement(
        &self,
        fee: Amount,
        size: usize,
        conflicts: &[(OutPoint, Txid)],
        evicted: &BTreeSet<Txid>,
        parents: &BTreeSet<Txid>,
    ) -> Result<(), ReplacementShortfall> {
        if evicted.len() > self.config.max_replacements {
            return Err(ReplacementShortfall::TooManyEvictions {
                count: evicted.len(),
                max: self.config.max_replacements,
            });
        }
        if parents.iter().any(|parent| evicted.contains(parent)) {
            return Err(ReplacementShortfall::SpendsReplaced);
        }
        for (_, txid) in conflicts {
            let old = &self.entries[txid];
            if compare_rates(fee, size, old.fee, old.size).is_le() {
                return Err(ReplacementShortfall::FeeRate {
                    new: FeeRate::of(fee, size),
                    old: old.fee_rate(),
                });
            }
        }
        let evicted_fees = Amount::checked_sum(evicted.iter().map(|txid| self.entries[txid].fee))
            .unwrap_or(Amount::MAX_MONEY);
        let increment = self.config.min_relay_fee_rate.fee_for(size);
        let required = evicted_fees.checked_add(increment);
        if fee <= evicted_fees || required.is_none_or(|required| fee < required) {
            return Err(ReplacementShortfall::AbsoluteFee {
                new: fee,
                evicted: evicted_fees,
                increment,
            });
        }
        Ok(())
    }

    /// Ancestor and descendant count limits, not counting transactions to be evicted.
    fn check_package_limits(
        &self,
        parents: &BTreeSet<Txid>,
        evicted: &BTreeSet<Txid>,
    ) -> Result<(), MempoolError> {
        let ancestors = self.closure(parents.iter().copied(), |entry| &entry.parents);
        let count = ancestors.len() + 1;
        if count > self.config.max_ancestors {
            return Err(MempoolError::TooManyAncestors {
                count,
                max: self.config.max_ancestors,
            });
        }
        for ancestor in &ancestors {
            let descendants = self.descendants(ancestor);
            let count = descendants.difference(evicted).count() + 2;
            if count > self.config.max_descendants {
                return Err(MempoolError::TooManyDescendants {
                    ancestor: *ancestor,
                    count,
                    max: self.config.max_descendants,
                });
            }
        }
        Ok(())
    }

    fn insert(&mut self, tx: Arc<Transaction>, checked: Checked, (time, height): (u64, u32)) {
        for txid in &checked.evicted {
            self.remove_entry(txid);
        }
        for input in &tx.inputs {
            self.spent_by.insert(input.prevout, checked.txid);
        }
        for parent in &checked.parents {
            if let Some(parent) = self.entries.get_mut(parent) {
                parent.children.insert(checked.txid);
            }
        }
        self.bytes += checked.size;
        self.entries.insert(
            checked.txid,
            PoolEntry {
                tx,
                txid: checked.txid,
                fee: checked.fee,
                size: checked.size,
                time,
                height,
                sequence: self.next_sequence,
                parents: checked.parents,
                children: BTreeSet::new(),
            },
        );
        self.next_sequence += 1;
    }

    /// Removes one entry and its links; its children lose it as a parent.
    fn remove_entry(&mut self, txid: &Txid) -> Option<PoolEntry> {
        let entry = self.entries.remove(txid)?;
        self.bytes -= entry.size;
        for input in &entry.tx.inputs {
            if self.spent_by.get(&input.prevout) == Some(txid) {
                self.spent_by.remove(&input.prevout);
            }
        }
        for parent in &entry.parents {
            if let Some(parent) = self.entries.get_mut(parent) {
                parent.children.remove(txid);
            }
        }
        for child in &entry.children {
            if let Some(child) = self.entries.get_mut(child) {
                child.parents.remove(txid);
            }
        }
        Some(entry)
    }

    /// Removes `txid` and all its descendants; returns what was removed.
    pub fn remove_with_descendants(&mut self, txid: &Txid) -> Vec<Txid> {
        if !self.entries.contains_key(txid) {
            return Vec::new();
        }
        let mut removed = vec![*txid];
        removed.extend(self.descendants(txid));
        for txid in &removed {
            self.remove_entry(txid);
        }
        removed
    }

    /// Evicts the packages (a transaction with its descendants) of lowest fee rate until the
    /// pool fits its byte limit; returns the evicted transactions.
    fn trim_to_size(&mut self) -> BTreeSet<Txid> {
        let mut trimmed = BTreeSet::new();
        while self.bytes > self.config.max_bytes {
            let worst = self
                .entries
                .values()
                .map(|entry| {
                    let package = self.descendants(&entry.txid);
                    let (fee, size) = self.totals(package.iter().chain([&entry.txid]));
                    (entry.txid, fee, size)
                })
                .min_by(|a, b| compare_rates(a.1, a.2, b.1, b.2).then(b.0.cmp(&a.0)));
            let Some((txid, _, _)) = worst else { break };
            trimmed.extend(self.remove_with_descendants(&txid));
        }
        trimmed
    }

    /// Summed fees and sizes of `txids`.
    fn totals<'a>(&self, txids: impl IntoIterator<Item = &'a Txid>) -> (Amount, usize) {
        txids
            .into_iter()
            .filter_map(|txid| self.entries.get(txid))
            .fold((Amount::ZERO, 0), |(fee, size), entry| {
                (
                    fee.checked_add(entry.fee).unwrap_or(Amount::MAX_MONEY),
                    size + entry.size,
                )
            })
    }

    /// Removes transactions older than the expiry and orphans older than theirs; returns the
    /// expired pool transactions (with their descendants).
    pub fn expire(&mut self, now: u64) -> Vec<Txid> {
        let cutoff = now.saturating_sub(self.config.expiry_secs);
        let old: Vec<Txid> = self
            .entries
            .values()
            .filter(|entry| entry.time < cutoff)
            .map(|entry| entry.txid)
            .collect();
        let expired: Vec<Txid> = old
            .iter()
            .flat_map(|txid| self.remove_with_descendants(txid))
            .collect();
        self.orphans.expire(now);
        expired
    }

    /// Follows the best chain through `changes` (in the order the chain made them; the store
    /// behind `utxos` and `tip` already reflect the last one). Confirmed transactions leave
    /// the pool with those that conflict with a block; after a reorganisation, transactions of
    /// disconnected blocks that are still valid come back, and every entry is checked again
    /// against the new tip.
    pub fn update<'a, R: UtxoReader + ?Sized>(
        &mut self,
        changes: impl IntoIterator<Item = BlockChange<'a>>,
        utxos: &R,
        tip: &TipContext,
        now: u64,
    ) -> Result<ChainUpdate, MempoolError> {
        let mut update = ChainUpdate::default();
        let mut disconnected: VecDeque<Transaction> = VecDeque::new();
        let mut confirmed_txids = Vec::new();
        let mut reorganised = false;
        for change in changes {
            match change {
                BlockChange::Connected(block) => {
                    let confirmed: BTreeSet<Txid> =
                        block.transactions.iter().map(Transaction::txid).collect();
                    disconnected.retain(|tx| !confirmed.contains(&tx.txid()));
                    self.remove_for_block(block, &mut update);
                    confirmed_txids.extend(confirmed);
                }
                BlockChange::Disconnected(block) => {
                    reorganised = true;
                    // Blocks come tip first: earlier blocks' transactions go in front.
                    for tx in block.transactions.iter().skip(1).rev() {
                        disconnected.push_front(tx.clone());
                    }
                }
            }
        }
        if reorganised {
            self.recheck_all(disconnected, utxos, tip, now, &mut update)?;
        }
        update
            .readded
            .extend(self.accept_orphans_of(confirmed_txids, utxos, tip, now)?);
        Ok(update)
    }

    /// Removes the block's transactions from the pool, and pool transactions spending the
    /// same outputs with their descendants.
    fn remove_for_block(&mut self, block: &Block, update: &mut ChainUpdate) {
        for tx in block.transactions.iter().skip(1) {
            let txid = tx.txid();
            if self.remove_entry(&txid).is_some() {
                update.confirmed.push(txid);
            }
            for input in &tx.inputs {
                if let Some(conflicting) = self.spent_by.get(&input.prevout).copied() {
                    update
                        .removed
                        .extend(self.remove_with_descendants(&conflicting));
                }
            }
        }
    }

    /// Re-validates the transactions of disconnected blocks, then every pool entry in arrival
    /// order, against the new tip. Signatures are not checked again: they commit to the outputs
    /// they spend, which an outpoint always names the same way.
    fn recheck_all<R: UtxoReader + ?Sized>(
        &mut self,
        disconnected: VecDeque<Transaction>,
        utxos: &R,
        tip: &TipContext,
        now: u64,
        update: &mut ChainUpdate,
    ) -> Result<(), MempoolError> {
        let previous: Vec<(Arc<Transaction>, (u64, u32), bool)> = {
            let mut entries: Vec<PoolEntry> =
                self.entries.drain().map(|(_, entry)| entry).collect();
            entries.sort_by_key(|entry| entry.sequence);
            entries
                .into_iter()
                .map(|entry| (entry.tx, (entry.time, entry.height), false))
                .collect()
        };
        self.spent_by.clear();
        self.bytes = 0;
        let candidates = disconnected
            .into_iter()
            .map(|tx| (Arc::new(tx), (now, tip.height), true))
            .chain(previous);
        for (tx, entered, from_block) in candidates {
            match self.check(&tx, utxos, tip, ReplacementPolicy::FirstSeen, false) {
                Ok(checked) => {
                    if from_block {
                        update.readded.push(checked.txid);
                    }
                    self.insert(tx, checked, entered);
                }
                Err(MempoolError::Store(error)) => return Err(MempoolError::Store(error)),
                Err(error) => {
                    if !from_block {
                        debug!(txid = %tx.txid(), %error, "transaction no longer valid after a reorganisation");
                        update.removed.push(tx.txid());
                    }
                }
            }
        }
        self.trim_to_size();
        Ok(())
    }
}

impl Default for Mempool {
    fn default() -> Self {
        Self::new(MempoolConfig::default())
    }
}

/// Orders `txids` of the pool so that parents come before children.
pub(crate) fn by_arrival(pool: &Mempool, txids: impl IntoIterator<Item = Txid>) -> Vec<Txid> {
    let mut txids: Vec<Txid> = txids.into_iter().collect();
    txids.sort_by_key(|txid| pool.get(txid).map_or(u64::MAX, |entry| entry.sequence));
    txids
}

/// Summed fee and size of a set of pool transactions (for the template selection).
pub(crate) fn package_totals<'a>(
    pool: &Mempool,
    txids: impl IntoIterator<Item = &'a Txid>,
) -> (Amount, usize) {
    pool.totals(txids)
}
