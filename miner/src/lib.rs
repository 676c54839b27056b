//! Quarry's SHA-256d proof-of-work miner: nonce-search kernels chosen by CPU feature detection
//! ([`kernel`]), a parallel search on a rayon pool with stale-work checks, a hash-rate cap and
//! statistics ([`search`]), and block assembly from a mempool template with extra-nonce rolling.

pub mod kernel;
pub mod search;
pub mod simulated;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use quarry_chain::{Block, BlockHash, CompactTarget, OutputKey, Transaction, TxOut};
use quarry_mempool::BlockTemplate;

pub use kernel::{HeaderWork, Kernel, NONCE_SPACE};
pub use search::{HashRate, Miner, MinerConfig, MinerError, SearchOutcome, MAX_THREADS};
use simulated::Wait;

/// Why [`Miner::generate`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError<E> {
    /// The template's `bits` do not decode to a target.
    #[error("template bits {0} do not decode to a target")]
    BadTarget(CompactTarget),
    /// Submitting a mined block failed.
    #[error("submitting a mined block failed: {0}")]
    Submit(E),
}

/// A range of 2^32 extra nonces for one mining run (its high half): each run in the process
/// gets its own, starting from a random one, so two runs on the same template and payout (a
/// `generatetoaddress` beside the background miner, or two nodes paying one address in the
/// same second) never build the same block.
fn extra_nonce_range() -> u64 {
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let random = std::collections::hash_map::RandomState::new().hash_one(COINBASE_TAG);
        AtomicU32::new(random as u32)
    });
    u64::from(next.fetch_add(1, Ordering::Relaxed)) << 32
}

/// Tag written in the coinbases this miner builds.
pub const COINBASE_TAG: &[u8] = b"quarry";

/// The block of `template` with a coinbase paying `coinbase_value` to `payout` and carrying
/// `extra_nonce`; its nonce is 0.
pub fn assemble(template: &BlockTemplate, payout: OutputKey, extra_nonce: u64) -> Block {
    let coinbase = Transaction::new_coinbase(
        template.height,
        extra_nonce,
        COINBASE_TAG,
        vec![TxOut {
            value: template.coinbase_value,
            pubkey: payout,
        }],
    );
    let mut transactions = Vec::with_capacity(template.transactions.len() + 1);
    transactions.push(coinbase);
    transactions.extend(template.transactions.iter().map(|tx| (**tx).clone()));
    Block::assemble(
        template.prev_blockhash,
        template.time,
        template.bits,
        transactions,
    )
}

impl Miner {
    /// Mines the block of `template` paying `payout`: searches every nonce, and when none fits,
    /// rolls the coinbase's extra nonce (a new merkle root) and searches again. Returns `None`
    /// as soon as `is_stale` says the template is out of date.
    pub fn mine(
        &self,
        template: &BlockTemplate,
        payout: OutputKey,
        is_stale: &(dyn Fn() -> bool + Sync),
    ) -> Option<Block> {
        if let Some(simulation) = self.simulation() {
            let work = template.bits.to_target()?.to_work().to_f64();
            let rate = simulation.rate().unwrap_or(0.0);
            return match simulation.wait(work, is_stale) {
                Wait::Found(waited) => {
                    self.count((rate * waited.as_secs_f64()) as u64);
                    Some(assemble(template, payout, extra_nonce_range()))
                }
                Wait::Stale(waited) => {
                    self.count((rate * waited.as_secs_f64()) as u64);
                    None
                }
                Wait::NoRate => None,
            };
        }
        let mut unlimited = u64::MAX;
        self.mine_within(template, payout, NONCE_SPACE, &mut unlimited, is_stale)
    }

    /// Mines up to `count` blocks one after the other (like Bitcoin Core's `generatetoaddress`),
    /// each on a fresh template from `next_template` and handed to `submit` before the next.
    /// At most `max_tries` nonces are tried in all, and `is_cancelled` is checked as the search
    /// goes: either ends the run early with the blocks found so far, as Core returns fewer
    /// hashes when `maxtries` runs out. Returns the blocks' hashes, or the first error.
    pub fn generate<E>(
        &self,
        count: usize,
        payout: OutputKey,
        max_tries: u64,
        is_cancelled: &(dyn Fn() -> bool + Sync),
        mut next_template: impl FnMut() -> BlockTemplate,
        mut submit: impl FnMut(Block) -> Result<(), E>,
    ) -> Result<Vec<BlockHash>, GenerateError<E>> {
        let mut hashes = Vec::with_capacity(count.min(1_024));
        let mut tries_left = max_tries;
        while hashes.len() < count && tries_left > 0 && !is_cancelled() {
            let template = next_template();
            template
                .bits
                .to_target()
                .ok_or(GenerateError::BadTarget(template.bits))?;
            let Some(block) = self.mine_within(
                &template,
                payout,
                NONCE_SPACE,
                &mut tries_left,
                is_cancelled,
            ) else {
                break;
            };
            hashes.push(block.block_hash());
            submit(block).map_err(GenerateError::Submit)?;
        }
        Ok(hashes)
    }

    /// [`Miner::mine`] searching `nonces_per_header` nonces before rolling the extra nonce, with
    /// a budget of nonces reduced by those tried; `None` once the budget is spent, the bits have
    /// no target or `is_stale` says stop.
    fn mine_within(
        &self,
        template: &BlockTemplate,
        payout: OutputKey,
        nonces_per_header: u64,
        tries_left: &mut u64,
        is_cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Option<Block> {
        template.bits.to_target()?;
        let range = extra_nonce_range();
        if self.simulation().is_some() {
            // Blocks on demand need no proof: the network does not ask for one.
            return Some(assemble(template, payout, range));
        }
        for roll in 0..=u64::from(u32::MAX) {
            let extra_nonce = range | roll;
            let span = (*tries_left).min(nonces_per_header);
            if span == 0 {
                return None;
            }
            let mut block = assemble(template, payout, extra_nonce);
            match self.search(&block.header, 0..span, is_cancelled) {
                SearchOutcome::Found(nonce) => {
                    *tries_left -= u64::from(nonce) + 1;
                    block.header.nonce = nonce;
                    return Some(block);
                }
                SearchOutcome::Stale => return None,
                SearchOutcome::Exhausted => {
                    *tries_left -= span;
                    tracing::debug!(
                        extra_nonce,
                        "nonce space exhausted; rolling the extra nonce"
                    );
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_chain::testing::test_key;
    use quarry_chain::Amount;

    #[test]
    fn an_exhausted_nonce_space_rolls_the_extra_nonce() {
        let miner = Miner::new(MinerConfig {
            threads: 1,
            ..MinerConfig::default()
        })
        .unwrap();
        // One hash in 2^16 meets this target: 16 nonces per header rarely find one.
        let template = BlockTemplate {
            prev_blockhash: BlockHash::ZERO,
            height: 1,
            bits: CompactTarget::from_consensus(0x1f00_ffff),
            time: 1_800_000_000,
            transactions: Vec::new(),
            fees: Amount::ZERO,
            transactions_size: 0,
            coinbase_value: Amount::from_sat(50),
        };
        let block = miner
            .mine_within(&template, test_key(1), 16, &mut { u64::MAX }, &|| false)
            .unwrap();
        // The extra nonce's low half counts the rolls (little-endian).
        let rolls = &block.transactions[0].inputs[0].witness[4..8];
        assert_ne!(
            rolls, [0u8; 4],
            "found without rolling: pick another template"
        );
        assert!(block.header.nonce < 16);
        let target = block.header.bits.to_target().unwrap();
        assert!(target.is_met_by(block.block_hash()));

        let mut undecodable = template;
        undecodable.bits = CompactTarget::from_consensus(0x0480_0000);
        assert!(miner.mine(&undecodable, test_key(1), &|| false).is_none());
    }

    #[test]
    fn generate_stops_when_its_tries_run_out_or_it_is_cancelled() {
        let miner = Miner::new(MinerConfig {
            threads: 1,
            ..MinerConfig::default()
        })
        .unwrap();
        let template = |bits: u32| BlockTemplate {
            prev_blockhash: BlockHash::ZERO,
            height: 1,
            bits: CompactTarget::from_consensus(bits),
            time: 1_800_000_000,
            transactions: Vec::new(),
            fees: Amount::ZERO,
            transactions_size: 0,
            coinbase_value: Amount::from_sat(50),
        };
        let run = |bits: u32, count: usize, max_tries: u64, cancelled: bool| {
            let mut submitted = 0;
            let hashes = miner
                .generate(
                    count,
                    test_key(1),
                    max_tries,
                    &|| cancelled,
                    || template(bits),
                    |_| -> Result<(), ()> {
                        submitted += 1;
                        Ok(())
                    },
                )
                .unwrap();
            assert_eq!(hashes.len(), submitted);
            hashes.len()
        };
        // Bitcoin's genesis difficulty: one hash in 2^32 meets it, so 100,000 tries find none
        // (a chance of 2 in 100,000) and the call returns at once instead of mining for minutes.
        assert_eq!(run(0x1d00_ffff, 1, 100_000, false), 0);
        // Every hash meets the easiest target: one try per block.
        assert_eq!(
            run(0x2100_ffff, 5, 3, false),
            3,
            "three tries, three blocks"
        );
        assert_eq!(run(0x2100_ffff, 5, u64::MAX, false), 5);
        assert_eq!(run(0x2100_ffff, 5, u64::MAX, true), 0, "cancelled first");
        assert!(matches!(
            miner.generate(
                1,
                test_key(1),
                10,
                &|| false,
                || template(0x0480_0000),
                |_| Ok::<(), ()>(())
            ),
            Err(GenerateError::BadTarget(_))
        ));
    }

    #[test]
    fn too_many_threads_are_refused_with_the_limit() {
        let error = Miner::new(MinerConfig {
            threads: 100_000,
            ..MinerConfig::default()
        })
        .unwrap_err();
        assert!(matches!(error, MinerError::TooManyThreads(100_000)));
        assert!(error.to_string().contains("at most 1024"), "{error}");
    }
}
