//! Quarry peer-to-peer layer over libp2p
//!
//! Not implemented yet: see the open issues. The crate exists so the workspace has its final shape.
