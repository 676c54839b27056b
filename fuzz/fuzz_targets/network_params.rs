#![no_main]
//! A network parameters file (`--network FILE`): parsing and validation, and every address of
//! an accepted network renders.

use libfuzzer_sys::fuzz_target;
use quarry_chain::{Address, ChainParams, OutputKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(params) = ChainParams::from_toml_str(text) {
        let key = OutputKey::from_byte_array([7; 32]);
        let _ = Address::new(key, &params).to_string();
    }
});
