//! Quarry transaction pool: policy, conflicts, eviction, block templates
//!
//! Not implemented yet: see the open issues. The crate exists so the workspace has its final shape.
