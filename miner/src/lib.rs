//! Quarry SHA-256d proof-of-work miner
//!
//! Not implemented yet: see the open issues. The crate exists so the workspace has its final shape.
