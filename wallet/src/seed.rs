//! The wallet's seed: 32 random bytes, written down as 24 BIP39 words (or 64 hex digits), from
//! which every key is derived deterministically, so the words alone restore every address.

use bip39::Mnemonic;
use quarry_chain::hash::tagged_hash;
use secp256k1::Keypair;
use zeroize::Zeroizing;

use crate::error::WalletError;

/// Bytes of entropy in a seed.
pub const SEED_BYTES: usize = 32;

/// The seed. Its bytes are wiped when it is dropped and never printed by `Debug`.
pub struct Seed(Zeroizing<[u8; SEED_BYTES]>);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl Seed {
    /// A fresh seed from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; SEED_BYTES]);
        rand::fill(&mut bytes[..]);
        Self(bytes)
    }

    /// The seed of 32 bytes.
    pub fn from_bytes(bytes: [u8; SEED_BYTES]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Restores a seed from its 24 words or its 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, WalletError> {
        let text = text.trim();
        if text.len() == 2 * SEED_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut bytes = Zeroizing::new([0u8; SEED_BYTES]);
            hex::decode_to_slice(text, &mut bytes[..]).map_err(|_| WalletError::BadSeed {
                reason: "not hex".into(),
            })?;
            return Ok(Self(bytes));
        }
        // Words in any case, on any lines, with or without the numbers `create` printed.
        let words = text
            .split_whitespace()
            .filter(|token| !is_position(token))
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ");
        let mnemonic =
            Mnemonic::parse_normalized(&words).map_err(|error| WalletError::BadSeed {
                // The error names a word's position or the checksum, never the words themselves.
                reason: match error {
                    bip39::Error::UnknownWord(index) => {
                        format!("word {} is not in the BIP39 English word list", index + 1)
                    }
                    other => other.to_string(),
                },
            })?;
        let entropy = Zeroizing::new(mnemonic.to_entropy());
        let bytes: [u8; SEED_BYTES] =
            entropy
                .as_slice()
                .try_into()
                .map_err(|_| WalletError::BadSeed {
                    reason: format!("{} words; a wallet seed has 24", mnemonic.word_count()),
                })?;
        Ok(Self::from_bytes(bytes))
    }

    /// The 24 words numbered from 1, in rows of four, to copy onto paper.
    pub fn numbered_words(&self) -> Zeroizing<String> {
        let words = self.words();
        let mut grid = String::new();
        for (index, word) in words.split(' ').enumerate() {
            let cell = format!("{:>2}. {word:<10}", index + 1);
            grid.push_str(if index % 4 == 3 {
                cell.trim_end()
            } else {
                &cell
            });
            if index % 4 == 3 {
                grid.push('\n');
            }
        }
        Zeroizing::new(grid.trim_end().to_owned())
    }

    /// The raw bytes (to encrypt them).
    pub fn as_bytes(&self) -> &[u8; SEED_BYTES] {
        &self.0
    }

    /// The 24 words to write down.
    pub fn words(&self) -> Zeroizing<String> {
        let mnemonic =
            Mnemonic::from_entropy(&self.0[..]).expect("32 bytes is a valid BIP39 entropy length");
        Zeroizing::new(mnemonic.to_string())
    }

    /// The key pair at `index`: a tagged hash of the seed and the index (and a counter, in the
    /// astronomically rare case the hash is not a valid secret key).
    pub fn keypair(&self, index: u32) -> Keypair {
        for counter in 0u32.. {
            let candidate = Zeroizing::new(tagged_hash(
                "quarry/wallet/key",
                &[&self.0[..], &index.to_le_bytes(), &counter.to_le_bytes()],
            ));
            if let Ok(keypair) = Keypair::from_secret_bytes(*candidate) {
                return keypair;
            }
        }
        unreachable!("a valid secret key turns up long before the counter wraps")
    }
}

/// Whether `token` is a word's number as `numbered_words` writes it (`7.`), not a word.
fn is_position(token: &str) -> bool {
    let digits = token.trim_end_matches(['.', ')', ':']);
    !digits.is_empty() && digits.len() <= 2 && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_hex_restore_the_same_keys() {
        let seed = Seed::from_bytes([7; SEED_BYTES]);
        let words = seed.words();
        assert_eq!(words.split(' ').count(), 24);
        let from_words = Seed::parse(&words).unwrap();
        let from_hex = Seed::parse(&hex::encode([7u8; SEED_BYTES])).unwrap();
        for restored in [from_words, from_hex] {
            assert_eq!(restored.as_bytes(), seed.as_bytes());
            assert_eq!(
                restored.keypair(3).public_key(),
                seed.keypair(3).public_key()
            );
        }
        // Spacing and line breaks do not matter.
        let spread = words.replace(' ', "\n  ");
        assert!(Seed::parse(&spread).is_ok());
    }

    #[test]
    fn keys_are_deterministic_and_distinct() {
        let seed = Seed::from_bytes([1; SEED_BYTES]);
        assert_eq!(seed.keypair(0).public_key(), seed.keypair(0).public_key());
        assert_ne!(seed.keypair(0).public_key(), seed.keypair(1).public_key());
        let other = Seed::from_bytes([2; SEED_BYTES]);
        assert_ne!(seed.keypair(0).public_key(), other.keypair(0).public_key());
        // Golden value: derivation must never change, or restored wallets lose their coins.
        assert_eq!(
            quarry_chain::OutputKey::from_keypair(&seed.keypair(0)).to_string(),
            GOLDEN_KEY_0
        );
    }

    /// Computed independently (Python, textbook secp256k1 arithmetic) from the derivation rule.
    const GOLDEN_KEY_0: &str = "c99d2aaeb6976f28cefca65ad563508806ad46d41e4b92c382ebad63da020030";

    #[test]
    fn bad_seeds_are_refused_without_echoing_them() {
        let seed = Seed::from_bytes([7; SEED_BYTES]);
        let mut words: Vec<String> = seed.words().split(' ').map(str::to_owned).collect();
        words.swap(0, 1);
        let error = Seed::parse(&words.join(" ")).unwrap_err().to_string();
        assert!(!error.contains(&words[0]), "{error}");
        assert!(Seed::parse("abandon abandon").is_err());
        assert!(Seed::parse(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{seed:?}"), "Seed(..)");
    }

    #[test]
    fn numbered_upper_case_words_restore_and_positions_count_from_one() {
        let seed = Seed::from_bytes([9; SEED_BYTES]);
        let grid = seed.numbered_words();
        let lines: Vec<&str> = grid.lines().collect();
        assert_eq!(lines.len(), 6);
        assert!(lines[0].starts_with(" 1. "), "{}", *grid);
        assert!(lines[5].contains("24. "), "{}", *grid);
        assert!(lines.iter().all(|line| line.len() <= 60), "{}", *grid);
        let restored = Seed::parse(&grid.to_uppercase()).unwrap();
        assert_eq!(restored.as_bytes(), seed.as_bytes());

        let mut words: Vec<String> = seed.words().split(' ').map(str::to_owned).collect();
        words[2] = "notaword".into();
        let error = Seed::parse(&words.join(" ")).unwrap_err().to_string();
        assert!(error.contains("word 3 "), "{error}");
    }
}
