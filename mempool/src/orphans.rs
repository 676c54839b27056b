//! Transactions whose inputs are missing, held (bounded in count and bytes, with expiry) until
//! a parent arrives.

use std::collections::{HashMap, VecDeque};

use quarry_chain::{OutPoint, Transaction, Txid};

use crate::config::MempoolConfig;

#[derive(Debug)]
struct Orphan {
    tx: Transaction,
    size: usize,
    time: u64,
    waiting_on: Vec<Txid>,
}

/// The orphan pool; the oldest orphan is evicted first when a limit is reached.
#[derive(Debug)]
pub(crate) struct OrphanPool {
    orphans: HashMap<Txid, Orphan>,
    by_parent: HashMap<Txid, Vec<Txid>>,
    arrival: VecDeque<Txid>,
    bytes: usize,
    max_count: usize,
    max_bytes: usize,
    expiry_secs: u64,
}

impl OrphanPool {
    pub(crate) fn new(config: &MempoolConfig) -> Self {
        Self {
            orphans: HashMap::new(),
            by_parent: HashMap::new(),
            arrival: VecDeque::new(),
            bytes: 0,
            max_count: config.max_orphans,
            max_bytes: config.max_orphan_bytes,
            expiry_secs: config.orphan_expiry_secs,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.orphans.len()
    }

    /// Holds `tx`, waiting on the transactions that created its `missing` inputs.
    pub(crate) fn insert(&mut self, tx: Transaction, missing: &[OutPoint], now: u64) {
        let txid = tx.txid();
        let size = tx.encoded_size();
        if self.orphans.contains_key(&txid) || size > self.max_bytes || self.max_count == 0 {
            return;
        }
        while self.orphans.len() >= self.max_count || self.bytes + size > self.max_bytes {
            let Some(oldest) = self.arrival.front().copied() else {
                break;
            };
            self.remove(&oldest);
        }
        let mut waiting_on: Vec<Txid> = missing.iter().map(|outpoint| outpoint.txid).collect();
        waiting_on.sort();
        waiting_on.dedup();
        for parent in &waiting_on {
            self.by_parent.entry(*parent).or_default().push(txid);
        }
        self.arrival.push_back(txid);
        self.bytes += size;
        self.orphans.insert(
            txid,
            Orphan {
                tx,
                size,
                time: now,
                waiting_on,
            },
        );
    }

    fn remove(&mut self, txid: &Txid) -> Option<Transaction> {
        let orphan = self.orphans.remove(txid)?;
        self.bytes -= orphan.size;
        self.arrival.retain(|queued| queued != txid);
        for parent in &orphan.waiting_on {
            if let Some(children) = self.by_parent.get_mut(parent) {
                children.retain(|child| child != txid);
                if children.is_empty() {
                    self.by_parent.remove(parent);
                }
            }
        }
        Some(orphan.tx)
    }

    /// Removes and returns the orphans waiting on `parent`, oldest first.
    pub(crate) fn take_children(&mut self, parent: &Txid) -> Vec<Transaction> {
        let children = self.by_parent.get(parent).cloned().unwrap_or_default();
        children
            .iter()
            .filter_map(|child| self.remove(child))
            .collect()
    }

    /// Drops orphans that waited longer than the expiry.
    pub(crate) fn expire(&mut self, now: u64) {
        let cutoff = now.saturating_sub(self.expiry_secs);
        let expired: Vec<Txid> = self
            .orphans
            .iter()
            .filter(|(_, orphan)| orphan.time < cutoff)
            .map(|(txid, _)| *txid)
            .collect();
        for txid in expired {
            self.remove(&txid);
        }
    }
}
