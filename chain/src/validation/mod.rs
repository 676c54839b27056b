//! Consensus rules as small pure functions, split by how much context they need and called
//! cheap-first: [`isolation`] needs only the block, [`header_context`] needs the parent chain's
//! headers, and [`utxo_context`] needs the UTXO set (and checks signatures last, on all cores).

pub mod header_context;
pub mod isolation;
pub mod utxo_context;
