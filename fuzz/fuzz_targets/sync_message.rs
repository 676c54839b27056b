#![no_main]
//! A sync protocol frame's payload, as the real codec reads requests and responses: decoding
//! within the limits; an accepted message re-encodes to the same frame.

use libfuzzer_sys::fuzz_target;
use quarry_network::protocol::{decode_payload, encode_frame, SyncRequest, SyncResponse};

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode_payload::<SyncRequest>(data) {
        let _ = request.check();
        assert_eq!(encode_frame(&request), frame(data));
    }
    if let Ok(response) = decode_payload::<SyncResponse>(data) {
        let _ = response.check();
        assert_eq!(encode_frame(&response), frame(data));
    }
});
