//! Errors of the chain crate. Every message names the offending values.

use thiserror::Error;

use crate::amount::Amount;
use crate::hash::{BlockHash, MerkleRoot, Txid};
use crate::pow::CompactTarget;
use crate::transaction::OutPoint;

/// Text that is not a 64-digit hex hash.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{input:?} is not a hash: expected 64 hexadecimal digits")]
pub struct ParseHashError {
    /// The start of the text given.
    pub input: String,
}

/// Text that is not an amount of coins.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{input:?} is not an amount of coins: {reason}")]
pub struct ParseAmountError {
    /// The start of the text given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Bytes that are not the canonical encoding of a consensus object.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes than any consensus object may have.
    #[error("{len} bytes is over the {max}-byte decode limit")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes do not decode.
    #[error("malformed {type_name}: {reason}")]
    Malformed {
        /// What was being decoded.
        type_name: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// The bytes decode but leave some over, which a canonical encoding never does.
    #[error("{extra} trailing bytes after a {type_name}")]
    TrailingBytes {
        /// What was decoded.
        type_name: &'static str,
        /// Bytes left over.
        extra: usize,
    },
}

/// Bad network parameters.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// Neither a built-in network nor an existing file.
    #[error("'{name}' is not a network: use main, testnet or regtest, or the path of a network parameters file")]
    UnknownNetwork {
        /// What was given.
        name: String,
    },
    /// The parameters file could not be read.
    #[error("cannot read network parameters from {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`crate::NetworkSpec`].
    #[error("invalid network parameters file: {message}")]
    Toml {
        /// The parser's message, with line and column.
        message: String,
    },
    /// A field has a value the chain cannot work with.
    #[error("invalid network parameter {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// A transaction breaks a consensus rule.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxError {
    /// No inputs.
    #[error("transaction has no inputs")]
    NoInputs,
    /// No outputs.
    #[error("transaction has no outputs")]
    NoOutputs,
    /// Too large to fit in a block.
    #[error("transaction is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An output above the money supply.
    #[error("output {index} of {value} coins exceeds the 21,000,000-coin money supply")]
    OutputTooLarge {
        /// The output.
        index: usize,
        /// Its value.
        value: Amount,
    },
    /// Outputs adding up past the money supply.
    #[error("outputs add up to more than the 21,000,000-coin money supply")]
    OutputsOverflow,
    /// The same outpoint spent twice.
    #[error("input {index} spends {outpoint}, already spent by an earlier input")]
    DuplicateInput {
        /// The second input.
        index: usize,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// A non-coinbase input with a null prevout.
    #[error("input {index} of a non-coinbase transaction spends the null outpoint")]
    NullPrevout {
        /// The input.
        index: usize,
    },
    /// A coinbase witness that is too short or too long.
    #[error("coinbase witness is {len} bytes; it must be 12 to 100 (height, extra nonce, tag)")]
    BadCoinbaseWitness {
        /// Its length.
        len: usize,
    },
    /// An input witness that is not a 64-byte signature.
    #[error("input {index} witness is {len} bytes; it must be a 64-byte Schnorr signature")]
    BadWitnessLength {
        /// The input.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// An input spends an output that does not exist or is already spent.
    #[error("input {index} spends {outpoint}, which is missing or already spent")]
    MissingOrSpent {
        /// The input.
        index: usize,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// An input spends a coinbase output before it matured.
    #[error(
        "input {index} spends coinbase output {outpoint} from height {coin_height} at height \
         {spend_height}; coinbase outputs mature after {maturity} blocks"
    )]
    ImmatureCoinbase {
        /// The input.
        index: usize,
        /// The outpoint.
        outpoint: OutPoint,
        /// Height of the coinbase.
        coin_height: u32,
        /// Height of the spend.
        spend_height: u32,
        /// The maturity depth.
        maturity: u32,
    },
    /// Inputs adding up past the money supply.
    #[error("inputs add up to more than the 21,000,000-coin money supply")]
    InputsOverflow,
    /// Spends more than its inputs hold.
    #[error("outputs of {outputs} coins exceed inputs of {inputs} coins")]
    OutputsExceedInputs {
        /// Sum of inputs.
        inputs: Amount,
        /// Sum of outputs.
        outputs: Amount,
    },
    /// A signature that does not verify.
    #[error("input {index} signature does not verify against the key of {outpoint}")]
    BadSignature {
        /// The input.
        index: usize,
        /// The outpoint spent.
        outpoint: OutPoint,
    },
}

/// A block breaks a consensus rule. Rules are listed cheap-first, in the order checked.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockError {
    /// Too many bytes.
    #[error("block is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// No transactions at all.
    #[error("block has no transactions")]
    NoTransactions,
    /// `bits` that are negative, overflowing, zero or easier than the network allows.
    #[error("block bits {bits} are not a valid target within the network's pow limit")]
    BadTarget {
        /// The bits.
        bits: CompactTarget,
    },
    /// The hash does not meet the block's own target.
    #[error("block hash {hash} does not meet its target {bits}")]
    InsufficientProofOfWork {
        /// The hash.
        hash: BlockHash,
        /// The claimed target.
        bits: CompactTarget,
    },
    /// The header's merkle root is not the root of the transactions.
    #[error("merkle root {header} in the header, but the transactions give {computed}")]
    BadMerkleRoot {
        /// In the header.
        header: MerkleRoot,
        /// Computed.
        computed: MerkleRoot,
    },
    /// A transaction list that hashes like another (duplicated transactions, CVE-2012-2459).
    #[error("transaction list is mutated: repeated transactions give a colliding merkle tree")]
    MutatedMerkleTree,
    /// The first transaction is not a coinbase.
    #[error("first transaction {txid} is not a coinbase")]
    FirstNotCoinbase {
        /// Its txid.
        txid: Txid,
    },
    /// A coinbase after the first transaction.
    #[error("transaction {index} ({txid}) is a second coinbase")]
    ExtraCoinbase {
        /// Position in the block.
        index: usize,
        /// Its txid.
        txid: Txid,
    },
    /// A transaction breaks a rule.
    #[error("transaction {index} ({txid}): {source}")]
    Transaction {
        /// Position in the block.
        index: usize,
        /// Its txid.
        txid: Txid,
        /// The rule broken (boxed to keep block errors small).
        source: Box<TxError>,
    },
    /// Parent not known (the block is held as an orphan).
    #[error("parent {parent} is unknown")]
    UnknownParent {
        /// The parent.
        parent: BlockHash,
    },
    /// Parent known to be invalid.
    #[error("parent {parent} is invalid")]
    InvalidParent {
        /// The parent.
        parent: BlockHash,
    },
    /// `bits` differ from the retarget rule's.
    #[error("block bits {actual} at height {height}, but the retarget rule requires {expected}")]
    WrongDifficulty {
        /// The block's height.
        height: u32,
        /// In the header.
        actual: CompactTarget,
        /// Required.
        expected: CompactTarget,
    },
    /// Time not after the median of the last 11 blocks.
    #[error("block time {time} is not after the median time {median} of the previous 11 blocks")]
    TimeTooOld {
        /// Block time.
        time: u32,
        /// Median time past.
        median: u32,
    },
    /// The first block of a retarget period is dated more than two hours before its parent
    /// (BIP54's fix of the time-warp attack).
    #[error(
        "block time {time} opens a retarget period more than 7200 s before its parent's {parent}"
    )]
    TimeWarp {
        /// Block time.
        time: u32,
        /// The parent's time.
        parent: u32,
    },
    /// Time too far ahead of the local clock (not cached as invalid: it may become valid).
    #[error("block time {time} is more than {max_drift} s ahead of the local clock {now}")]
    TimeTooNew {
        /// Block time.
        time: u32,
        /// Local clock.
        now: u64,
        /// Allowed drift.
        max_drift: u32,
    },
    /// The coinbase does not commit to the block's height.
    #[error("coinbase commits to height {found:?}, but the block is at height {height}")]
    BadCoinbaseHeight {
        /// The block's height.
        height: u32,
        /// What the coinbase holds.
        found: Option<u32>,
    },
    /// The coinbase claims more than subsidy plus fees.
    #[error("coinbase pays {paid} coins, but subsidy {subsidy} plus fees {fees} allow only that")]
    CoinbaseTooLarge {
        /// Paid out.
        paid: Amount,
        /// The height's subsidy.
        subsidy: Amount,
        /// The block's fees.
        fees: Amount,
    },
    /// Fees of the block add up past the money supply.
    #[error("the block's fees add up to more than the money supply")]
    FeesOverflow,
}

impl BlockError {
    /// Whether the error is about this particular copy of the block (malformed bytes, a mutated
    /// transaction list, a clock that may catch up) rather than about the block its header
    /// names. Such errors must not mark the header invalid: an honest copy may still arrive.
    pub fn is_copy_specific(&self) -> bool {
        matches!(
            self,
            Self::TooLarge { .. }
                | Self::NoTransactions
                | Self::BadMerkleRoot { .. }
                | Self::MutatedMerkleTree
                | Self::TimeTooNew { .. }
                | Self::UnknownParent { .. }
        )
    }
}

/// A failure of the storage behind the chain.
#[derive(Clone, Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database engine failed (I/O error, full disk, lock held by another process…).
    #[error("database error: {0}")]
    Database(String),
    /// The database was written in another format.
    #[error(
        "the database is in format version {found}, but this node reads version {expected}; \
         use a data directory made by this version"
    )]
    FormatVersion {
        /// Version on disk.
        found: u32,
        /// Version this code reads.
        expected: u32,
    },
    /// Stored data that should be there is missing or does not decode.
    #[error("chain store is corrupt: {what}")]
    Corrupt {
        /// What is wrong.
        what: String,
    },
}

/// A failure processing a block or changing the chain.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The block breaks a consensus rule.
    #[error("block {hash} rejected: {source}")]
    InvalidBlock {
        /// The block.
        hash: BlockHash,
        /// The rule broken.
        source: BlockError,
    },
    /// The block was already found invalid.
    #[error("block {hash} is known to be invalid")]
    KnownInvalid {
        /// The block.
        hash: BlockHash,
    },
    /// The block is, or descends from, a block the operator invalidated (`invalidateblock`):
    /// refused, but no rule is known broken. Nothing about it is recorded, so that it is taken
    /// again after `reconsiderblock`.
    #[error("block {hash} is on a chain this node's operator invalidated")]
    Invalidated {
        /// The block.
        hash: BlockHash,
    },
    /// The block is not in the index.
    #[error("block {hash} is not known")]
    UnknownBlock {
        /// The block.
        hash: BlockHash,
    },
    /// The genesis block cannot be invalidated.
    #[error("the genesis block cannot be invalidated")]
    GenesisImmutable,
    /// The store holds the chain of another network (another genesis block): not damage, but
    /// the wrong data directory, or a local network whose parameters changed.
    #[error(
        "this chain store belongs to another network: its genesis block is {found}, and \
         {network}'s is {expected}; use the data directory of that network, or a new one (or \
         remove this one to start {network} from scratch)"
    )]
    OtherNetwork {
        /// The network asked for.
        network: String,
        /// Its genesis block.
        expected: BlockHash,
        /// The genesis block in the store.
        found: BlockHash,
    },
    /// Storage failed; the chain state on disk is unchanged by the failed step.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain actor has stopped (shut down, or stopped by a storage failure).
    #[error("the chain actor has stopped")]
    Stopped,
}
