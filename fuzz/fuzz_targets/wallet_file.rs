#![no_main]
//! A wallet file (possibly tampered with): parsing and the checks made before its passphrase
//! is asked for; cheap key-stretching settings are also tried with a passphrase.

use libfuzzer_sys::fuzz_target;
use quarry_chain::ChainParams;
use quarry_wallet::file::WalletFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let params = ChainParams::regtest();
    if let Ok(file) = WalletFile::from_json(text, std::path::Path::new("fuzz.json"), &params) {
        if file.seed.memory_kib <= 64 && file.seed.passes <= 2 {
            let _ = file.unlock("passphrase");
        }
    }
});
