//! Signature hashes and Schnorr signing/verification of inputs.
//!
//! Signatures are BIP340 Schnorr over secp256k1 rather than ECDSA: a signature is a fixed 64
//! bytes, keys are 32-byte x-only points, and no third party can alter a valid signature into
//! another valid one, so txids are not malleable without a low-S rule or a separate witness hash.
//!
//! The signature hash commits to the network's genesis hash (no replay across networks), the
//! transaction version, every input's outpoint, the amount and key of every spent output (a
//! signer cannot be tricked about fees), every output, and the index of the input signed. The
//! per-transaction parts are hashed once ([`SighashCache`]), so signing is linear in size, not
//! quadratic.

use sha2::{Digest, Sha256};

use crate::hash::{tagged_hash, BlockHash};
use crate::transaction::{OutputKey, Transaction, TxOut};

const SIGHASH_TAG: &str = "Quarry/sighash";

/// The 32-byte message a Schnorr signature of one input signs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sighash(pub [u8; 32]);

/// Hashes shared by all inputs of one transaction.
#[derive(Clone, Debug)]
pub struct SighashCache {
    version: u32,
    prevouts: [u8; 32],
    amounts: [u8; 32],
    spent_keys: [u8; 32],
    outputs: [u8; 32],
}

impl SighashCache {
    /// Precomputes the shared hashes of `tx`, whose `i`-th input spends `spent[i]`.
    /// Returns `None` when `spent` does not have one entry per input.
    pub fn new(tx: &Transaction, spent: &[TxOut]) -> Option<Self> {
        if spent.len() != tx.inputs.len() {
            return None;
        }
        // The same bytes as the canonical encodings, hashed without building them.
        let mut prevouts = Sha256::new();
        for input in &tx.inputs {
            prevouts.update(input.prevout.txid.as_byte_array());
            prevouts.update(input.prevout.vout.to_le_bytes());
        }
        let mut outputs = Sha256::new();
        outputs.update((tx.outputs.len() as u64).to_le_bytes());
        for output in &tx.outputs {
            outputs.update(output.value.to_sat().to_le_bytes());
            outputs.update(output.pubkey.to_byte_array());
        }
        let mut amounts = Sha256::new();
        let mut spent_keys = Sha256::new();
        for output in spent {
            amounts.update(output.value.to_sat().to_le_bytes());
            spent_keys.update(output.pubkey.to_byte_array());
        }
        Some(Self {
            version: tx.version,
            prevouts: prevouts.finalize().into(),
            amounts: amounts.finalize().into(),
            spent_keys: spent_keys.finalize().into(),
            outputs: outputs.finalize().into(),
        })
    }

    /// The message signed by input `input_index` on the network whose genesis block is `genesis`.
    pub fn sighash(&self, genesis: BlockHash, input_index: u32) -> Sighash {
        Sighash(tagged_hash(
            SIGHASH_TAG,
            &[
                genesis.as_byte_array(),
                &self.version.to_le_bytes(),
                &self.prevouts,
                &self.amounts,
                &self.spent_keys,
                &self.outputs,
                &input_index.to_le_bytes(),
            ],
        ))
    }
}

/// Signs `sighash` with `keypair`, with fresh auxiliary randomness as BIP340 recommends.
pub fn sign(sighash: &Sighash, keypair: &secp256k1::Keypair, aux_rand: &[u8; 32]) -> [u8; 64] {
    secp256k1::schnorr::sign_with_aux_rand(&sighash.0, keypair, aux_rand).to_byte_array()
}

/// Whether `signature` is `key`'s valid signature of `sighash`. A key that is not a curve point
/// verifies nothing.
pub fn verify(sighash: &Sighash, signature: &[u8], key: &OutputKey) -> bool {
    let Ok(signature) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let signature = secp256k1::schnorr::Signature::from_byte_array(signature);
    let Ok(key) = secp256k1::XOnlyPublicKey::from_byte_array(key.to_byte_array()) else {
        return false;
    };
    secp256k1::schnorr::verify(&signature, &sighash.0, &key).is_ok()
}

/// Signs every input of `tx` in place; input `i` spends `spent[i]` and is signed by
/// `keypairs[i]`. Returns `None` when the slices do not have one entry per input.
pub fn sign_transaction(
    tx: &mut Transaction,
    spent: &[TxOut],
    keypairs: &[&secp256k1::Keypair],
    genesis: BlockHash,
    aux_rand: &[u8; 32],
) -> Option<()> {
    let cache = SighashCache::new(tx, spent)?;
    if keypairs.len() != tx.inputs.len() {
        return None;
    }
    for (index, (input, keypair)) in tx.inputs.iter_mut().zip(keypairs).enumerate() {
        let sighash = cache.sighash(genesis, u32::try_from(index).ok()?);
        input.witness = sign(&sighash, keypair, aux_rand).to_vec();
    }
    Some(())
}
