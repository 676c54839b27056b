//! Quarry's wallet: a seed kept encrypted in a file, keys and bech32m addresses derived from
//! it, and balances, history and payments through a running `quarryd` and its address index.

pub mod error;
pub mod file;
pub mod history;
pub mod payment;
pub mod seed;
pub mod wallet;

pub use error::WalletError;
pub use file::WalletFile;
pub use history::{HistoryEntry, InBlock, Status};
pub use payment::{Coin, Payment, Spend, DUST};
pub use seed::Seed;
pub use wallet::{Balance, Wallet};
