//! Quarry node daemon quarryd and quarry-cli
//!
//! Not implemented yet: see the open issues. The crate exists so the workspace has its final shape.
