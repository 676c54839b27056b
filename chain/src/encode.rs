//! The one canonical encoding of consensus data: bincode 2.0.1 (pinned), fixed-width
//! little-endian integers, `u64` length prefixes, and a size limit on every decode. Trailing
//! bytes are refused, so every accepted byte string has exactly one meaning and one encoding.

use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use bincode::enc::write::SizeWriter;
use bincode::{Decode, Encode};

use crate::error::DecodeError;

/// The largest encoded block accepted, in bytes; no decode reads more than this.
pub const MAX_BLOCK_BYTES: usize = 1_000_000;

/// The canonical bincode settings with a decode limit of `LIMIT` bytes: consensus data and the
/// wire protocol share them, so a block or header embedded in a message encodes to exactly its
/// consensus bytes.
pub const fn canonical<const LIMIT: usize>() -> Configuration<LittleEndian, Fixint, Limit<LIMIT>> {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<LIMIT>()
}

const CONFIG: Configuration<LittleEndian, Fixint, Limit<MAX_BLOCK_BYTES>> =
    canonical::<MAX_BLOCK_BYTES>();

/// The canonical bytes of `value`.
pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    // Writing fixed-width integers and byte vectors into a Vec has no failure mode.
    bincode::encode_to_vec(value, CONFIG).expect("encoding consensus data into memory cannot fail")
}

/// The length of the canonical bytes of `value`, without allocating them.
pub fn encoded_len<T: Encode>(value: &T) -> usize {
    let mut writer = SizeWriter::default();
    bincode::encode_into_writer(value, &mut writer, CONFIG)
        .expect("measuring an encoding cannot fail");
    writer.bytes_written
}

/// Decodes exactly one `T` from `bytes`, refusing trailing bytes and anything over
/// [`MAX_BLOCK_BYTES`].
pub fn decode<T: Decode<()>>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_BLOCK_BYTES {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: MAX_BLOCK_BYTES,
        });
    }
    let (value, read) =
        bincode::decode_from_slice(bytes, CONFIG).map_err(|source| DecodeError::Malformed {
            type_name: std::any::type_name::<T>(),
            reason: source.to_string(),
        })?;
    if read != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            type_name: std::any::type_name::<T>(),
            extra: bytes.len() - read,
        });
    }
    Ok(value)
}
