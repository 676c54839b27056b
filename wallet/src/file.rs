//! The wallet file: JSON, owner-only, written atomically. Only the seed is secret: it is sealed
//! with XChaCha20-Poly1305 under a key stretched from the passphrase by Argon2id, with the
//! file's network bound in as associated data. Public keys, handed-out addresses and the
//! wallet's own transactions stay readable, so balances and history need no passphrase.

use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use quarry_chain::{Address, Amount, ChainParams, OutputKey, TxOut, Txid};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::WalletError;
use crate::seed::{Seed, SEED_BYTES};

/// The file format this code writes.
const FORMAT: u32 = 1;

/// Keys derived ahead of the last one handed out (a restored wallet finds coins on any of them).
pub const KEY_POOL: u32 = 100;

/// Argon2id cost: OWASP's recommended 19 MiB, 2 passes, 1 lane.
const KDF_MEMORY_KIB: u32 = 19 * 1024;
const KDF_PASSES: u32 = 2;
const KDF_LANES: u32 = 1;
/// The key-stretching settings a wallet file may ask for. They are read from the file before
/// the passphrase can be checked, so a tampered file could otherwise ask for terabytes of
/// memory (an abort), millions of lanes (a panic) or billions of passes (a hang).
const KDF_MEMORY_KIB_RANGE: std::ops::RangeInclusive<u32> = 8..=(1 << 20);
const KDF_PASSES_RANGE: std::ops::RangeInclusive<u32> = 1..=16;
const KDF_LANES_RANGE: std::ops::RangeInclusive<u32> = 1..=16;

/// The sealed seed and how to unseal it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedSeed {
    /// Always `argon2id`.
    pub kdf: String,
    /// Argon2 memory in KiB.
    pub memory_kib: u32,
    /// Argon2 passes.
    pub passes: u32,
    /// Argon2 lanes.
    pub lanes: u32,
    /// 16 random bytes, hex.
    pub salt: String,
    /// Always `xchacha20poly1305`.
    pub cipher: String,
    /// 24 random bytes, hex.
    pub nonce: String,
    /// The sealed seed and its tag, hex.
    pub ciphertext: String,
}

/// An output a sent transaction spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpentOutput {
    /// Its value in sats.
    pub value_sats: u64,
    /// Its key.
    pub key: OutputKey,
}

impl From<SpentOutput> for TxOut {
    fn from(spent: SpentOutput) -> Self {
        TxOut {
            value: Amount::from_sat(spent.value_sats),
            pubkey: spent.key,
        }
    }
}

impl From<TxOut> for SpentOutput {
    fn from(output: TxOut) -> Self {
        Self {
            value_sats: output.value.to_sat(),
            key: output.pubkey,
        }
    }
}

/// A transaction this wallet signed and sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentTransaction {
    /// Its id.
    pub txid: Txid,
    /// Its bytes, hex (to re-check its inputs and to bump its fee).
    pub hex: String,
    /// The outputs its inputs spend, in input order (to sign a replacement).
    pub spent: Vec<SpentOutput>,
    /// Which output is change back to the wallet, if any.
    pub change_vout: Option<u32>,
    /// Its fee, in sats.
    pub fee_sats: u64,
    /// What it did to the wallet's balance, in sats (negative: money left the wallet).
    pub net_sats: i64,
    /// Unix time it was sent.
    pub time: u64,
    /// The transaction that replaced it with a higher fee, if any.
    pub replaced_by: Option<Txid>,
}

/// A transaction that paid or spent this wallet, remembered once seen so that it can still be
/// reported (as conflicted) after a reorganisation removes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeenTransaction {
    /// Its id.
    pub txid: Txid,
    /// Its bytes, hex.
    pub hex: String,
    /// What it did to the wallet's balance, in sats.
    pub net_sats: i64,
}

/// The wallet file's contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletFile {
    /// The file format.
    pub format: u32,
    /// The network's name.
    pub network: String,
    /// The sealed seed.
    pub seed: SealedSeed,
    /// Public keys derived so far, by index (x-only, hex): the ones handed out and a pool
    /// ahead of them, all watched, so coins sent to any of them are found.
    pub keys: Vec<OutputKey>,
    /// How many keys have been handed out as addresses.
    pub issued: u32,
    /// Transactions this wallet sent.
    pub sent: Vec<SentTransaction>,
    /// Transactions seen touching the wallet.
    pub seen: Vec<SeenTransaction>,
}

fn stretch(
    passphrase: &str,
    sealed: &SealedSeed,
    salt: &[u8],
) -> Result<Zeroizing<[u8; 32]>, WalletError> {
    let params =
        Params::new(sealed.memory_kib, sealed.passes, sealed.lanes, Some(32)).map_err(|error| {
            WalletError::Passphrase(format!("unusable key-stretching settings: {error}"))
        })?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key[..])
        .map_err(|error| {
            WalletError::Passphrase(format!("cannot stretch the passphrase: {error}"))
        })?;
    Ok(key)
}

fn associated_data(network: &str) -> Vec<u8> {
    format!("quarry-wallet/{FORMAT}/{network}").into_bytes()
}

impl WalletFile {
    /// A new wallet for `params` holding `seed` sealed under `passphrase`, with one address.
    pub fn new(seed: &Seed, passphrase: &str, params: &ChainParams) -> Result<Self, WalletError> {
        if passphrase.is_empty() {
            return Err(WalletError::Passphrase(
                "an empty passphrase would leave the seed unprotected; choose one".into(),
            ));
        }
        let salt: [u8; 16] = rand::random();
        let nonce: [u8; 24] = rand::random();
        let mut sealed = SealedSeed {
            kdf: "argon2id".into(),
            memory_kib: KDF_MEMORY_KIB,
            passes: KDF_PASSES,
            lanes: KDF_LANES,
            salt: hex::encode(salt),
            cipher: "xchacha20poly1305".into(),
            nonce: hex::encode(nonce),
            ciphertext: String::new(),
        };
        let key = stretch(passphrase, &sealed, &salt)?;
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: seed.as_bytes(),
                    aad: &associated_data(params.name()),
                },
            )
            .map_err(|_| WalletError::Passphrase("encryption failed".into()))?;
        sealed.ciphertext = hex::encode(ciphertext);
        Ok(Self {
            format: FORMAT,
            network: params.name().to_owned(),
            seed: sealed,
            keys: (0..KEY_POOL)
                .map(|index| OutputKey::from_keypair(&seed.keypair(index)))
                .collect(),
            issued: 1,
            sent: Vec::new(),
            seen: Vec::new(),
        })
    }

    /// Unseals the seed; a wrong passphrase (or a tampered file) is [`WalletError::WrongPassphrase`].
    pub fn unlock(&self, passphrase: &str) -> Result<Seed, WalletError> {
        let bad = |what: &str| {
            WalletError::Passphrase(format!("the wallet's sealed seed has a bad {what}"))
        };
        let salt = hex::decode(&self.seed.salt).map_err(|_| bad("salt"))?;
        let nonce = hex::decode(&self.seed.nonce).map_err(|_| bad("nonce"))?;
        let ciphertext = hex::decode(&self.seed.ciphertext).map_err(|_| bad("ciphertext"))?;
        if self.seed.kdf != "argon2id"
            || self.seed.cipher != "xchacha20poly1305"
            || nonce.len() != 24
        {
            return Err(bad("algorithm"));
        }
        let key = stretch(passphrase, &self.seed, &salt)?;
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: &associated_data(&self.network),
                    },
                )
                .map_err(|_| WalletError::WrongPassphrase)?,
        );
        let bytes: [u8; SEED_BYTES] = plain.as_slice().try_into().map_err(|_| bad("length"))?;
        let seed = Seed::from_bytes(bytes);
        if self.keys.first() != Some(&OutputKey::from_keypair(&seed.keypair(0))) {
            return Err(bad("first key"));
        }
        Ok(seed)
    }

    /// The addresses handed out, by index.
    pub fn issued_addresses(&self, params: &ChainParams) -> Vec<Address> {
        self.keys
            .iter()
            .take(self.issued as usize)
            .map(|key| Address::new(*key, params))
            .collect()
    }

    /// Hands out the next address; `false` when the pool is used up (then unlock the seed and
    /// [`WalletFile::extend_pool`]).
    pub fn issue(&mut self) -> Option<OutputKey> {
        let key = self.keys.get(self.issued as usize).copied()?;
        self.issued += 1;
        Some(key)
    }

    /// Derives another [`KEY_POOL`] keys.
    pub fn extend_pool(&mut self, seed: &Seed) {
        let start = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        self.keys.extend(
            (start..start.saturating_add(KEY_POOL))
                .map(|index| OutputKey::from_keypair(&seed.keypair(index))),
        );
    }

    /// The index of `key` among the wallet's keys.
    pub fn index_of(&self, key: &OutputKey) -> Option<u32> {
        self.keys
            .iter()
            .position(|known| known == key)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// Reads the wallet at `path` for the network of `params`.
    pub fn load(path: &Path, params: &ChainParams) -> Result<Self, WalletError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(WalletError::NoWallet {
                    path: path.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(WalletError::File {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Self::from_json(&text, path, params)
    }

    /// A wallet file's contents `text` (read from `path`, named in errors), checked as
    /// [`WalletFile::load`] checks them.
    pub fn from_json(text: &str, path: &Path, params: &ChainParams) -> Result<Self, WalletError> {
        let file: Self = serde_json::from_str(text).map_err(|error| WalletError::Corrupt {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        if file.format != FORMAT {
            return Err(WalletError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("format {} (this version reads {FORMAT})", file.format),
            });
        }
        let seed = &file.seed;
        if !KDF_MEMORY_KIB_RANGE.contains(&seed.memory_kib)
            || !KDF_PASSES_RANGE.contains(&seed.passes)
            || !KDF_LANES_RANGE.contains(&seed.lanes)
        {
            return Err(WalletError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "key-stretching settings out of range ({} KiB, {} passes, {} lanes; this \
                     version writes {KDF_MEMORY_KIB} KiB, {KDF_PASSES} passes, {KDF_LANES} lane \
                     and reads at most 1 GiB, 16 passes, 16 lanes): the file was altered",
                    seed.memory_kib, seed.passes, seed.lanes
                ),
            });
        }
        if file.keys.is_empty() || file.issued as usize > file.keys.len() {
            return Err(WalletError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("{} keys with {} handed out", file.keys.len(), file.issued),
            });
        }
        if file.network != params.name() {
            return Err(WalletError::WrongNetwork {
                wallet: file.network,
                node: params.name().to_owned(),
            });
        }
        Ok(file)
    }

    /// Writes the wallet to `path` atomically (a temporary file renamed over it), readable and
    /// writable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), WalletError> {
        let file_error = |path: &Path, source| WalletError::File {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| file_error(parent, source))?;
        }
        let temporary = temporary_path(path);
        let _ = std::fs::remove_file(&temporary);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let text = serde_json::to_string_pretty(self).expect("a wallet file serializes");
        let mut file = options
            .open(&temporary)
            .map_err(|source| file_error(&temporary, source))?;
        let written = std::io::Write::write_all(&mut file, text.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&temporary, path));
        if let Err(source) = written {
            // A full disk: the wallet file stays as it was, with no half-written copy beside.
            drop(file);
            let _ = std::fs::remove_file(&temporary);
            return Err(file_error(path, source));
        }
        Ok(())
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_opens_with_its_passphrase_only() {
        let params = ChainParams::regtest();
        let seed = Seed::from_bytes([5; SEED_BYTES]);
        let file = WalletFile::new(&seed, "hunter2 hunter2", &params).unwrap();
        assert!(!file.seed.ciphertext.contains(&hex::encode([5u8; 8])));
        assert_eq!(
            file.unlock("hunter2 hunter2").unwrap().as_bytes(),
            seed.as_bytes()
        );
        assert!(matches!(
            file.unlock("hunter3"),
            Err(WalletError::WrongPassphrase)
        ));
        // The network is bound in: the same sealed seed relabelled does not open.
        let mut moved = file.clone();
        moved.network = "main".into();
        assert!(matches!(
            moved.unlock("hunter2 hunter2"),
            Err(WalletError::WrongPassphrase)
        ));
        assert!(WalletFile::new(&seed, "", &params).is_err());
    }

    #[test]
    fn saved_files_are_owner_only_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("wallet.json");
        let params = ChainParams::regtest();
        let file = WalletFile::new(&Seed::from_bytes([5; SEED_BYTES]), "pass", &params).unwrap();
        file.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(WalletFile::load(&path, &params).unwrap(), file);
        assert!(matches!(
            WalletFile::load(&path, &ChainParams::testnet()),
            Err(WalletError::WrongNetwork { .. })
        ));
        let mut emptied = file.clone();
        emptied.keys.clear();
        emptied.save(&path).unwrap();
        assert!(matches!(
            WalletFile::load(&path, &params),
            Err(WalletError::Corrupt { .. })
        ));
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            WalletFile::load(&path, &params),
            Err(WalletError::Corrupt { .. })
        ));
        // Key-stretching settings that would abort, panic or hang are refused before use.
        for (memory_kib, passes, lanes) in [
            (u32::MAX, 2, 1),
            (19_456, 2, u32::MAX),
            (19_456, u32::MAX, 1),
        ] {
            let mut tampered = file.clone();
            tampered.seed.memory_kib = memory_kib;
            tampered.seed.passes = passes;
            tampered.seed.lanes = lanes;
            tampered.save(&path).unwrap();
            let error = WalletFile::load(&path, &params).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("key-stretching settings out of range"),
                "{error}"
            );
        }
        assert!(matches!(
            WalletFile::load(&dir.path().join("none.json"), &params),
            Err(WalletError::NoWallet { .. })
        ));
    }

    /// Saves a wallet with every write failing as on a full disk (run by the test below under
    /// `ulimit -f 0`).
    #[test]
    #[ignore = "run as a child process by a_save_on_a_full_disk_leaves_nothing_behind"]
    fn save_on_a_full_disk_child() {
        let dir = PathBuf::from(std::env::var_os("QUARRY_WALLET_DIR").unwrap());
        let params = ChainParams::regtest();
        let seed = Seed::from_bytes([7; SEED_BYTES]);
        let file = WalletFile::new(&seed, "pass", &params).unwrap();
        let path = dir.join("wallet.json");
        let error = file.save(&path).unwrap_err();
        println!("save failed: {error}");
        assert!(
            !temporary_path(&path).exists(),
            "a half-written copy was left"
        );
        assert!(!path.exists());
        println!("nothing left behind");
    }

    #[test]
    fn a_save_on_a_full_disk_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 0; exec \"$0\" \"$@\"")
            .arg(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "file::tests::save_on_a_full_disk_child",
                "--nocapture",
            ])
            .env("QUARRY_WALLET_DIR", dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("nothing left behind"), "{stdout}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
