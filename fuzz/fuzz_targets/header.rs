#![no_main]
//! A header as headers-first sync receives it: decoding, its hash and proof of work.

#[path = "consensus.rs"]
mod consensus;

use libfuzzer_sys::fuzz_target;
use quarry_chain::BlockHeader;

fuzz_target!(|data: &[u8]| {
    if let Some(header) = consensus::round_trips_if_accepted::<BlockHeader>(data) {
        let hash = header.block_hash();
        if let Some(target) = header.bits.to_target() {
            let _ = target.is_met_by(hash);
            let _ = header.work();
        }
    }
});
