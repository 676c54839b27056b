//! Why the mempool refused a transaction.

use quarry_chain::{Amount, OutPoint, StoreError, TxError, Txid};
use thiserror::Error;

use quarry_chain::FeeRate;

/// A refused transaction. Each variant carries the values needed to understand it; the
/// `reason` method gives a short machine-readable code like Bitcoin Core's reject reasons.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MempoolError {
    /// The transaction breaks a consensus rule.
    #[error("invalid transaction: {0}")]
    Invalid(#[from] TxError),
    /// Coinbase transactions only exist in blocks.
    #[error("a coinbase transaction is only valid in a block")]
    Coinbase,
    /// The transaction is already in the pool.
    #[error("transaction {txid} is already in the mempool")]
    AlreadyInPool {
        /// The transaction.
        txid: Txid,
    },
    /// Larger than the policy allows.
    #[error("transaction of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Some inputs are neither unspent on the chain nor outputs of pool transactions.
    #[error("inputs missing or already spent: {}", list(missing))]
    MissingInputs {
        /// The missing outpoints.
        missing: Vec<OutPoint>,
    },
    /// Spends an output a pool transaction already spends, and replacement is off.
    #[error("double spend of {outpoint}, already spent by mempool transaction {conflicting}")]
    Conflict {
        /// The contested output.
        outpoint: OutPoint,
        /// The transaction that spends it first.
        conflicting: Txid,
    },
    /// A replacement that does not pay enough to evict what it conflicts with.
    #[error("replacement of {conflicting} rejected: {why}")]
    ReplacementRejected {
        /// A transaction it would replace.
        conflicting: Txid,
        /// What rule it fails.
        why: ReplacementShortfall,
    },
    /// The fee rate is below the minimum relay fee rate.
    #[error("fee rate {rate} is below the minimum relay fee rate {min}")]
    FeeTooLow {
        /// Its fee rate.
        rate: FeeRate,
        /// The minimum.
        min: FeeRate,
    },
    /// Too many unconfirmed ancestors.
    #[error("{count} unconfirmed ancestors (itself included) exceed the limit of {max}")]
    TooManyAncestors {
        /// Its ancestor count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An ancestor would get too many unconfirmed descendants.
    #[error("ancestor {ancestor} would have {count} descendants, over the limit of {max}")]
    TooManyDescendants {
        /// The ancestor.
        ancestor: Txid,
        /// Its descendant count with this transaction.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The pool is full and this transaction pays too little to stay in it.
    #[error("mempool full: fee {fee} for {size} bytes is too low to stay in it")]
    PoolFull {
        /// Its fee.
        fee: Amount,
        /// Its size.
        size: usize,
    },
    /// The UTXO set could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn list(outpoints: &[OutPoint]) -> String {
    outpoints
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl MempoolError {
    /// A short code for the rejection, in the style of Bitcoin Core's reject reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::Coinbase => "coinbase",
            Self::AlreadyInPool { .. } => "txn-already-in-mempool",
            Self::TooLarge { .. } => "tx-size",
            Self::MissingInputs { .. } => "missing-inputs",
            Self::Conflict { .. } => "txn-mempool-conflict",
            Self::ReplacementRejected { .. } => "insufficient-fee",
            Self::FeeTooLow { .. } => "min-relay-fee-not-met",
            Self::TooManyAncestors { .. } => "too-long-mempool-chain",
            Self::TooManyDescendants { .. } => "too-long-mempool-chain",
            Self::PoolFull { .. } => "mempool-full",
            Self::Store(_) => "store-error",
        }
    }
}

/// The replacement rule a transaction fails.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum ReplacementShortfall {
    /// Its fee rate is not above that of a transaction it replaces.
    #[error("its fee rate {new} is not above the replaced transaction's {old}")]
    FeeRate {
        /// The replacement's fee rate.
        new: FeeRate,
        /// The replaced transaction's fee rate.
        old: FeeRate,
    },
    /// It pays less than the transactions it evicts, plus relay fee for its own bytes.
    #[error("it pays {new} but must pay more than the {evicted} it evicts plus {increment} for its own bytes")]
    AbsoluteFee {
        /// The replacement's fee.
        new: Amount,
        /// Fees of all evicted transactions.
        evicted: Amount,
        /// Minimum relay fee of the replacement's bytes.
        increment: Amount,
    },
    /// It would evict too many transactions.
    #[error("it would evict {count} transactions, over the limit of {max}")]
    TooManyEvictions {
        /// Transactions it would evict.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// It spends an output of a transaction it would replace.
    #[error("it spends an output of a transaction it would replace")]
    SpendsReplaced,
}
