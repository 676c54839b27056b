//! Attack experiments: on real nodes (attack testnets started, funded and stopped) or in the
//! virtual-time engine; trials handed out to one or several testnets (or engine threads) side
//! by side until the plan or the stop rule says; the reports written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use quarry_chain::PowMode;
use quarry_rpc::launch::Lifetime;

use crate::cluster::{links, Link, Testnet, Topology};
use crate::commands::progress_bar;
use crate::engine::EngineKind;
use crate::params::{genesis_time_for, LocalNetwork, LOCAL_MATURITY};

/// A double-spend run.
#[derive(Clone, Debug)]
pub struct AttackRun {
    /// The attack.
    pub settings: crate::attack::AttackSettings,
    /// Numbers of confirmations to try.
    pub confirmations: Vec<u32>,
    /// Trials per number of confirmations.
    pub trials: u32,
    /// Total hash rate of the miners.
    pub hash_rate: u64,
    /// Target seconds between blocks.
    pub spacing: u32,
    /// Independent attack testnets run side by side, their trials pooled.
    pub parallel: u32,
    /// When the run stops.
    pub stop_rule: StopRule,
    /// The report folder (the nodes run in its `nodes` subfolder, or `testnet-K/nodes` for
    /// each of several testnets).
    pub report: PathBuf,
    /// Where real nodes run: processes of a quarryd, or Docker containers.
    pub nodes: crate::cluster::NodeEngine,
    /// Real nodes or the virtual-time engine.
    pub engine: EngineKind,
    /// The engine's seed (trial `k` draws from [`crate::engine::trial_seed`]`(seed, k)`).
    pub seed: u64,
}

/// The attack's progress caption: trials done, reversals, time spent and the time left at the
/// pace so far.
fn trial_caption(done: usize, total: usize, reversed: u64, elapsed: Duration) -> String {
    let clock = |seconds: u64| format!("{}:{:02}", seconds / 60, seconds % 60);
    let left = match done {
        0 => "ETA -".to_owned(),
        _ => {
            let per_trial = elapsed.as_secs_f64() / done as f64;
            let seconds = (per_trial * total.saturating_sub(done) as f64).round() as u64;
            format!("ETA {}", clock(seconds))
        }
    };
    format!(
        "{done}/{total} trials, {reversed} reversed, {} elapsed, {left}",
        clock(elapsed.as_secs())
    )
}

/// Starts the three nodes of an attack (honest miner, merchant, attacker with share `q` of
/// `hash_rate`) in `report/nodes`, replacing an earlier run's, with a genesis dated for the
/// `trials` coins the attacker is funded with, and funds it.
fn start_attack_testnet(
    report: &Path,
    q: f64,
    network: LocalNetwork,
    trials: usize,
    links: Vec<Link>,
    nodes: &crate::cluster::NodeEngine,
) -> Result<Testnet> {
    let nodes_dir = report.join("nodes");
    if nodes_dir.exists() {
        std::fs::remove_dir_all(&nodes_dir)
            .with_context(|| format!("cannot clear {}", nodes_dir.display()))?;
    }
    // fund_attacker mines a coin per trial, one more, and the blocks to mature them at once.
    let funding = trials + 1 + LOCAL_MATURITY as usize;
    let params = network.params(genesis_time_for(funding, network.spacing))?;
    eprintln!(
        "starting honest miner, merchant and attacker (share {q:.2}, {} proof of work) in {}",
        match network.pow {
            PowMode::Real => "real",
            PowMode::Simulated => "simulated",
        },
        nodes_dir.display()
    );
    let testnet = Testnet::start(
        &nodes_dir,
        &params,
        &crate::attack::node_specs(q),
        network.miners_hash_rate(),
        links,
        nodes,
        Lifetime::WithThisProcess,
    )?;
    if let Err(error) = crate::attack::fund_attacker(&testnet, trials) {
        let _ = testnet.shutdown();
        return Err(error);
    }
    Ok(testnet)
}

/// How often the progress bar is redrawn at most: the engine finishes thousands of trials a
/// second, and a log would otherwise get a line for each.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// A progress bar of `total` trials with elapsed time and ETA: call with (done, reversed,
/// whether the run stopped).
fn trial_progress(total: usize) -> impl FnMut(usize, u64, bool) {
    let started = std::time::Instant::now();
    let mut drawn: Option<std::time::Instant> = None;
    move |done: usize, reversed: u64, stopped: bool| {
        let due = drawn.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY);
        if due || stopped || done == total {
            drawn = Some(std::time::Instant::now());
            let caption = trial_caption(done, total, reversed, started.elapsed());
            progress_bar(done, if stopped { done } else { total }, &caption, true);
        }
    }
}

/// When a double-spend run stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StopRule {
    /// After `--trials` per number of confirmations.
    Trials,
    /// Once the 95% interval excludes `value` (one number of confirmations) after at least
    /// `min_trials`, or after `max_trials`. Looking after every trial, a run would otherwise
    /// stop on the first lucky streak (two reversals in three trials already exclude 0.13).
    Separated {
        /// The value to tell the measured rate from (Nakamoto's or the exact one).
        value: f64,
        /// Trials at least.
        min_trials: usize,
        /// Trials at most.
        max_trials: usize,
    },
}

/// A trial and its number in the run.
type NumberedTrial = (usize, crate::attack::Trial);

/// What one worker of a run produced: its trials, and its testnet's seeds (real nodes).
type WorkerOutput = (Vec<NumberedTrial>, Option<crate::report::TestnetSeeds>);

/// The trials of a run, handed out to its testnets one at a time, and their tally.
struct Pool<'a> {
    plan: &'a [u32],
    stop_rule: StopRule,
    state: std::sync::Mutex<PoolState>,
}

struct PoolState {
    issued: usize,
    done: usize,
    reversed: u64,
    stopped: bool,
    progress: Box<dyn FnMut(usize, u64, bool) + Send>,
}

impl Pool<'_> {
    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next trial's number and number of confirmations, or `None` when the run is over.
    fn next(&self) -> Option<(usize, u32)> {
        let mut state = self.state();
        let z = match self.stop_rule {
            _ if state.stopped => None,
            StopRule::Trials => self.plan.get(state.issued).copied(),
            StopRule::Separated { max_trials, .. } => {
                (state.issued < max_trials).then_some(self.plan[0])
            }
        };
        let index = state.issued;
        state.issued += usize::from(z.is_some());
        z.map(|z| (index, z))
    }

    /// Counts a finished trial; stops the run once its interval excludes the value asked.
    fn record(&self, reversed: bool) {
        let mut state = self.state();
        state.done += 1;
        state.reversed += u64::from(reversed);
        let (done, successes) = (state.done, state.reversed);
        if let StopRule::Separated {
            value, min_trials, ..
        } = self.stop_rule
        {
            state.stopped |=
                done >= min_trials && crate::analysis::separates(successes, done as u64, value);
        }
        let stopped = state.stopped;
        (state.progress)(done, successes, stopped);
    }
}

/// Runs the double-spend attack on `run.parallel` fresh three-node testnets side by side (the
/// trials handed out one at a time), pools their trials and writes the report.
pub fn double_spend(run: &AttackRun) -> Result<crate::report::Report> {
    use crate::attack::Trial;
    let plan: Vec<u32> = run
        .confirmations
        .iter()
        .flat_map(|&z| std::iter::repeat_n(z, run.trials as usize))
        .collect();
    let total = match run.stop_rule {
        StopRule::Trials => plan.len(),
        StopRule::Separated { max_trials, .. } => max_trials,
    };
    if plan.is_empty() {
        bail!("no trials to run");
    }
    let parallel = (run.parallel.max(1) as usize).min(total);
    let started = std::time::Instant::now();
    let mut progress = trial_progress(total);
    progress(0, 0, false);
    let pool = Pool {
        plan: &plan,
        stop_rule: run.stop_rule,
        state: std::sync::Mutex::new(PoolState {
            issued: 0,
            done: 0,
            reversed: 0,
            stopped: false,
            progress: Box::new(progress),
        }),
    };
    let outcomes: Vec<Result<WorkerOutput>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..parallel)
            .map(|instance| {
                let pool = &pool;
                scope.spawn(move || match run.engine {
                    EngineKind::Nodes => double_spend_on_one_testnet(run, instance, parallel, pool),
                    EngineKind::Sim => {
                        double_spend_in_engine(run, pool).map(|trials| (trials, None))
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("an attack testnet's thread panicked")))
            })
            .collect()
    });
    let mut numbered = Vec::with_capacity(total);
    let mut seeds = Vec::new();
    for outcome in outcomes {
        let (trials, testnet) = outcome?;
        numbered.extend(trials);
        seeds.extend(testnet);
    }
    // In the order issued (the plan's order of confirmations): a seeded engine run's report
    // does not depend on which thread ran what.
    numbered.sort_by_key(|(index, _)| *index);
    let trials: Vec<Trial> = numbered.into_iter().map(|(_, trial)| trial).collect();
    let mut report = crate::report::build(run.settings, trials);
    report.wall_seconds = Some(started.elapsed().as_secs_f64());
    report.testnets = parallel as u32;
    report.engine = run.engine;
    report.image = run.nodes.image().map(str::to_owned);
    report.seed = (run.engine == EngineKind::Sim).then_some(run.seed);
    seeds.sort_by_key(|testnet| testnet.instance);
    report.testnet_seeds = seeds;
    crate::report::write(&report, &run.report)?;
    Ok(report)
}

/// One attack testnet's trials, taken from `pool` until it is empty. Its nodes run in the
/// report folder (or its `testnet-K` subfolder when there are several); it is funded for an
/// even share of the trials, and more as it runs out.
fn double_spend_on_one_testnet(
    run: &AttackRun,
    instance: usize,
    parallel: usize,
    pool: &Pool,
) -> Result<WorkerOutput> {
    use crate::attack;
    let dir = if parallel > 1 {
        run.report.join(format!("testnet-{instance}"))
    } else {
        run.report.clone()
    };
    let planned = match run.stop_rule {
        StopRule::Trials => pool.plan.len(),
        StopRule::Separated { max_trials, .. } => max_trials.min(1_000),
    };
    let share = planned.div_ceil(parallel).max(1);
    let testnet = start_attack_testnet(
        &dir,
        run.settings.q,
        LocalNetwork {
            pow: run.settings.pow,
            retarget: run.settings.retarget,
            instance: instance as u32,
            speedup: run.settings.speedup,
            ..LocalNetwork::new(run.hash_rate, run.spacing)
        },
        share,
        Link::plain(links(Topology::Mesh, 3, 0)),
        &run.nodes,
    )?;
    let outcome = (|| -> Result<Vec<NumberedTrial>> {
        let mut trials = Vec::new();
        let mut funded = share;
        while let Some((index, z)) = pool.next() {
            if trials.len() == funded {
                attack::fund_attacker(&testnet, share)?;
                funded += share;
            }
            let trial = attack::run_trial(&testnet, run.settings, z)?;
            pool.record(trial.reversed);
            trials.push((index, trial));
        }
        Ok(trials)
    })();
    let seeds = crate::report::TestnetSeeds {
        instance: instance as u32,
        genesis: testnet.params.genesis_hash().to_string(),
        miners: testnet
            .state
            .nodes
            .iter()
            .map(|node| (node.name.clone(), testnet.mining_seed(&node.name)))
            .collect(),
    };
    let stopped = testnet.shutdown();
    let trials = outcome?;
    stopped?;
    Ok((trials, Some(seeds)))
}

/// Trials taken from `pool` and run in the virtual-time engine until it is empty.
fn double_spend_in_engine(run: &AttackRun, pool: &Pool) -> Result<Vec<NumberedTrial>> {
    use crate::engine::{double_spend, trial_seed, GENESIS_TIME};
    let network = LocalNetwork {
        pow: PowMode::Simulated,
        retarget: run.settings.retarget,
        ..LocalNetwork::new(run.hash_rate, run.spacing)
    };
    let setup = double_spend::Setup::new(network.params(GENESIS_TIME)?, run.hash_rate as f64, 0.0);
    let mut trials = Vec::new();
    while let Some((index, z)) = pool.next() {
        let seed = trial_seed(run.seed, index as u64);
        let trial = double_spend::run_trial(&setup, run.settings, z, seed)?;
        pool.record(trial.reversed);
        trials.push((index, trial));
    }
    Ok(trials)
}

/// A race or Finney experiment in the virtual-time engine.
fn zero_confirmation_in_engine(
    run: &ZeroConfirmationRun,
) -> Result<crate::zero_conf::ZeroConfirmationReport> {
    use crate::engine::{double_spend::Setup, zero_conf::run_trials, GENESIS_TIME};
    use crate::zero_conf::{self, Timing};
    let (spacing, delay) = match run.timing {
        Timing::Race { latency_ms, .. } => (1, latency_ms as f64 / 1000.0),
        Timing::Finney { spacing, .. } => (spacing, 0.0),
    };
    let network = LocalNetwork {
        pow: PowMode::Simulated,
        ..LocalNetwork::new(run.hash_rate, spacing)
    };
    let setup = Setup::new(network.params(GENESIS_TIME)?, run.hash_rate as f64, delay);
    let total = run.trials as usize;
    let mut progress = trial_progress(total);
    progress(0, 0, false);
    let trials = run_trials(
        &setup,
        run.timing,
        run.trials,
        run.seed,
        |done, reversed| progress(done, reversed, false),
    )?;
    let mut report = zero_conf::build(run.timing, run.seed, trials);
    report.engine = EngineKind::Sim;
    zero_conf::write(&report, &run.report)?;
    Ok(report)
}

/// A race or Finney experiment.
#[derive(Clone, Debug)]
pub struct ZeroConfirmationRun {
    /// The attack and its timings.
    pub timing: crate::zero_conf::Timing,
    /// Trials.
    pub trials: u32,
    /// The seed the trials' timings are drawn from.
    pub seed: u64,
    /// The honest miner's hash rate (Finney; the race's miner mines on demand).
    pub hash_rate: u64,
    /// Real hashing, or simulated proof of work.
    pub pow: PowMode,
    /// The report folder (the nodes run in its `nodes` subfolder).
    pub report: PathBuf,
    /// Where real nodes run: processes of a quarryd, or Docker containers.
    pub nodes: crate::cluster::NodeEngine,
    /// Real nodes or the virtual-time engine.
    pub engine: EngineKind,
}

/// Runs a race or Finney experiment on a fresh three-node testnet (or in the engine) and
/// writes the report.
pub fn zero_confirmation(
    run: &ZeroConfirmationRun,
) -> Result<crate::zero_conf::ZeroConfirmationReport> {
    use crate::zero_conf::{self, Timing};
    if run.engine == EngineKind::Sim {
        return zero_confirmation_in_engine(run);
    }
    let (hash_rate, spacing, links) = match run.timing {
        // Nobody mines in the background: the miner mines one block after each race.
        Timing::Race { latency_ms, .. } => {
            (0, 1, Link::delayed(links(Topology::Mesh, 3, 0), latency_ms))
        }
        Timing::Finney { spacing, .. } => (
            run.hash_rate,
            spacing,
            Link::plain(links(Topology::Mesh, 3, 0)),
        ),
    };
    let total = run.trials as usize;
    let testnet = start_attack_testnet(
        &run.report,
        0.0,
        LocalNetwork {
            pow: run.pow,
            ..LocalNetwork::new(hash_rate, spacing)
        },
        total,
        links,
        &run.nodes,
    )?;
    let mut progress = trial_progress(total);
    progress(0, 0, false);
    let outcome = zero_conf::run_trials(
        &testnet,
        run.timing,
        run.trials,
        run.seed,
        |done, reversed| progress(done, reversed, false),
    );
    let stopped = testnet.shutdown();
    let trials = outcome?;
    stopped?;
    let mut report = zero_conf::build(run.timing, run.seed, trials);
    report.image = run.nodes.image().map(str::to_owned);
    zero_conf::write(&report, &run.report)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trial_caption_gives_elapsed_time_and_the_time_left_at_the_pace_so_far() {
        assert_eq!(
            trial_caption(0, 20, 0, Duration::from_secs(7)),
            "0/20 trials, 0 reversed, 0:07 elapsed, ETA -"
        );
        assert_eq!(
            trial_caption(5, 20, 2, Duration::from_secs(75)),
            "5/20 trials, 2 reversed, 1:15 elapsed, ETA 3:45"
        );
        assert_eq!(
            trial_caption(20, 20, 9, Duration::from_secs(300)),
            "20/20 trials, 9 reversed, 5:00 elapsed, ETA 0:00"
        );
    }
}
