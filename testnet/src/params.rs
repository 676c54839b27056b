//! The parameters of a local testnet: blocks every `spacing` seconds at the hash rate the
//! miners are capped to, so the chain starts near its working difficulty and ASERT (kept on
//! throughout) only has to fine-tune it. The genesis block is dated when the testnet starts:
//! ASERT schedules every block from genesis, and an old genesis would leave the chain hours
//! behind schedule, pinned at the easiest target.

use quarry_chain::pow::Target;
use quarry_chain::{Amount, ChainParams, NetworkSpec, RetargetRule};
use ruint::aliases::U256;

/// The local testnet's parameters for miners totalling `hash_rate` hashes per second, with a
/// genesis block dated `genesis_time`.
pub fn local_params(
    hash_rate: u64,
    spacing: u32,
    genesis_time: u32,
) -> anyhow::Result<ChainParams> {
    // Start at half the work a block should take, so early blocks come a little fast and
    // ASERT raises the difficulty to the rate actually seen.
    let hashes_per_block = (hash_rate.max(1) * u64::from(spacing) / 2).max(2);
    let limit = Target::from_u256(U256::MAX / U256::from(hashes_per_block))
        .expect("a quotient of MAX by at most 2^64 is not zero");
    let spec = NetworkSpec {
        name: "localnet".into(),
        retarget: RetargetRule::Asert {
            half_life: spacing * 30,
        },
        target_spacing: spacing,
        pow_limit_bits: limit.to_compact_lossy().to_consensus(),
        initial_subsidy_sats: 50 * Amount::SATS_PER_COIN,
        halving_interval: 100_000,
        coinbase_maturity: 2,
        max_future_block_time: 2 * 60 * 60,
        genesis_time,
        genesis_message: "Quarry local testnet".into(),
        genesis_nonce: None,
        minimum_chain_work: None,
    };
    Ok(ChainParams::new(spec)?)
}

/// Now, as a genesis time: the start of the current second, less a minute so the first blocks
/// are never dated before it.
pub fn genesis_time_now() -> u32 {
    u32::try_from(quarry_chain::clock::unix_now().saturating_sub(60)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_easiest_target_matches_the_planned_rate() {
        let params = local_params(20_000, 2, 1_795_219_200).unwrap();
        let limit = params.pow_limit();
        // 20,000 H/s for 2 s, halved: one block in about 20,000 hashes at the limit.
        let hashes = limit.to_work().to_f64();
        assert!((hashes / 20_000.0 - 1.0).abs() < 0.01, "{hashes}");
        assert_eq!(params.target_spacing(), 2);
        assert_eq!(params.coinbase_maturity(), 2);
        // The same settings give the same network; another start time, another network.
        let again = local_params(20_000, 2, 1_795_219_200).unwrap();
        assert_eq!(again.genesis_hash(), params.genesis_hash());
        let later = local_params(20_000, 2, 1_795_219_201).unwrap();
        assert_ne!(later.genesis_hash(), params.genesis_hash());
    }
}
