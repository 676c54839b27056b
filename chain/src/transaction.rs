//! Transactions: inputs spend earlier outputs with a BIP340 Schnorr signature; outputs lock an
//! amount to an x-only public key.

use std::fmt;

use bincode::{Decode, Encode};

use crate::amount::Amount;
use crate::encode::{encode, encoded_len};
use crate::hash::{sha256d, Txid};

/// The most bytes an input's witness may hold (coinbase data included).
pub const MAX_WITNESS_BYTES: usize = 100;
/// Witness bytes of a coinbase before its free-form tag: height (4) and extra nonce (8).
pub const COINBASE_PREFIX_BYTES: usize = 12;
/// Length of a Schnorr signature, the witness of every non-coinbase input.
pub const SIGNATURE_BYTES: usize = 64;

/// A reference to an output of an earlier transaction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Encode, Decode)]
pub struct OutPoint {
    /// The transaction holding the output.
    pub txid: Txid,
    /// The output's index in that transaction.
    pub vout: u32,
}

impl OutPoint {
    /// The outpoint a coinbase input refers to: no output at all.
    pub const NULL: Self = Self {
        txid: Txid::ZERO,
        vout: u32::MAX,
    };

    /// Whether this is [`OutPoint::NULL`].
    pub fn is_null(&self) -> bool {
        *self == Self::NULL
    }
}

impl fmt::Display for OutPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.txid, self.vout)
    }
}

/// The x-only public key (BIP340) an output is locked to. Any 32 bytes are allowed; bytes that
/// are not a valid curve point make the output unspendable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct OutputKey([u8; 32]);

impl OutputKey {
    /// Wraps serialized x-only key bytes.
    pub const fn from_byte_array(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The serialized x-only key.
    pub const fn to_byte_array(self) -> [u8; 32] {
        self.0
    }

    /// The key of a secp256k1 key pair.
    pub fn from_keypair(keypair: &secp256k1::Keypair) -> Self {
        Self(keypair.x_only_public_key().0.to_byte_array())
    }
}

impl fmt::Display for OutputKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Serialized as its 64 hex digits.
impl serde::Serialize for OutputKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for OutputKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for OutputKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OutputKey({self})")
    }
}

/// A transaction input.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Encode, Decode)]
pub struct TxIn {
    /// The output being spent ([`OutPoint::NULL`] in a coinbase).
    pub prevout: OutPoint,
    /// A 64-byte Schnorr signature; in a coinbase, the height, extra nonce and a free tag.
    pub witness: Vec<u8>,
}

/// A transaction output.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Encode, Decode)]
pub struct TxOut {
    /// The amount locked.
    pub value: Amount,
    /// Whose signature unlocks it.
    pub pubkey: OutputKey,
}

/// A transaction. The txid is the double SHA-256 of the whole canonical encoding; BIP340
/// signatures cannot be altered by a third party, so txids are not malleable.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Encode, Decode)]
pub struct Transaction {
    /// Format version, currently 1.
    pub version: u32,
    /// Inputs, at least one.
    pub inputs: Vec<TxIn>,
    /// Outputs, at least one.
    pub outputs: Vec<TxOut>,
}

impl Transaction {
    /// The version new transactions carry.
    pub const CURRENT_VERSION: u32 = 1;

    /// A coinbase for `height` whose witness carries the height, `extra_nonce` (rolled by miners
    /// once the header nonce is exhausted) and up to 88 bytes of `tag`, truncated if longer.
    pub fn new_coinbase(height: u32, extra_nonce: u64, tag: &[u8], outputs: Vec<TxOut>) -> Self {
        let mut witness = Vec::with_capacity(MAX_WITNESS_BYTES);
        witness.extend_from_slice(&height.to_le_bytes());
        witness.extend_from_slice(&extra_nonce.to_le_bytes());
        let room = MAX_WITNESS_BYTES - COINBASE_PREFIX_BYTES;
        witness.extend_from_slice(&tag[..tag.len().min(room)]);
        Self {
            version: Self::CURRENT_VERSION,
            inputs: vec![TxIn {
                prevout: OutPoint::NULL,
                witness,
            }],
            outputs,
        }
    }

    /// The transaction id.
    pub fn txid(&self) -> Txid {
        Txid::from_byte_array(sha256d(&encode(self)))
    }

    /// Whether this is a coinbase: exactly one input, spending [`OutPoint::NULL`].
    pub fn is_coinbase(&self) -> bool {
        self.inputs.len() == 1 && self.inputs[0].prevout.is_null()
    }

    /// The height a coinbase commits to, if this is a coinbase with a well-formed witness.
    pub fn coinbase_height(&self) -> Option<u32> {
        if !self.is_coinbase() {
            return None;
        }
        let prefix = self.inputs[0].witness.get(..4)?;
        Some(u32::from_le_bytes(prefix.try_into().ok()?))
    }

    /// The size of the canonical encoding in bytes.
    pub fn encoded_size(&self) -> usize {
        encoded_len(self)
    }

    /// The sum of the outputs, or `None` if it leaves the money range.
    pub fn total_output(&self) -> Option<Amount> {
        Amount::checked_sum(self.outputs.iter().map(|output| output.value))
    }
}
