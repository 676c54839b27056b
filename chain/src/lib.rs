//! Quarry's consensus core: types and their canonical encoding, proof of work and retargeting,
//! validation rules, the block index with most-work fork choice, and the UTXO set with undo data
//! behind reader/writer store traits.

pub mod actor;
pub mod address;
pub mod amount;
pub mod block;
pub mod chain;
pub mod clock;
pub mod encode;
pub mod error;
pub mod hash;
pub mod index;
pub mod params;
pub mod pow;
pub mod retarget;
pub mod sighash;
pub mod store;
#[cfg(feature = "test-utils")]
pub mod testing;
pub mod transaction;
pub mod utxo;
pub mod validation;

pub use actor::{ChainHandle, ChainReadHandle, ChainService, TipInfo, TipWatch};
pub use address::{Address, AddressError};
pub use amount::{Amount, FeeRate};
pub use block::{Block, BlockHeader};
pub use chain::{
    Acceptance, Chain, ChainEvent, ChainTip, DownloadPlan, HeaderPoint, NextBlock, TipStatus,
};
pub use error::{BlockError, ChainError, DecodeError, ParamsError, StoreError, TxError};
pub use hash::{BlockHash, MerkleRoot, Txid};
pub use index::{BlockIndex, BlockStatus, IndexEntry};
pub use params::{ChainParams, NetworkSpec};
pub use pow::{CompactTarget, PowCheck, PowMode, Target, Work};
pub use retarget::RetargetRule;
pub use store::{ChainBatch, ChainReader, ChainWriter, MemoryStore, SharedChainWriter};
pub use transaction::{OutPoint, OutputKey, Transaction, TxIn, TxOut};
pub use utxo::{BlockUndo, Coin, UtxoReader};
