//! Proof of work: Bitcoin's compact target encoding (`bits`), 256-bit targets and chain work.

use std::fmt;

use bincode::{Decode, Encode};
use ruint::aliases::U256;

use crate::hash::BlockHash;

/// How a network's headers prove their work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowMode {
    /// The header hash must meet the target.
    #[default]
    Real,
    /// Headers need not meet their target (allowed only on custom and local networks): miners
    /// find blocks as a Poisson process at a virtual hash rate, so shares are exact and no CPU
    /// is burned. `bits` still set work, fork choice and retargeting exactly as with real work.
    Simulated,
}

impl PowMode {
    /// Whether this is [`PowMode::Real`] (the default, left out of parameter files).
    pub fn is_real(&self) -> bool {
        *self == Self::Real
    }
}

/// What a header's proof of work is checked against: the network's limit and mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowCheck {
    /// The easiest target allowed.
    pub limit: Target,
    /// Whether the hash must meet the target.
    pub mode: PowMode,
}

/// The 32-bit compact encoding of a target found in block headers (`nBits`): a base-256
/// exponent byte and a 23-bit mantissa with a sign bit, exactly as Bitcoin Core encodes it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Encode, Decode)]
pub struct CompactTarget(u32);

impl CompactTarget {
    /// Wraps the raw `bits` value of a header.
    pub const fn from_consensus(bits: u32) -> Self {
        Self(bits)
    }

    /// The raw `bits` value.
    pub const fn to_consensus(self) -> u32 {
        self.0
    }

    /// Decodes the compact form as Bitcoin Core's `arith_uint256::SetCompact` does, reporting the
    /// negative and overflow flags alongside the (wrapped) value.
    pub fn decode(self) -> DecodedCompact {
        let size = self.0 >> 24;
        let mut word = self.0 & 0x007f_ffff;
        let value = if size <= 3 {
            word >>= 8 * (3 - size);
            U256::from(word)
        } else {
            // Shifting by 256 bits or more leaves zero, as in arith_uint256.
            let shift = 8 * (size as usize - 3);
            if shift >= 256 {
                U256::ZERO
            } else {
                U256::from(word) << shift
            }
        };
        let negative = word != 0 && (self.0 & 0x0080_0000) != 0;
        let overflow =
            word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32));
        DecodedCompact {
            value,
            negative,
            overflow,
        }
    }

    /// The target this encodes, or `None` for the encodings consensus refuses: negative,
    /// overflowing or zero.
    pub fn to_target(self) -> Option<Target> {
        let decoded = self.decode();
        (!decoded.negative && !decoded.overflow && decoded.value != U256::ZERO)
            .then_some(Target(decoded.value))
    }
}

impl fmt::Debug for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactTarget({:#010x})", self.0)
    }
}

impl fmt::Display for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// The result of [`CompactTarget::decode`], with Bitcoin Core's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedCompact {
    /// The decoded value (meaningless when `overflow` is set).
    pub value: U256,
    /// The sign bit was set on a non-zero mantissa.
    pub negative: bool,
    /// The value does not fit in 256 bits.
    pub overflow: bool,
}

/// A proof-of-work target: a block hash, read as a little-endian 256-bit number, must not
/// exceed it. Always non-zero.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target(U256);

impl Target {
    /// The largest possible target.
    pub const MAX: Self = Self(U256::MAX);

    /// A target from its 256-bit value; `None` for zero, which no hash can meet.
    pub fn from_u256(value: U256) -> Option<Self> {
        (value != U256::ZERO).then_some(Self(value))
    }

    /// The 256-bit value.
    pub const fn to_u256(self) -> U256 {
        self.0
    }

    /// Whether `hash` meets this target (`hash <= target`).
    pub fn is_met_by(self, hash: BlockHash) -> bool {
        U256::from_le_bytes(hash.to_byte_array()) <= self.0
    }

    /// Encodes the target in compact form as Bitcoin Core's `GetCompact` does. The encoding keeps
    /// only the top 23 bits of the mantissa, hence lossy.
    pub fn to_compact_lossy(self) -> CompactTarget {
        let mut size = self.0.bit_len().div_ceil(8) as u32;
        let mut compact: u32 = if size <= 3 {
            self.0.to::<u32>() << (8 * (3 - size))
        } else {
            (self.0 >> (8 * (size as usize - 3))).to::<u32>()
        };
        if compact & 0x0080_0000 != 0 {
            compact >>= 8;
            size += 1;
        }
        CompactTarget(compact | (size << 24))
    }

    /// How many times harder than the easiest target `limit` this one is, as Bitcoin Core's
    /// `getdifficulty` reports it (1.0 at the limit).
    pub fn difficulty(self, limit: Target) -> f64 {
        u256_to_f64(limit.0) / u256_to_f64(self.0)
    }

    /// The expected number of hashes to find a block at this target: `2^256 / (target + 1)`.
    pub fn to_work(self) -> Work {
        // 2^256 / (t + 1) == (~t / (t + 1)) + 1, which needs no 257-bit intermediate.
        match self.0.checked_add(U256::from(1u8)) {
            Some(divisor) => Work((!self.0 / divisor) + U256::from(1u8)),
            None => Work(U256::from(1u8)),
        }
    }
}

/// The nearest `f64`, for figures shown to people (difficulty, hash rates).
fn u256_to_f64(value: U256) -> f64 {
    value
        .to_be_bytes::<32>()
        .iter()
        .fold(0.0, |total, byte| total * 256.0 + f64::from(*byte))
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({:#066x})", self.0)
    }
}

/// Amount of work: the expected number of hashes behind a block or a chain. Fork choice follows
/// the most cumulative work.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Work(U256);

impl Work {
    /// No work.
    pub const ZERO: Self = Self(U256::ZERO);

    /// Work from its 256-bit value.
    pub const fn from_u256(value: U256) -> Self {
        Self(value)
    }

    /// The 256-bit value.
    pub const fn to_u256(self) -> U256 {
        self.0
    }

    /// The nearest `f64` (for hash-rate estimates).
    pub fn to_f64(self) -> f64 {
        u256_to_f64(self.0)
    }

    /// The sum, saturating at 2^256 - 1 (unreachable by any real chain).
    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }

    /// The difference, or no work if `other` is more.
    pub fn saturating_sub(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0))
    }

    /// `factor` times this work, saturating.
    pub fn saturating_mul(self, factor: u64) -> Self {
        Self(self.0.saturating_mul(U256::from(factor)))
    }

    /// Big-endian bytes, for storage.
    pub fn to_be_bytes(self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// Work from big-endian bytes.
    pub fn from_be_bytes(bytes: [u8; 32]) -> Self {
        Self(U256::from_be_bytes(bytes))
    }
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Work({:#x})", self.0)
    }
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(bits: u32) -> DecodedCompact {
        CompactTarget::from_consensus(bits).decode()
    }

    fn encode(value: U256, negative: bool) -> u32 {
        // Bitcoin Core's GetCompact(fNegative): the sign bit is set only on a non-zero mantissa.
        let bits = Target(value).to_compact_lossy().to_consensus();
        if negative && bits & 0x007f_ffff != 0 {
            bits | 0x0080_0000
        } else {
            bits
        }
    }

    fn u256_hex(text: &str) -> U256 {
        U256::from_str_radix(text, 16).unwrap()
    }

    /// Bitcoin Core's `GetDifficulty` tests (`blockchain_tests.cpp`) against the 0x1d00ffff
    /// limit: 1.0 at the limit, 256 one byte harder, and its hard cases.
    #[test]
    fn difficulty_matches_bitcoin_core() {
        let limit = CompactTarget::from_consensus(0x1d00_ffff)
            .to_target()
            .unwrap();
        for (bits, expected) in [
            (0x1d00_ffff, 1.0),
            (0x1c00_ffff, 256.0),
            (0x1f00_ffff, 1.0 / 65_536.0),
            (0x1d00_0001, 65_535.0),
            (0x1e00_ffff, 1.0 / 256.0),
        ] {
            let target = CompactTarget::from_consensus(bits).to_target().unwrap();
            let difficulty = target.difficulty(limit);
            assert!(
                (difficulty - expected).abs() <= expected * 1e-12,
                "{bits:#x}: {difficulty} != {expected}"
            );
        }
        assert_eq!(Work(u256_hex("100000000")).to_f64(), 4_294_967_296.0);
    }

    /// Bitcoin Core's `arith_uint256_tests.cpp` SetCompact/GetCompact vectors, bit for bit.
    #[test]
    fn compact_encoding_matches_bitcoin_core_vectors() {
        // Zero mantissas, with and without the sign bit: value 0, never negative.
        for bits in [
            0x0000_0000,
            0x0012_3456,
            0x0100_3456,
            0x0200_0056,
            0x0300_0000,
            0x0400_0000,
            0x0092_3456,
            0x0180_3456,
            0x0280_0056,
            0x0380_0000,
            0x0480_0000,
        ] {
            let decoded = decode(bits);
            assert_eq!(decoded.value, U256::ZERO, "{bits:#x}");
            assert!(!decoded.negative && !decoded.overflow, "{bits:#x}");
            assert_eq!(Target(decoded.value).to_compact_lossy().to_consensus(), 0);
            assert_eq!(CompactTarget::from_consensus(bits).to_target(), None);
        }
        let cases: [(u32, &str, bool, u32); 8] = [
            (0x0112_3456, "12", false, 0x0112_0000),
            (0x01fe_dcba, "7e", true, 0x01fe_0000),
            (0x0212_3456, "1234", false, 0x0212_3400),
            (0x0312_3456, "123456", false, 0x0312_3456),
            (0x0412_3456, "12345600", false, 0x0412_3456),
            (0x0492_3456, "12345600", true, 0x0492_3456),
            (0x0500_9234, "92340000", false, 0x0500_9234),
            (
                0x2012_3456,
                "1234560000000000000000000000000000000000000000000000000000000000",
                false,
                0x2012_3456,
            ),
        ];
        for (bits, value, negative, reencoded) in cases {
            let decoded = decode(bits);
            assert_eq!(decoded.value, u256_hex(value), "{bits:#x}");
            assert_eq!(decoded.negative, negative, "{bits:#x}");
            assert!(!decoded.overflow, "{bits:#x}");
            assert_eq!(encode(decoded.value, negative), reencoded, "{bits:#x}");
        }
        assert!(decode(0xff12_3456).overflow);
        assert_eq!(CompactTarget::from_consensus(0xff12_3456).to_target(), None);
        assert_eq!(CompactTarget::from_consensus(0x0492_3456).to_target(), None);
        // The overflow boundaries: 34 bytes with one mantissa byte, 33 with two, 32 with three.
        assert!(!decode(0x2200_0001).overflow && decode(0x2300_0001).overflow);
        assert!(!decode(0x2100_0100).overflow && decode(0x2200_0100).overflow);
        assert!(!decode(0x2001_0000).overflow && decode(0x2101_0000).overflow);
    }

    #[test]
    fn bitcoin_pow_limit_round_trips_and_has_known_work() {
        let limit = CompactTarget::from_consensus(0x1d00_ffff)
            .to_target()
            .unwrap();
        assert_eq!(
            limit.to_u256(),
            u256_hex("00000000ffff0000000000000000000000000000000000000000000000000000")
        );
        assert_eq!(limit.to_compact_lossy().to_consensus(), 0x1d00_ffff);
        // Bitcoin's genesis block carries 0x100010001 work (as `chainwork` of block 0 shows).
        assert_eq!(limit.to_work().to_u256(), U256::from(0x1_0001_0001u64));
    }

    #[test]
    fn work_is_two_to_the_256_over_target_plus_one() {
        assert_eq!(Target::MAX.to_work().to_u256(), U256::from(1u8));
        let half = Target(U256::MAX >> 1);
        assert_eq!(half.to_work().to_u256(), U256::from(2u8));
        assert_eq!(
            Target(U256::from(1u8)).to_work().to_u256(),
            U256::ONE << 255
        );
    }

    #[test]
    fn is_met_by_compares_the_hash_as_a_little_endian_number() {
        let target = Target(U256::from(0x0100u32));
        let mut bytes = [0u8; 32];
        bytes[1] = 0x01;
        assert!(target.is_met_by(BlockHash::from_byte_array(bytes)));
        bytes[0] = 0x01;
        assert!(!target.is_met_by(BlockHash::from_byte_array(bytes)));
    }

    proptest! {
        /// Any valid compact value survives decode then encode unchanged once normalised.
        #[test]
        fn compact_encoding_is_idempotent(bits in any::<u32>()) {
            if let Some(target) = CompactTarget::from_consensus(bits).to_target() {
                let normalised = target.to_compact_lossy();
                let again = normalised.to_target().unwrap();
                prop_assert_eq!(again, target.to_compact_lossy().to_target().unwrap());
                prop_assert_eq!(again.to_compact_lossy(), normalised);
                prop_assert!(again <= target);
            }
        }
    }
}
