//! Quarry's transaction pool: unconfirmed transactions valid against the tip's UTXO set plus
//! their unconfirmed parents, with first-seen or replace-by-fee conflict handling, a minimum
//! relay fee, a byte limit with lowest-fee-rate eviction, an orphan pool, expiry, chain
//! following through reorganisations, dry-run checks and block templates selected by ancestor
//! fee rate.

pub mod config;
pub mod error;
mod orphans;
pub mod pool;
pub mod template;

pub use config::{MempoolConfig, ReplacementPolicy};
pub use error::{MempoolError, ReplacementShortfall};
pub use pool::{Accepted, BlockChange, ChainUpdate, Mempool, PoolEntry, TestAccept, TipContext};
pub use quarry_chain::FeeRate;
pub use template::{BlockTemplate, COINBASE_RESERVE_BYTES};
