//! Difficulty retargeting: Bitcoin's per-epoch rule and the aserti3-2d per-block rule.
//!
//! Both use integer arithmetic only. Intermediate products use 512 bits, so the rules agree
//! with their C++ references wherever those do not overflow, and stay correct for very easy
//! proof-of-work limits (regtest) where 256-bit arithmetic would wrap.

use ruint::aliases::{U256, U512};
use serde::{Deserialize, Serialize};

use crate::pow::{CompactTarget, Target};

/// Which retargeting algorithm a network uses, with its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "lowercase", deny_unknown_fields)]
pub enum RetargetRule {
    /// Bitcoin's `GetNextWorkRequired`: every `interval` blocks, scale the target by the time the
    /// last `interval - 1` block intervals took over the ideal, clamped to [1/4, 4].
    Epoch {
        /// Blocks between adjustments (2016 on Bitcoin).
        interval: u32,
    },
    /// aserti3-2d: every block, the target is the anchor's times `2^(schedule drift / half_life)`.
    /// The anchor is the genesis block.
    Asert {
        /// Seconds of drift that halve or double the target.
        half_life: u32,
    },
}

/// The header fields retargeting looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderSummary {
    /// Height in the chain.
    pub height: u32,
    /// Header timestamp.
    pub time: u32,
    /// Header `bits`.
    pub bits: CompactTarget,
}

/// Everything a retarget rule needs from the network's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetargetParams {
    /// The algorithm.
    pub rule: RetargetRule,
    /// Ideal seconds between blocks.
    pub target_spacing: u32,
    /// The easiest target allowed.
    pub pow_limit: Target,
    /// The genesis header, the anchor of [`RetargetRule::Asert`].
    pub genesis: HeaderSummary,
}

/// The `bits` a block must carry when its parent is `parent`. `ancestor(height)` returns the
/// summary of the parent's ancestor at `height` (only heights below the parent's are asked).
pub fn next_work_required(
    params: &RetargetParams,
    parent: &HeaderSummary,
    ancestor: impl Fn(u32) -> HeaderSummary,
) -> CompactTarget {
    match params.rule {
        RetargetRule::Epoch { interval } => {
            if interval <= 1 || !(parent.height + 1).is_multiple_of(interval) {
                return parent.bits;
            }
            let first = ancestor(parent.height - (interval - 1));
            let target_timespan = i64::from(params.target_spacing) * i64::from(interval);
            epoch_next_target(
                parent.bits,
                i64::from(parent.time) - i64::from(first.time),
                target_timespan,
                params.pow_limit,
            )
        }
        RetargetRule::Asert { half_life } => {
            let anchor = params.genesis;
            let Some(anchor_target) = anchor.bits.to_target() else {
                return anchor.bits;
            };
            // The anchor's parent would have come one ideal spacing before genesis.
            let anchor_parent_time = i64::from(anchor.time) - i64::from(params.target_spacing);
            asert_target(
                anchor_target,
                i64::from(params.target_spacing),
                i64::from(parent.time) - anchor_parent_time,
                i64::from(parent.height) - i64::from(anchor.height),
                params.pow_limit,
                i64::from(half_life),
            )
            .to_compact_lossy()
        }
    }
}

/// Bitcoin Core's `CalculateNextWorkRequired`: the last target scaled by
/// `actual_timespan / target_timespan`, with the actual timespan clamped to
/// `[target_timespan / 4, target_timespan * 4]` and the result to `pow_limit`. A result that
/// rounds to zero (a last target of 1 to 3) is bits 0, as in Core: no header meets it.
pub fn epoch_next_target(
    last_bits: CompactTarget,
    actual_timespan: i64,
    target_timespan: i64,
    pow_limit: Target,
) -> CompactTarget {
    let clamped = actual_timespan.clamp(target_timespan / 4, target_timespan * 4);
    let last = U512::from(last_bits.decode().value);
    let scaled =
        last * U512::from(clamped.max(0) as u64) / U512::from(target_timespan.max(1) as u64);
    if scaled == U512::ZERO {
        return CompactTarget::from_consensus(0);
    }
    clamp_to_limit(scaled, pow_limit).to_compact_lossy()
}

/// aserti3-2d (Bitcoin Cash Node's `CalculateASERT`): `anchor_target * 2^((time_diff -
/// spacing * (height_diff + 1)) / half_life)`, with the fractional power approximated by the
/// reference cubic in 16.16 fixed point. `time_diff` runs from the anchor's parent's timestamp to
/// the tip's; `height_diff` from the anchor to the tip.
pub fn asert_target(
    anchor_target: Target,
    spacing: i64,
    time_diff: i64,
    height_diff: i64,
    pow_limit: Target,
    half_life: i64,
) -> Target {
    let drift = i128::from(time_diff) - i128::from(spacing) * (i128::from(height_diff) + 1);
    // Truncating division, as C++ integer division.
    let exponent = drift * 65536 / i128::from(half_life.max(1));
    // Arithmetic shift floors; the low 16 bits are the fraction.
    let mut shifts = exponent >> 16;
    let frac = (exponent & 0xffff) as u128;
    let factor = 65536
        + ((195_766_423_245_049 * frac
            + 971_821_376 * frac * frac
            + 5_127 * frac * frac * frac
            + (1 << 47))
            >> 48);
    let mut next = U512::from(anchor_target.to_u256()) * U512::from(factor);
    shifts -= 16;
    if shifts <= 0 {
        let right = (-shifts).min(512) as usize;
        next = if right >= 512 {
            U512::ZERO
        } else {
            next >> right
        };
    } else if next.bit_len() as i128 + shifts > 512 {
        return pow_limit;
    } else {
        next <<= shifts as usize;
    }
    if next == U512::ZERO {
        next = U512::from(1u8);
    }
    clamp_to_limit(next, pow_limit)
}

/// `value` as a target, at most `pow_limit`.
fn clamp_to_limit(value: U512, pow_limit: Target) -> Target {
    if value > U512::from(pow_limit.to_u256()) {
        return pow_limit;
    }
    Target::from_u256(value.to::<U256>()).unwrap_or(pow_limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(value: u32) -> CompactTarget {
        CompactTarget::from_consensus(value)
    }

    /// Bitcoin mainnet's limit, `2^224 - 1`, as Bitcoin Core's `powLimit`.
    fn bitcoin_pow_limit() -> Target {
        Target::from_u256((U256::ONE << 224) - U256::ONE).unwrap()
    }

    fn bitcoin_epoch_params() -> RetargetParams {
        RetargetParams {
            rule: RetargetRule::Epoch { interval: 2016 },
            target_spacing: 600,
            pow_limit: bitcoin_pow_limit(),
            genesis: HeaderSummary {
                height: 0,
                time: 1_231_006_505,
                bits: bits(0x1d00_ffff),
            },
        }
    }

    #[test]
    fn an_epoch_target_that_rounds_to_zero_is_bits_zero_as_in_bitcoin_core() {
        let limit = bitcoin_pow_limit();
        for last in [1u32, 2, 3] {
            let last_bits = Target::from_u256(U256::from(last))
                .unwrap()
                .to_compact_lossy();
            // The fastest an epoch can count: a quarter of the target timespan.
            assert_eq!(
                epoch_next_target(last_bits, 0, 1_209_600, limit).to_consensus(),
                0,
                "last target {last}"
            );
        }
        let four = Target::from_u256(U256::from(4u8))
            .unwrap()
            .to_compact_lossy();
        assert_eq!(
            epoch_next_target(four, 0, 1_209_600, limit),
            Target::from_u256(U256::ONE).unwrap().to_compact_lossy()
        );
    }

    /// Bitcoin Core's `pow_tests.cpp`, all real mainnet blocks: (last height, last time, last
    /// bits, first block time, expected bits).
    #[test]
    fn epoch_rule_agrees_with_bitcoin_core_on_mainnet_data() {
        let cases = [
            (
                32_255,
                1_262_152_739,
                0x1d00_ffff,
                1_261_130_161,
                0x1d00_d86a,
            ),
            (
                2_015,
                1_233_061_996,
                0x1d00_ffff,
                1_231_006_505,
                0x1d00_ffff,
            ),
            (
                68_543,
                1_279_297_671,
                0x1c05_a3f4,
                1_279_008_237,
                0x1c01_68fd,
            ),
            (
                46_367,
                1_269_211_443,
                0x1c38_7f6f,
                1_263_163_443,
                0x1d00_e1fd,
            ),
        ];
        let params = bitcoin_epoch_params();
        for (height, time, last_bits, first_time, expected) in cases {
            let parent = HeaderSummary {
                height,
                time,
                bits: bits(last_bits),
            };
            let next = next_work_required(&params, &parent, |ancestor_height| {
                assert_eq!(ancestor_height, height - 2015);
                HeaderSummary {
                    height: ancestor_height,
                    time: first_time,
                    bits: bits(last_bits),
                }
            });
            assert_eq!(next, bits(expected), "retarget after block {height}");
        }
    }

    #[test]
    fn epoch_rule_keeps_bits_between_adjustments() {
        let parent = HeaderSummary {
            height: 2_016,
            time: 1_233_100_000,
            bits: bits(0x1c05_a3f4),
        };
        let next = next_work_required(&bitcoin_epoch_params(), &parent, |_| {
            panic!("no ancestor needed between adjustments")
        });
        assert_eq!(next, parent.bits);
    }

    #[test]
    fn epoch_rule_with_an_easy_limit_does_not_wrap() {
        // 0x207fffff * 4 exceeds 2^256: with 256-bit arithmetic it would wrap to a tiny target.
        let limit = bits(0x207f_ffff).to_target().unwrap();
        let next = epoch_next_target(bits(0x207f_ffff), 4_000, 1_000, limit);
        assert_eq!(next, bits(0x207f_ffff));
    }

    /// Rows of the published aserti3-2d reference vectors (bitcoincash.org ASERT specification,
    /// runs generated from Bitcoin Cash Node's C++): anchor height 1, anchor parent time 0,
    /// 600-second spacing, two-day half-life, Bitcoin's pow limit. Each row: tip height, tip
    /// time, expected bits of the next block.
    fn check_asert_run(anchor_bits: u32, rows: &[(i64, i64, u32)]) {
        let anchor = bits(anchor_bits).to_target().unwrap();
        for &(height, time, expected) in rows {
            let next = asert_target(anchor, 600, time, height - 1, bitcoin_pow_limit(), 172_800);
            assert_eq!(
                next.to_compact_lossy(),
                bits(expected),
                "anchor {anchor_bits:#x}, height {height}, time {time}"
            );
        }
    }

    #[test]
    fn asert_agrees_with_reference_run1_steady_blocks_at_the_limit() {
        let rows: Vec<_> = (2..=11).map(|h| (h, h * 600, 0x1d00_ffff)).collect();
        check_asert_run(0x1d00_ffff, &rows);
    }

    #[test]
    fn asert_agrees_with_reference_run2_steady_blocks_at_an_arbitrary_target() {
        let rows: Vec<_> = (2..=11).map(|h| (h, h * 600, 0x1a2b_3c4d)).collect();
        check_asert_run(0x1a2b_3c4d, &rows);
    }

    #[test]
    fn asert_agrees_with_reference_run4_doubling_from_the_minimum_target() {
        check_asert_run(
            0x0101_0000,
            &[
                (2, 174_000, 0x0102_0000),
                (3, 347_400, 0x0104_0000),
                (7, 1_041_000, 0x0140_0000),
                (8, 1_214_400, 0x0200_8000),
                (9, 1_387_800, 0x0201_0000),
                (100, 17_167_200, 0x0d08_0000),
                (200, 34_507_200, 0x1a00_8000),
                (223, 38_495_400, 0x1c40_0000),
                (224, 38_668_800, 0x1d00_8000),
                (225, 38_842_200, 0x1d00_ffff),
                (226, 39_015_600, 0x1d00_ffff),
            ],
        );
    }

    #[test]
    fn asert_agrees_with_reference_run5_halving_down_to_the_minimum_target() {
        check_asert_run(
            0x1d00_ffff,
            &[
                (2, 0, 0x1d00_fec5),
                (290, 0, 0x1c7f_62c0),
                (578, 0, 0x1c3f_b160),
                (2_306, 0, 0x1c00_fec5),
                (30_242, 0, 0x0f7f_62c0),
                (59_906, 0, 0x0300_fec5),
                (60_194, 0, 0x027f_6200),
                (62_210, 0, 0x0200_fe00),
                (62_498, 0, 0x017f_0000),
                (64_226, 0, 0x0101_0000),
                (64_514, 0, 0x0101_0000),
            ],
        );
    }

    #[test]
    fn asert_with_an_easy_limit_clamps_instead_of_wrapping() {
        let limit = bits(0x207f_ffff).to_target().unwrap();
        let far_behind = asert_target(limit, 1, 1_000_000, 10, limit, 600);
        assert_eq!(far_behind, limit);
        let on_schedule = asert_target(limit, 1, 11, 10, limit, 600);
        assert_eq!(on_schedule.to_compact_lossy(), bits(0x207f_ffff));
        let ahead = asert_target(limit, 1, 11, 610, limit, 600);
        assert_eq!(ahead.to_compact_lossy(), bits(0x203f_ffff));
    }
}
