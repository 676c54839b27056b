#![no_main]
//! An address as a user types it: parsing for each built-in network; an accepted address
//! renders back to the input, lower-cased.

use libfuzzer_sys::fuzz_target;
use quarry_chain::{Address, ChainParams};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for params in [ChainParams::main(), ChainParams::testnet(), ChainParams::regtest()] {
        if let Ok(address) = Address::parse(text, &params) {
            assert_eq!(address.to_string(), text.to_lowercase());
        }
    }
});
