//! The parameters of a local testnet: blocks every `spacing` seconds at the hash rate the
//! miners are capped to, from the first block on. The genesis target is the work one block
//! takes at that rate; the limit is four times easier, so ASERT (kept on throughout) can ease
//! the difficulty when the miners hash slower than their cap. The genesis block is dated so
//! that the chain is on ASERT's schedule when background mining starts: the blocks mined at
//! once after start (funding) would otherwise put it ahead or behind, and the first minutes'
//! blocks would come too slow or too fast.

use quarry_chain::pow::Target;
use quarry_chain::{Amount, ChainParams, NetworkSpec, PowMode, RetargetRule};
use ruint::aliases::U256;

/// Confirmations before a local testnet's coinbase may be spent.
pub const LOCAL_MATURITY: u32 = 2;

/// An ASERT half-life (seconds) that keeps the difficulty where it is for any experiment.
const FIXED_HALF_LIFE: u32 = 100 * 365 * 24 * 3600;

/// How much easier than the planned work the limit is.
const LIMIT_HEADROOM: u64 = 4;

/// A local testnet's network: miners totalling `hash_rate` hashes per second (virtual ones
/// with simulated proof of work) at a block every `spacing` seconds. With `retarget` false the
/// difficulty stays at the genesis target (an ASERT half-life of a century: every block has
/// the same work, so more work is more blocks). `instance` tells apart testnets started in the
/// same second (`--parallel`): it is written in the genesis block, so each has its own network
/// and its own simulated miners' seeds.
#[derive(Clone, Copy, Debug)]
pub struct LocalNetwork {
    /// Total hash rate of the miners.
    pub hash_rate: u64,
    /// Target seconds between blocks.
    pub spacing: u32,
    /// Real or simulated proof of work.
    pub pow: PowMode,
    /// Whether ASERT retargets.
    pub retarget: bool,
    /// Which of several testnets started together.
    pub instance: u32,
    /// The miners' virtual hash rates are this many times `hash_rate` (simulated proof of
    /// work with retargeting off only): blocks come `speedup` times faster than `spacing`,
    /// every block still the same work.
    pub speedup: u32,
}

impl LocalNetwork {
    /// Real work, retargeting on, the only testnet: what `up` starts by default.
    pub fn new(hash_rate: u64, spacing: u32) -> Self {
        Self {
            hash_rate,
            spacing,
            pow: PowMode::Real,
            retarget: true,
            instance: 0,
            speedup: 1,
        }
    }

    /// The miners' total hash rate: `hash_rate × speedup`.
    pub fn miners_hash_rate(self) -> u64 {
        self.hash_rate
            .saturating_mul(u64::from(self.speedup.max(1)))
    }

    /// The parameters, with a genesis block dated `genesis_time`.
    pub fn params(self, genesis_time: u32) -> anyhow::Result<ChainParams> {
        local_params(self, genesis_time)
    }
}

fn local_params(network: LocalNetwork, genesis_time: u32) -> anyhow::Result<ChainParams> {
    let LocalNetwork {
        hash_rate,
        spacing,
        pow,
        retarget,
        instance,
        speedup,
    } = network;
    if speedup > 1 && (pow != PowMode::Simulated || retarget) {
        anyhow::bail!(
            "a speed-up needs simulated proof of work and retargeting off (real hashing cannot \
             go faster, and retargeting would slow the blocks back down)"
        );
    }
    let hashes_per_block = (hash_rate.max(1) * u64::from(spacing)).max(2 * LIMIT_HEADROOM);
    let target = |hashes: u64| {
        Target::from_u256(U256::MAX / U256::from(hashes))
            .expect("a quotient of MAX by at most 2^64 is not zero")
            .to_compact_lossy()
            .to_consensus()
    };
    let spec = NetworkSpec {
        name: "localnet".into(),
        retarget: RetargetRule::Asert {
            half_life: if retarget {
                spacing * 30
            } else {
                FIXED_HALF_LIFE
            },
        },
        target_spacing: spacing,
        pow_limit_bits: target(hashes_per_block / LIMIT_HEADROOM),
        genesis_bits: Some(target(hashes_per_block)),
        initial_subsidy_sats: 50 * Amount::SATS_PER_COIN,
        halving_interval: 100_000,
        coinbase_maturity: LOCAL_MATURITY,
        max_future_block_time: 2 * 60 * 60,
        genesis_time,
        genesis_message: match instance {
            0 => "Quarry local testnet".into(),
            n => format!("Quarry local testnet {n}"),
        },
        genesis_nonce: None,
        minimum_chain_work: None,
        pow,
    };
    Ok(ChainParams::new(spec)?)
}

/// A genesis time for a testnet that mines `instant_blocks` at once after starting: now, less
/// the time those blocks take at the target `spacing` (at least a second, so no block is ever
/// dated before genesis).
pub fn genesis_time_for(instant_blocks: usize, spacing: u32) -> u32 {
    let schedule = (instant_blocks as u64 * u64::from(spacing)).max(1);
    u32::try_from(quarry_chain::clock::unix_now().saturating_sub(schedule)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_chain::retarget::{next_work_required, HeaderSummary};

    #[test]
    fn the_first_blocks_take_the_planned_work_and_the_limit_leaves_room_to_ease() {
        let params = LocalNetwork::new(20_000, 2).params(1_795_219_200).unwrap();
        let genesis = params.genesis_block().header;
        // 20,000 H/s for 2 s: one block in about 40,000 hashes; the limit four times easier.
        let work = genesis.bits.to_target().unwrap().to_work().to_f64();
        assert!((work - 40_000.0).abs() / 40_000.0 < 0.01, "{work}");
        let limit = params.pow_limit().to_work().to_f64();
        assert!((limit - 10_000.0).abs() / 10_000.0 < 0.01, "{limit}");
        assert_eq!(params.target_spacing(), 2);
        assert_eq!(params.coinbase_maturity(), LOCAL_MATURITY);
        // The same settings give the same network; another start time, another network.
        let again = LocalNetwork::new(20_000, 2).params(1_795_219_200).unwrap();
        assert_eq!(again.genesis_hash(), params.genesis_hash());
        let later = LocalNetwork::new(20_000, 2).params(1_795_219_201).unwrap();
        assert_ne!(later.genesis_hash(), params.genesis_hash());
    }

    #[test]
    fn funding_blocks_mined_at_once_leave_the_chain_on_schedule() {
        // Nine funding blocks mined in the same second, a few seconds after start: the next
        // block's target is the genesis target (to ASERT's rounding), not eased or hardened.
        let spacing = 2;
        let started = quarry_chain::clock::unix_now() as u32;
        let genesis_time = genesis_time_for(9, spacing);
        assert_eq!(genesis_time, started - 18);
        let params = LocalNetwork::new(20_000, spacing)
            .params(genesis_time)
            .unwrap();
        let genesis = params.genesis_block().header;
        let summary = |height, time| HeaderSummary {
            height,
            time,
            bits: genesis.bits,
        };
        let retarget = params.retarget_params();
        let funded = summary(9, started + 3);
        let next = next_work_required(&retarget, &funded, |height| summary(height, started));
        let ratio = next.to_target().unwrap().to_work().to_f64()
            / genesis.bits.to_target().unwrap().to_work().to_f64();
        // Three seconds behind schedule at a half-life of 60 s: 2^(-3/60) ≈ 0.966.
        assert!((ratio - 0.966).abs() < 0.01, "{ratio}");
        // Retargeting off: an hour behind schedule leaves the target where it was.
        let fixed = LocalNetwork {
            pow: PowMode::Simulated,
            retarget: false,
            ..LocalNetwork::new(20_000, spacing)
        }
        .params(genesis_time)
        .unwrap();
        let other = LocalNetwork {
            instance: 1,
            ..LocalNetwork::new(20_000, spacing)
        };
        let refused = LocalNetwork {
            speedup: 5,
            ..LocalNetwork::new(20_000, spacing)
        };
        assert!(
            refused.params(genesis_time).is_err(),
            "a speed-up with real work"
        );
        assert_ne!(
            other.params(genesis_time).unwrap().genesis_hash(),
            params.genesis_hash(),
            "testnets started together are different networks"
        );
        let late = summary(9, started + 3600);
        let next = next_work_required(&fixed.retarget_params(), &late, |h| summary(h, started));
        assert_eq!(next, fixed.genesis_block().header.bits);
    }
}
