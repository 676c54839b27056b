//! Selfish mining (Eyal and Sirer, "Majority is not enough", 2014) in virtual time: an
//! attacker with share α of the hash rate keeps a private branch, publishes a block to race
//! each honest block while its lead is one, releases everything when its lead falls to one,
//! and otherwise publishes as much of its branch as matches the public chain. γ, the share of
//! honest power that mines on the attacker's block in a race, is set by who hears that block
//! first: the attacker's links to `round(γ × honest nodes)` "near" honest nodes are fast, to
//! the others slow; γ is measured from the run (which honest block won each race after a tie).
//!
//! The run measures the attacker's share of the main chain and its blocks per block interval
//! of the planned schedule, with 95% intervals by batch means (blocks of one run are not
//! independent), beside the closed form; with retargeting on it shows revenue per unit time
//! before the difficulty has adjusted to the orphaned blocks and after.

use std::sync::Arc;

use quarry_chain::testing::test_key;
use quarry_chain::{Block, BlockHash, ChainParams, OutputKey, RetargetRule};
use serde::Serialize;

use super::{Engine, Happened, NodeId, GENESIS_TIME};
use crate::params::LocalNetwork;

/// The attacker's node.
const ATTACKER: NodeId = 0;
/// Honest nodes, sharing `1 - α` equally: γ comes in steps of 1/20.
pub const HONEST_NODES: usize = 20;
/// One-way delay between honest nodes, in block intervals: small, so that honest blocks
/// rarely fork one another.
const HONEST_DELAY: f64 = 1.0 / 600.0;
/// The attacker's delay to near nodes and from every node, in block intervals: it reacts to
/// an honest block before that block reaches the other honest nodes.
const FAST_DELAY: f64 = HONEST_DELAY / 100.0;
/// Batches for the batch-means intervals.
const BATCHES: usize = 20;
/// Student's t at 97.5% for 1 to 19 degrees of freedom (batches less one).
const T_975: [f64; 19] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093,
];
/// Blocks per difficulty epoch (Epoch rule), and the ASERT half-life in block intervals.
pub const RETARGET_BLOCKS: u32 = 144;

/// How difficulty follows the block rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Retarget {
    /// Every block the same work.
    Off,
    /// ASERT, half-life 144 block intervals.
    Asert,
    /// Bitcoin's rule: every 144 blocks, from the time the last epoch took.
    Epoch,
}

/// A selfish-mining run's settings.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SelfishSettings {
    /// The attacker's share of the hash rate, in [0, 1).
    pub alpha: f64,
    /// The share of honest power asked to hear the attacker's block first.
    pub gamma: f64,
    /// Main-chain blocks to run for.
    pub blocks: u32,
    /// Target seconds between blocks.
    pub spacing: u32,
    /// Difficulty retargeting.
    pub retarget: Retarget,
    /// The engine's seed.
    pub seed: u64,
    /// Real nodes or the virtual-time engine.
    pub engine: super::EngineKind,
}

/// A value measured over the run with its 95% interval.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Estimate {
    /// The value.
    pub value: f64,
    /// Its 95% interval.
    pub interval: (f64, f64),
}

/// The attacker's revenue over a stretch of the main chain.
#[derive(Clone, Debug, Serialize)]
pub struct Window {
    /// What the stretch is.
    pub label: String,
    /// Main-chain heights, first and last.
    pub heights: (u32, u32),
    /// Main-chain blocks per planned block interval.
    pub blocks_per_interval: f64,
    /// The attacker's main-chain blocks per planned block interval (mining honestly: α).
    pub attacker_per_interval: f64,
}

/// What a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct SelfishResult {
    /// The settings.
    pub settings: SelfishSettings,
    /// Honest nodes.
    pub honest_nodes: usize,
    /// Of which hearing the attacker's blocks first.
    pub near_nodes: usize,
    /// The attacker's share of all blocks mined (its hash share, measured).
    pub alpha_measured: f64,
    /// Races after a tie that an honest block decided, and how many of those blocks were on
    /// the attacker's block.
    pub races_decided_by_honest: u64,
    /// Of which on the attacker's block.
    pub races_on_attacker_block: u64,
    /// γ measured: the second over the first, with its Wilson interval.
    pub gamma_measured: Option<Estimate>,
    /// Main-chain blocks (genesis excluded).
    pub main_blocks: u64,
    /// Of which the attacker's.
    pub attacker_main_blocks: u64,
    /// Honest blocks left off the main chain.
    pub honest_orphaned: u64,
    /// The attacker's blocks left off the main chain (lost races, never published).
    pub attacker_orphaned: u64,
    /// The attacker's share of the main chain (its relative revenue).
    pub revenue_share: Estimate,
    /// The attacker's main-chain blocks per planned block interval (absolute revenue); none
    /// when fewer than two batches span any time (timestamps have one-second resolution).
    pub revenue_per_interval: Option<Estimate>,
    /// Eyal and Sirer's relative revenue for the measured α and γ.
    pub closed_form: f64,
    /// The α above which selfish mining pays at the measured γ: (1-γ)/(3-2γ).
    pub threshold: f64,
    /// Revenue before the difficulty adjusted and after (retargeting on only).
    pub windows: Vec<Window>,
    /// Seconds the run covered: virtual in the engine, wall-clock on real nodes.
    pub seconds: f64,
}

/// Eyal and Sirer's relative revenue of a selfish pool with share `alpha` when a share
/// `gamma` of honest miners mines on its block in a race (their equation 8).
pub fn closed_form(alpha: f64, gamma: f64) -> f64 {
    let a = alpha;
    let numerator = a * (1.0 - a).powi(2) * (4.0 * a + gamma * (1.0 - 2.0 * a)) - a.powi(3);
    let denominator = 1.0 - a * (1.0 + (2.0 - a) * a);
    numerator / denominator
}

/// The share above which selfish mining earns more than honest mining, for `gamma`.
pub fn threshold(gamma: f64) -> f64 {
    (1.0 - gamma) / (3.0 - 2.0 * gamma)
}

/// The network: simulated work at `hash_rate`, `spacing`, the retarget rule asked for, the
/// genesis dated `genesis_time`.
pub fn network(
    spacing: u32,
    retarget: Retarget,
    hash_rate: u64,
    genesis_time: u32,
) -> anyhow::Result<ChainParams> {
    let fixed = LocalNetwork {
        pow: quarry_chain::PowMode::Simulated,
        retarget: false,
        ..LocalNetwork::new(hash_rate, spacing)
    }
    .params(genesis_time)?;
    let mut spec = fixed.spec().clone();
    match retarget {
        Retarget::Off => return Ok(fixed),
        Retarget::Asert => {
            spec.retarget = RetargetRule::Asert {
                half_life: RETARGET_BLOCKS * spacing,
            }
        }
        Retarget::Epoch => {
            spec.retarget = RetargetRule::Epoch {
                interval: RETARGET_BLOCKS,
            }
        }
    }
    Ok(ChainParams::new(spec)?)
}

/// The attacker's strategy state.
#[derive(Default)]
struct Strategy {
    /// Its blocks not published yet, oldest first.
    unpublished: Vec<Arc<Block>>,
    /// The height of the longest public chain it knows.
    public_height: u32,
    /// A race is on: the attacker published a block as high as an honest one.
    race: Option<(BlockHash, BlockHash)>,
}

/// Runs selfish mining with `settings`.
pub fn run(settings: SelfishSettings) -> anyhow::Result<SelfishResult> {
    const HASH_RATE: u64 = 1_000_000;
    let params = network(settings.spacing, settings.retarget, HASH_RATE, GENESIS_TIME)?;
    let spacing = f64::from(settings.spacing);
    let alpha = settings.alpha;
    let near_nodes = (settings.gamma * HONEST_NODES as f64).round() as usize;
    let mut rates = vec![alpha * HASH_RATE as f64];
    rates.extend(std::iter::repeat_n(
        (1.0 - alpha) * HASH_RATE as f64 / HONEST_NODES as f64,
        HONEST_NODES,
    ));
    let keys: Vec<OutputKey> = (0..=HONEST_NODES)
        .map(|node| test_key(2_000 + node as u64))
        .collect();
    let mut engine = Engine::new(
        &params,
        &rates,
        &keys,
        HONEST_DELAY * spacing,
        &[],
        settings.seed,
    )?;
    for honest in 1..=HONEST_NODES {
        let near = honest <= near_nodes;
        let to_honest = if near { FAST_DELAY } else { 2.0 * HONEST_DELAY };
        engine.set_delay(ATTACKER, honest, Some(to_honest * spacing));
        engine.set_delay(honest, ATTACKER, Some(FAST_DELAY * spacing));
    }
    engine.nodes[ATTACKER].withholding = true;
    for node in 0..=HONEST_NODES {
        engine.set_mining(node, true);
    }
    let attacker_key = keys[ATTACKER];
    let mut strategy = Strategy::default();
    let (mut mined_by_attacker, mut mined_by_honest) = (0u64, 0u64);
    let (mut decided_by_honest, mut on_attacker) = (0u64, 0u64);
    let reference = 1;
    while engine.tip_height(reference) < settings.blocks {
        let Some(happened) = engine.step()? else {
            anyhow::bail!("nothing left to happen while the miners mine");
        };
        match happened {
            Happened::Mined {
                node: ATTACKER,
                hash,
            } => {
                mined_by_attacker += 1;
                let block = engine.block(ATTACKER, &hash).expect("its own block");
                strategy.unpublished.push(block);
                if strategy.race.take().is_some() {
                    // Ahead by one after a race: publish and win it.
                    let blocks = std::mem::take(&mut strategy.unpublished);
                    engine.release(ATTACKER, &blocks);
                    strategy.public_height = engine.tip_height(ATTACKER);
                }
            }
            Happened::Mined { node, hash } => {
                mined_by_honest += 1;
                if let Some((attacker_block, honest_block)) = strategy.race {
                    let parent = engine
                        .block(node, &hash)
                        .expect("its own block")
                        .header
                        .prev_blockhash;
                    if parent == attacker_block || parent == honest_block {
                        decided_by_honest += 1;
                        on_attacker += u64::from(parent == attacker_block);
                    }
                }
            }
            Happened::Received {
                node: ATTACKER,
                hash,
                ..
            } => react_to_honest_block(&mut engine, &mut strategy, hash, attacker_key),
            _ => {}
        }
    }
    for node in 0..=HONEST_NODES {
        engine.set_mining(node, false);
    }
    while engine.in_flight() {
        engine.step()?;
    }
    let main: Vec<Arc<Block>> = engine
        .branch(reference, 1, engine.tip_height(reference))
        .iter()
        .map(|hash| engine.block(reference, hash).expect("main-chain block"))
        .collect();
    let by_attacker = |block: &Block| block.transactions[0].outputs[0].pubkey == attacker_key;
    let chain = MainChain {
        by_attacker: main.iter().map(|block| by_attacker(block)).collect(),
        times: main
            .iter()
            .map(|block| f64::from(block.header.time))
            .collect(),
        start: f64::from(GENESIS_TIME),
    };
    let tally = Tally {
        mined_by_attacker,
        mined_by_honest,
        decided_by_honest,
        on_attacker,
    };
    let seconds = engine.now() - f64::from(GENESIS_TIME);
    Ok(summarize(
        settings,
        (HONEST_NODES, near_nodes),
        &tally,
        &chain,
        seconds,
    ))
}

/// What a run counted as blocks were found.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    /// Blocks the attacker mined (published or not).
    pub mined_by_attacker: u64,
    /// Blocks honest miners mined.
    pub mined_by_honest: u64,
    /// Races after a tie decided by an honest block.
    pub decided_by_honest: u64,
    /// Of which on the attacker's block.
    pub on_attacker: u64,
}

/// The main chain a run ended with, above where it started.
#[derive(Clone, Debug, Default)]
pub struct MainChain {
    /// Whether each block is the attacker's, lowest first.
    pub by_attacker: Vec<bool>,
    /// Each block's timestamp.
    pub times: Vec<f64>,
    /// The time the run started from (the timestamp of the block below the first).
    pub start: f64,
}

/// The result of a run from its tally and main chain.
pub fn summarize(
    settings: SelfishSettings,
    (honest_nodes, near_nodes): (usize, usize),
    tally: &Tally,
    chain: &MainChain,
    seconds: f64,
) -> SelfishResult {
    let spacing = f64::from(settings.spacing);
    let flags = &chain.by_attacker;
    let times = &chain.times;
    let attacker_main = flags.iter().filter(|&&mine| mine).count() as u64;
    let main_blocks = flags.len() as u64;
    let gamma_measured = (tally.decided_by_honest > 0).then(|| Estimate {
        value: tally.on_attacker as f64 / tally.decided_by_honest as f64,
        interval: crate::analysis::wilson_interval(tally.on_attacker, tally.decided_by_honest),
    });
    let mined = tally.mined_by_attacker + tally.mined_by_honest;
    let alpha_measured = tally.mined_by_attacker as f64 / mined.max(1) as f64;
    let gamma_for_model = gamma_measured.map_or(settings.gamma, |gamma| gamma.value);
    let time_before = |index: usize| {
        if index == 0 {
            chain.start
        } else {
            times[index - 1]
        }
    };
    SelfishResult {
        settings,
        honest_nodes,
        near_nodes,
        alpha_measured,
        races_decided_by_honest: tally.decided_by_honest,
        races_on_attacker_block: tally.on_attacker,
        gamma_measured,
        main_blocks,
        attacker_main_blocks: attacker_main,
        honest_orphaned: tally
            .mined_by_honest
            .saturating_sub(main_blocks - attacker_main),
        attacker_orphaned: tally.mined_by_attacker.saturating_sub(attacker_main),
        revenue_share: batch_means(flags, |batch, _| Some(share(batch))).unwrap_or(Estimate {
            value: 0.0,
            interval: (0.0, 0.0),
        }),
        revenue_per_interval: batch_means(flags, |batch, range| {
            let intervals = (times[range.1 - 1] - time_before(range.0)) / spacing;
            (intervals > 0.0).then(|| batch.iter().filter(|&&mine| mine).count() as f64 / intervals)
        }),
        closed_form: closed_form(alpha_measured, gamma_for_model),
        threshold: threshold(gamma_for_model),
        windows: windows(chain, spacing, settings.retarget),
        seconds,
    }
}

/// Eyal and Sirer's reaction to a block the attacker hears of (its own released blocks come
/// back to it only through honest nodes, which it ignores: it knows them).
fn react_to_honest_block(
    engine: &mut Engine,
    strategy: &mut Strategy,
    hash: BlockHash,
    attacker_key: OutputKey,
) {
    let Some(block) = engine.block(ATTACKER, &hash) else {
        return;
    };
    if block.transactions[0].outputs[0].pubkey == attacker_key {
        return;
    }
    let Some(height) = engine.nodes[ATTACKER]
        .chain
        .index()
        .get(&hash)
        .map(|entry| entry.height)
    else {
        return;
    };
    if height <= strategy.public_height {
        // A block beside one already public (the other side of a race): nothing new to match,
        // unless it moved the attacker off its branch.
        if engine.nodes[ATTACKER].chain.tip_hash() == hash {
            strategy.unpublished.clear();
            strategy.race = None;
        }
        return;
    }
    strategy.public_height = height;
    let tip = engine.tip(ATTACKER);
    let on_own_branch = engine
        .block(ATTACKER, &tip)
        .is_some_and(|block| block.transactions[0].outputs[0].pubkey == attacker_key);
    strategy.race = None;
    let lead = engine.tip_height(ATTACKER).saturating_sub(height);
    match reaction(on_own_branch, lead) {
        Reaction::Adopt => strategy.unpublished.clear(),
        Reaction::Race => {
            let blocks = std::mem::take(&mut strategy.unpublished);
            if let Some(last) = blocks.last() {
                strategy.race = Some((last.block_hash(), hash));
            }
            engine.release(ATTACKER, &blocks);
        }
        Reaction::Override => {
            let blocks = std::mem::take(&mut strategy.unpublished);
            engine.release(ATTACKER, &blocks);
            strategy.public_height = engine.tip_height(ATTACKER);
        }
        Reaction::Match => {
            let keep_from = strategy
                .unpublished
                .iter()
                .position(|block| block_height(engine, block) > height)
                .unwrap_or(strategy.unpublished.len());
            let released: Vec<Arc<Block>> = strategy.unpublished.drain(..keep_from).collect();
            engine.release(ATTACKER, &released);
        }
    }
}

/// What the selfish miner does when the public chain grows by an honest block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// The public chain is longer than its branch: adopt it, lose the private blocks.
    Adopt,
    /// As high as the honest block: publish its branch and race.
    Race,
    /// One ahead: publish everything, the honest block is orphaned.
    Override,
    /// Further ahead: publish its blocks up to the honest block's height, keep the rest.
    Match,
}

/// Eyal and Sirer's rule, from whether the attacker's chain is still its own branch and its
/// lead over the public chain once the honest block is counted.
pub fn reaction(on_own_branch: bool, lead: u32) -> Reaction {
    match (on_own_branch, lead) {
        (false, _) => Reaction::Adopt,
        (true, 0) => Reaction::Race,
        (true, 1) => Reaction::Override,
        (true, _) => Reaction::Match,
    }
}

fn block_height(engine: &Engine, block: &Block) -> u32 {
    engine.nodes[ATTACKER]
        .chain
        .index()
        .get(&block.block_hash())
        .map_or(0, |entry| entry.height)
}

fn share(flags: &[bool]) -> f64 {
    flags.iter().filter(|&&mine| mine).count() as f64 / flags.len().max(1) as f64
}

/// The mean of `measure` over [`BATCHES`] consecutive batches of the main chain (those it
/// measures), with a 95% t interval from the batches' spread; none with fewer than two.
fn batch_means(
    flags: &[bool],
    measure: impl Fn(&[bool], (usize, usize)) -> Option<f64>,
) -> Option<Estimate> {
    let size = (flags.len() / BATCHES).max(1);
    let values: Vec<f64> = (0..BATCHES)
        .map(|batch| (batch * size, ((batch + 1) * size).min(flags.len())))
        .filter(|(start, end)| start < end)
        .filter_map(|(start, end)| measure(&flags[start..end], (start, end)))
        .collect();
    if values.len() < 2 {
        return None;
    }
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count.max(1.0);
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0).max(1.0);
    let t = T_975[(values.len() - 2).min(T_975.len() - 1)];
    let half = t * (variance / count).sqrt();
    Some(Estimate {
        value: mean,
        interval: (mean - half, mean + half),
    })
}

/// With retargeting, the attacker's revenue per planned interval over the first
/// [`RETARGET_BLOCKS`] blocks (the genesis difficulty: orphaned blocks slow the chain) and the
/// last half of the run (the difficulty has adjusted).
fn windows(chain: &MainChain, spacing: f64, retarget: Retarget) -> Vec<Window> {
    let (flags, times) = (&chain.by_attacker, &chain.times);
    if retarget == Retarget::Off || flags.len() < 4 * RETARGET_BLOCKS as usize {
        return Vec::new();
    }
    let window = |label: &str, start: usize, end: usize| {
        let from = if start == 0 {
            chain.start
        } else {
            times[start - 1]
        };
        let intervals = ((times[end - 1] - from) / spacing).max(f64::EPSILON);
        Window {
            label: label.to_owned(),
            heights: (start as u32 + 1, end as u32),
            blocks_per_interval: (end - start) as f64 / intervals,
            attacker_per_interval: flags[start..end].iter().filter(|&&mine| mine).count() as f64
                / intervals,
        }
    };
    vec![
        window(
            "before the difficulty adjusts",
            0,
            RETARGET_BLOCKS as usize - 1,
        ),
        window("after it has adjusted", flags.len() / 2, flags.len()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(alpha: f64, gamma: f64, blocks: u32, retarget: Retarget) -> SelfishSettings {
        SelfishSettings {
            alpha,
            gamma,
            blocks,
            spacing: 600,
            retarget,
            seed: 5,
            engine: crate::engine::EngineKind::Sim,
        }
    }

    #[test]
    fn batch_means_skip_batches_that_measure_nothing_and_need_two() {
        let flags: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        let even = batch_means(&flags, |batch, _| Some(share(batch))).unwrap();
        assert_eq!(even.value, 0.5);
        assert_eq!(even.interval, (0.5, 0.5));
        assert!(batch_means(&flags, |_, _| None).is_none());
        // Two measured batches (0 and 1): mean 0.5, t with one degree of freedom.
        let two = batch_means(&flags, |_, (start, _)| {
            (start < 4).then_some(if start == 0 { 0.0 } else { 1.0 })
        })
        .unwrap();
        assert_eq!(two.value, 0.5);
        assert!(
            (two.interval.1 - (0.5 + 12.706 * 0.5)).abs() < 1e-9,
            "{two:?}"
        );
    }

    #[test]
    fn the_closed_form_matches_eyal_and_sirer() {
        // At α = 1/3 with γ = 0 selfish mining earns exactly the fair share: the threshold.
        assert!((closed_form(1.0 / 3.0, 0.0) - 1.0 / 3.0).abs() < 1e-12);
        assert!((threshold(0.0) - 1.0 / 3.0).abs() < 1e-12);
        assert!((threshold(0.5) - 0.25).abs() < 1e-12);
        assert!(threshold(1.0).abs() < 1e-12);
        // Below the threshold it loses, above it gains; with γ = 1 any α gains.
        assert!(closed_form(0.2, 0.0) < 0.2 && closed_form(0.4, 0.0) > 0.4);
        assert!(closed_form(0.1, 1.0) > 0.1);
        assert!((closed_form(0.4, 0.0) - 0.1664 / 0.344).abs() < 1e-9);
    }

    #[test]
    fn without_power_the_attacker_earns_nothing_and_a_large_pool_earns_more_than_its_share() {
        let none = run(settings(0.0, 0.5, 300, Retarget::Off)).unwrap();
        assert_eq!(none.attacker_main_blocks, 0);
        assert_eq!(none.main_blocks, 300);
        let large = run(settings(0.45, 1.0, 1_500, Retarget::Off)).unwrap();
        assert!(large.revenue_share.interval.0 > 0.45, "{large:#?}");
        assert!(large.honest_orphaned > 0);
    }

    #[test]
    fn revenue_agrees_with_the_closed_form_and_gamma_follows_who_hears_first() {
        let result = run(settings(0.35, 0.5, 4_000, Retarget::Off)).unwrap();
        let (low, high) = result.revenue_share.interval;
        assert!(
            (low..=high).contains(&result.closed_form),
            "{:.4} [{low:.4}, {high:.4}] against {:.4}",
            result.revenue_share.value,
            result.closed_form
        );
        let gamma = result.gamma_measured.unwrap();
        // Ten of twenty honest nodes hear the attacker first; the finder of the honest block
        // in a race never does: γ ≈ 0.5 - 0.5/20.
        assert!(
            (gamma.interval.0..=gamma.interval.1).contains(&0.475),
            "{gamma:?}"
        );
        assert!((result.alpha_measured - 0.35).abs() < 0.03);
    }

    #[test]
    fn a_seeded_run_reproduces_bit_for_bit() {
        let json = |seed| {
            serde_json::to_string(
                &run(SelfishSettings {
                    seed,
                    ..settings(0.3, 0.5, 200, Retarget::Asert)
                })
                .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(json(1), json(1));
        assert_ne!(json(1), json(2));
    }
}
