//! Quarry wallet: keys, addresses, transfers
//!
//! Not implemented yet: see the open issues. The crate exists so the workspace has its final shape.
