//! Addresses: an output key written as bech32m (BIP350) with a per-network prefix and a witness
//! version of 1, as Taproot addresses are, so a mistyped character or an address of another
//! network is refused instead of losing money.

use std::fmt;

use bech32::{segwit, Fe32, Hrp};

use crate::params::ChainParams;
use crate::transaction::OutputKey;

/// The version written in every address: an x-only BIP340 key, as in Taproot.
const KEY_VERSION: Fe32 = Fe32::P;

/// The longest address prefix: a 32-byte key takes 60 characters besides it, and bech32
/// addresses are at most 90 (network parameters are checked against this when loaded).
pub const MAX_PREFIX_LEN: usize = 30;

/// `key` written as an address with `prefix`; `None` if the prefix is too long.
pub(crate) fn encode_key(prefix: Hrp, key: &[u8; 32]) -> Option<String> {
    segwit::encode(prefix, KEY_VERSION, key).ok()
}

/// An output key together with the network it is meant for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Address {
    key: OutputKey,
    prefix: Hrp,
}

/// Why a string is not an address of this network.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// Not bech32m, or a character is wrong (the checksum catches typos).
    #[error("'{input}' is not a valid address (check for typos): {reason}")]
    Malformed {
        /// The text, shortened.
        input: String,
        /// What the decoder said.
        reason: String,
    },
    /// A valid address of another network.
    #[error("'{input}' is an address of another network (prefix '{found}'); this network's addresses start with '{expected}1'")]
    WrongNetwork {
        /// The text, shortened.
        input: String,
        /// Its prefix.
        found: String,
        /// This network's prefix.
        expected: String,
    },
    /// Valid bech32m but not a 32-byte key of version 1.
    #[error("'{input}' does not hold a version-1 32-byte key")]
    UnsupportedProgram {
        /// The text, shortened.
        input: String,
    },
}

impl Address {
    /// The address of `key` on the network of `params`.
    pub fn new(key: OutputKey, params: &ChainParams) -> Self {
        Self {
            key,
            prefix: params.address_prefix(),
        }
    }

    /// Parses `text` as an address of the network of `params`.
    pub fn parse(text: &str, params: &ChainParams) -> Result<Self, AddressError> {
        let input: String = text.chars().take(100).collect();
        let (hrp, version, program) =
            segwit::decode(text).map_err(|error| AddressError::Malformed {
                input: input.clone(),
                reason: error.to_string(),
            })?;
        let expected = params.address_prefix();
        if hrp != expected {
            return Err(AddressError::WrongNetwork {
                input,
                found: hrp.to_string(),
                expected: expected.to_string(),
            });
        }
        let bytes = <[u8; 32]>::try_from(program.as_slice())
            .ok()
            .filter(|_| version == KEY_VERSION)
            .ok_or(AddressError::UnsupportedProgram { input })?;
        Ok(Self {
            key: OutputKey::from_byte_array(bytes),
            prefix: expected,
        })
    }

    /// The key outputs paid to this address are locked to.
    pub fn key(&self) -> OutputKey {
        self.key
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = encode_key(self.prefix, &self.key.to_byte_array())
            .expect("network parameters only accept prefixes every address fits");
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_key;

    #[test]
    fn addresses_round_trip_and_carry_the_network_prefix() {
        let params = ChainParams::regtest();
        let key = test_key(7);
        let address = Address::new(key, &params);
        let text = address.to_string();
        assert!(text.starts_with("qrt1p"), "{text}");
        assert_eq!(Address::parse(&text, &params), Ok(address));
        assert_eq!(Address::parse(&text, &params).unwrap().key(), key);
        assert!(Address::new(key, &ChainParams::main())
            .to_string()
            .starts_with("qr1p"));
        assert!(Address::new(key, &ChainParams::testnet())
            .to_string()
            .starts_with("tq1p"));
    }

    #[test]
    fn a_typo_is_caught_by_the_checksum() {
        let params = ChainParams::regtest();
        let text = Address::new(test_key(7), &params).to_string();
        let mut typo: Vec<char> = text.chars().collect();
        let last = typo.len() - 3;
        typo[last] = if typo[last] == 'q' { 'p' } else { 'q' };
        let typo: String = typo.into_iter().collect();
        assert!(matches!(
            Address::parse(&typo, &params),
            Err(AddressError::Malformed { .. })
        ));
        assert!(matches!(
            Address::parse("hello", &params),
            Err(AddressError::Malformed { .. })
        ));
    }

    #[test]
    fn an_address_of_another_network_is_refused() {
        let main = Address::new(test_key(7), &ChainParams::main()).to_string();
        let error = Address::parse(&main, &ChainParams::regtest()).unwrap_err();
        assert_eq!(
            error,
            AddressError::WrongNetwork {
                input: main,
                found: "qr".into(),
                expected: "qrt".into(),
            }
        );
        assert!(error.to_string().contains("start with 'qrt1'"));
    }

    #[test]
    fn other_witness_programs_are_refused() {
        let params = ChainParams::regtest();
        let hrp = Hrp::parse("qrt").unwrap();
        let v0 = segwit::encode(hrp, Fe32::Q, &[7; 32]).unwrap();
        let short = segwit::encode(hrp, KEY_VERSION, &[7; 20]).unwrap();
        for text in [v0, short] {
            assert!(matches!(
                Address::parse(&text, &params),
                Err(AddressError::UnsupportedProgram { .. })
            ));
        }
    }
}
