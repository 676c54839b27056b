#![no_main]
//! A block as a peer sends it: decoding, then the checks that need no chain.

#[path = "consensus.rs"]
mod consensus;

use libfuzzer_sys::fuzz_target;
use quarry_chain::validation::isolation::check_block;
use quarry_chain::{Block, ChainParams};

fuzz_target!(|data: &[u8]| {
    if let Some(block) = consensus::round_trips_if_accepted::<Block>(data) {
        let _ = check_block(&block, ChainParams::regtest().pow_check());
    }
});
