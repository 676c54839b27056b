#![no_main]
//! A transaction as a peer or `sendrawtransaction` gives it: decoding, then the checks that
//! need no chain.

#[path = "consensus.rs"]
mod consensus;

use libfuzzer_sys::fuzz_target;
use quarry_chain::validation::isolation::check_transaction;
use quarry_chain::Transaction;

fuzz_target!(|data: &[u8]| {
    if let Some(tx) = consensus::round_trips_if_accepted::<Transaction>(data) {
        let _ = check_transaction(&tx);
        let _ = tx.txid();
    }
});
