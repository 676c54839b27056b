//! Shared by the consensus decoders' targets: decode, never panic, and an accepted value
//! re-encodes to exactly the input (one encoding per value).

use quarry_chain::encode::{decode, encode};

pub fn round_trips_if_accepted<T: bincode::Decode<()> + bincode::Encode>(data: &[u8]) -> Option<T> {
    let value = decode::<T>(data).ok()?;
    assert_eq!(encode(&value), data, "a second encoding of one value");
    Some(value)
}
