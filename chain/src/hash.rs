//! Hashing primitives: double SHA-256, BIP340-style tagged hashes, and the 32-byte hash newtypes.

use std::fmt;
use std::str::FromStr;

use bincode::{Decode, Encode};
use sha2::{Digest, Sha256};

use crate::error::ParseHashError;

/// Double SHA-256 of `data`, the hash of headers and transactions.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    let first = Sha256::digest(data);
    Sha256::digest(first).into()
}

/// A tagged hash, `SHA256(SHA256(tag) || SHA256(tag) || data)` as in BIP340, so hashes made for
/// one purpose can never be mistaken for hashes made for another.
pub fn tagged_hash(tag: &str, chunks: &[&[u8]]) -> [u8; 32] {
    let tag_hash = Sha256::digest(tag.as_bytes());
    let mut engine = Sha256::new();
    engine.update(tag_hash);
    engine.update(tag_hash);
    for chunk in chunks {
        engine.update(chunk);
    }
    engine.finalize().into()
}

/// Defines a 32-byte hash newtype that displays and parses as byte-reversed hex, as Bitcoin does.
macro_rules! hash_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
        pub struct $name([u8; 32]);

        impl $name {
            /// The all-zero hash.
            pub const ZERO: Self = Self([0; 32]);

            /// Wraps bytes in internal (hashing) order.
            pub const fn from_byte_array(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The bytes in internal (hashing) order.
            pub const fn to_byte_array(self) -> [u8; 32] {
                self.0
            }

            /// The bytes in internal (hashing) order.
            pub const fn as_byte_array(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut reversed = self.0;
                reversed.reverse();
                f.write_str(&hex::encode(reversed))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = ParseHashError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(s, &mut bytes).map_err(|_| ParseHashError {
                    input: s.chars().take(80).collect(),
                })?;
                bytes.reverse();
                Ok(Self(bytes))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hash_newtype!(
    /// The double SHA-256 hash of a block header.
    BlockHash
);
hash_newtype!(
    /// The double SHA-256 hash of a transaction's canonical encoding.
    Txid
);
hash_newtype!(
    /// The root of a block's transaction merkle tree.
    MerkleRoot
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256d_of_empty_input_matches_known_value() {
        assert_eq!(
            hex::encode(sha256d(b"")),
            "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"
        );
    }

    #[test]
    fn hash_display_is_byte_reversed_and_parses_back() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0x01;
        bytes[31] = 0xff;
        let hash = BlockHash::from_byte_array(bytes);
        let text = hash.to_string();
        assert!(text.starts_with("ff"));
        assert!(text.ends_with("01"));
        assert_eq!(text.parse::<BlockHash>().unwrap(), hash);
    }

    #[test]
    fn malformed_hash_text_is_an_error_naming_the_input() {
        let error = "xyz".parse::<Txid>().unwrap_err();
        assert!(error.to_string().contains("xyz"));
        assert!("00".parse::<Txid>().is_err());
    }
}
