//! The Quarry node: wires the chain actor and its RocksDB store, the mempool, the miner and the
//! peer-to-peer network into one running [`Node`].

pub mod daemon;
pub mod index;
pub mod metrics;
pub mod node;
pub mod rpc;

pub use node::{Node, NodeConfig, NodeError};
