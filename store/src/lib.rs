//! Quarry's chain store on RocksDB, kept apart from the consensus crate (as Zebra keeps
//! `zebra-state` apart from `zebra-chain`) so that only the node builds the database engine.
//! [`RocksStore`] implements `quarry_chain`'s store traits; [`open_versioned`] is the opener
//! the node's indexes share.

mod rocks;

pub use rocks::{database, open_versioned, RocksStore, FORMAT_VERSION};
/// The RocksDB bindings this store is built on, for the node's own indexes.
pub use rocksdb;
