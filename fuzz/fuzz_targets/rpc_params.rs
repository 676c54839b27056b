#![no_main]
//! A JSON-RPC request's parameters: the body as JSON, then every method's parameter parsing
//! (positions and names, types) and the parsers of hashes and addresses.

use libfuzzer_sys::fuzz_target;
use quarry_chain::{BlockHash, ChainParams};
use quarry_node::rpc::params::{parse_address, parse_hash, Params};
use quarry_node::rpc::METHODS;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let chain = ChainParams::regtest();
    for method in METHODS {
        let Ok(params) = Params::new(method, Some(raw.clone())) else {
            continue;
        };
        for position in 0..4 {
            let _ = params.optional::<i64>(position);
            let _ = params.optional::<bool>(position);
            let _ = params.optional::<Vec<String>>(position);
            if let Ok(Some(text)) = params.optional::<String>(position) {
                let _ = parse_hash::<BlockHash>("hash", &text);
                let _ = parse_address(&text, &chain);
            }
        }
    }
});
