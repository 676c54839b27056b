//! Why a wallet command failed. Messages say what to do next and never hold key material.

use std::path::PathBuf;

use quarry_chain::{Amount, Txid};

/// A wallet failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The wallet file does not exist.
    #[error("no wallet at {path}: create one with `quarry-wallet create` or restore one with `quarry-wallet restore`")]
    NoWallet {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A wallet exists where a new one would go.
    #[error("a wallet already exists at {path}; pass another --wallet path or move it away first")]
    WalletExists {
        /// The file.
        path: PathBuf,
    },
    /// The wallet file cannot be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The wallet file does not parse.
    #[error("{path} is not a readable wallet file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The wallet belongs to another network.
    #[error("this wallet is for the {wallet} network, not {node}; pass --network {wallet}")]
    WrongNetwork {
        /// The wallet's network.
        wallet: String,
        /// The network asked for.
        node: String,
    },
    /// The passphrase does not open the wallet.
    #[error("wrong passphrase: the wallet could not be decrypted")]
    WrongPassphrase,
    /// The two passphrases typed at creation differ, or none was given.
    #[error("{0}")]
    Passphrase(String),
    /// Seed words or hex that do not parse.
    #[error("invalid seed: {reason}")]
    BadSeed {
        /// Why (a position or the checksum, never a word).
        reason: String,
    },
    /// An address that does not parse for this network.
    #[error(transparent)]
    Address(#[from] quarry_chain::AddressError),
    /// An amount that does not parse.
    #[error("invalid amount: {0}")]
    Amount(#[from] quarry_chain::error::ParseAmountError),
    /// Not enough spendable coins.
    #[error(
        "insufficient funds: {needed} coins needed ({amount} + fee {fee}), {spendable} spendable now{immature}"
    )]
    InsufficientFunds {
        /// What was asked.
        amount: Amount,
        /// The fee at the chosen rate.
        fee: Amount,
        /// Amount plus fee.
        needed: Amount,
        /// What can be spent.
        spendable: Amount,
        /// A note about immature coins, if any.
        immature: String,
    },
    /// A payment below the dust limit.
    #[error("{amount} coins is below the smallest payment of {minimum}")]
    Dust {
        /// The amount.
        amount: Amount,
        /// The smallest payment.
        minimum: Amount,
    },
    /// The node cannot be reached or refused the call.
    #[error("quarryd at {address}: {reason}")]
    Node {
        /// Where it was called.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// The node answered something the wallet does not understand.
    #[error("unexpected answer from quarryd to {method}: {detail}")]
    BadReply {
        /// The method.
        method: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// `bump-fee` of a transaction that cannot be bumped.
    #[error("cannot bump the fee of {txid}: {reason}")]
    CannotBump {
        /// The transaction.
        txid: Txid,
        /// Why.
        reason: String,
    },
    /// The user declined at the prompt.
    #[error("cancelled: nothing was sent")]
    Cancelled,
}
