//! Mempool settings.

use std::cmp::Ordering;

use quarry_chain::{Amount, FeeRate};
use serde::{Deserialize, Serialize};

/// Compares the exact fee rates `fee_a / size_a` and `fee_b / size_b` without rounding.
pub fn compare_rates(fee_a: Amount, size_a: usize, fee_b: Amount, size_b: usize) -> Ordering {
    let left = u128::from(fee_a.to_sat()) * size_b.max(1) as u128;
    let right = u128::from(fee_b.to_sat()) * size_a.max(1) as u128;
    left.cmp(&right)
}

/// What happens to a transaction that spends an output a pool transaction already spends.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplacementPolicy {
    /// The first transaction seen stays; the newcomer is rejected.
    #[default]
    FirstSeen,
    /// The newcomer replaces the conflicting transactions (and their descendants) if it pays
    /// a higher fee rate than each of them and more absolute fee than all of them together,
    /// plus the minimum relay fee for its own bytes.
    ReplaceByFee,
}

/// Mempool policy. Every field has a default; a TOML section may set any of them.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Bytes of transactions held at most; the lowest fee-rate packages are evicted beyond.
    pub max_bytes: usize,
    /// Transactions paying less are not accepted (also the increment a replacement must pay).
    pub min_relay_fee_rate: FeeRate,
    /// Conflict handling.
    pub replacement: ReplacementPolicy,
    /// Unconfirmed ancestors of a transaction, itself included, at most.
    pub max_ancestors: usize,
    /// Unconfirmed descendants of a transaction, itself included, at most.
    pub max_descendants: usize,
    /// Transactions evicted by one replacement, at most.
    pub max_replacements: usize,
    /// Largest transaction accepted, in bytes.
    pub max_tx_bytes: usize,
    /// Seconds a transaction may wait in the pool before it expires.
    pub expiry_secs: u64,
    /// Transactions with missing inputs held at most.
    pub max_orphans: usize,
    /// Bytes of transactions with missing inputs held at most.
    pub max_orphan_bytes: usize,
    /// Seconds an orphan transaction waits for its parents.
    pub orphan_expiry_secs: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_bytes: 100 * 1024 * 1024,
            min_relay_fee_rate: FeeRate::from_sat_per_kb(1000),
            replacement: ReplacementPolicy::FirstSeen,
            max_ancestors: 25,
            max_descendants: 25,
            max_replacements: 100,
            max_tx_bytes: 100_000,
            expiry_secs: 14 * 24 * 3600,
            max_orphans: 100,
            max_orphan_bytes: 5 * 1024 * 1024,
            orphan_expiry_secs: 20 * 60,
        }
    }
}
