//! The two zero-confirmation attacks as experiments on real nodes: many trials, each with a
//! timing drawn from a seeded generator, a success rate with its 95% interval beside the
//! model's probability, and a report folder like the double spend's.
//!
//! - **Race**: every link delays messages by `latency` each way. The attacker hands the
//!   payment to the merchant's node and a conflicting spend of the same coin to the miner's
//!   node, the second `offset` after the first (`offset` uniform in `[-spread, spread]`). Each
//!   node keeps the version it heard first, so the merchant takes the payment when the
//!   conflicting spend reaches it later (`offset > -latency`) and the miner mines the conflicting
//!   spend when it arrives before the relayed payment (`offset < latency`): the model says the
//!   payment is reversed exactly when `|offset| < latency`, probability `latency / spread`.
//! - **Finney**: the honest miner mines in the background, one block per `spacing` on
//!   average. The attacker mines in secret a block spending its coin to itself, pays the merchant
//!   with the same coin, and releases its block `hold` after mining it (`hold` uniform in
//!   `[0, max_hold]`, at least the time the payment takes). An honest block found during the hold
//!   reaches the merchant first and keeps the payment; otherwise the attacker's block takes the
//!   chain's next height and the payment is dropped: probability `exp(-hold / spacing)`.

use std::time::{Duration, Instant};

use anyhow::Result;
use quarry_chain::{BlockHash, Txid};
use quarry_rpc::types::BlockWithTransactions;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;

use crate::analysis::wilson_interval;
use crate::attack::{
    confirmations, conflicting_pair, set_mining, settle, wallet_status, Clock, Event, ATTACKER,
    HONEST, MERCHANT,
};
use crate::cluster::Testnet;
use crate::commands::wait_for_sync;

/// Which zero-confirmation attack.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZeroConfirmation {
    /// The payment reaches the merchant while the conflicting spend reaches the miner.
    Race,
    /// The conflicting spend is in a block the attacker mined in secret before paying.
    Finney,
}

impl ZeroConfirmation {
    /// Its name in titles.
    pub fn title(self) -> &'static str {
        match self {
            Self::Race => "Race attack",
            Self::Finney => "Finney attack",
        }
    }
}

/// The timings the trials draw from.
#[derive(Clone, Copy, Debug, Serialize)]
pub enum Timing {
    /// The race's link delay and the spread of the conflicting spend's offset, milliseconds.
    Race {
        /// One-way delay of every link.
        latency_ms: u64,
        /// The offset is uniform in `[-spread_ms, spread_ms]`.
        spread_ms: u64,
    },
    /// The Finney attacker's longest hold and the honest miner's target spacing.
    Finney {
        /// The hold is uniform in `[0, max_hold_ms]`.
        max_hold_ms: u64,
        /// Seconds between honest blocks, on average.
        spacing: u32,
    },
}

impl Timing {
    /// The attack these timings belong to.
    pub fn attack(self) -> ZeroConfirmation {
        match self {
            Self::Race { .. } => ZeroConfirmation::Race,
            Self::Finney { .. } => ZeroConfirmation::Finney,
        }
    }

    /// Draws one trial's timing, in milliseconds: the race's offset or the Finney hold.
    pub(crate) fn draw(self, rng: &mut impl Rng) -> i64 {
        match self {
            Self::Race { spread_ms, .. } => {
                let spread = spread_ms as i64;
                rng.random_range(-spread..=spread)
            }
            Self::Finney { max_hold_ms, .. } => rng.random_range(0..=max_hold_ms as i64),
        }
    }

    /// The model's probability that the payment is reversed at timing `x` milliseconds.
    pub fn success_at(self, x: f64) -> f64 {
        match self {
            Self::Race { latency_ms, .. } => f64::from(u8::from(x.abs() < latency_ms as f64)),
            Self::Finney { spacing, .. } => (-x / (f64::from(spacing) * 1000.0)).exp(),
        }
    }

    /// What the x axis measures.
    pub fn axis(self) -> &'static str {
        match self {
            Self::Race { .. } => {
                "conflicting spend at the miner minus payment at the merchant (ms)"
            }
            Self::Finney { .. } => "attacker's block held secret (ms)",
        }
    }

    /// The model, in words.
    pub fn model_text(self) -> String {
        match self {
            Self::Race {
                latency_ms,
                spread_ms,
            } => format!(
                "Every link delays messages {latency_ms} ms each way. The attacker gives the \
                 payment to the merchant's node and a conflicting spend to the miner's node, the \
                 second a uniform offset in [-{spread_ms}, {spread_ms}] ms after the first; every \
                 node keeps the version it hears first. The merchant takes the payment unless the \
                 conflicting spend reaches it first (offset < -{latency_ms} ms); the miner mines \
                 the conflicting spend if it arrives before the relayed payment (offset < \
                 {latency_ms} ms). Model: reversed exactly when |offset| < {latency_ms} ms."
            ),
            Self::Finney {
                max_hold_ms,
                spacing,
            } => format!(
                "The honest miner finds a block every {spacing} s on average (Poisson). The \
                 attacker mines in secret a block spending its coin to itself, pays the merchant \
                 with the same coin and releases its block after a hold uniform in [0, \
                 {max_hold_ms}] ms (at least the time paying takes). An honest block found \
                 during the hold reaches the merchant first and keeps the payment. Model: \
                 reversed with probability exp(-hold / {spacing} s), averaged over the holds the \
                 trials had."
            ),
        }
    }
}

/// What one trial did.
#[derive(Clone, Debug, Serialize)]
pub struct ZeroConfirmationTrial {
    /// The drawn timing, milliseconds: the race's offset or the Finney hold asked for.
    pub drawn_ms: i64,
    /// The timing the trial had: the race's offset, or the Finney hold as it happened.
    pub actual_ms: f64,
    /// Whether the merchant's node took the payment into its mempool (the goods go out).
    pub merchant_accepted: bool,
    /// Whether the conflicting spend is confirmed on the merchant's node at the end.
    pub conflicting_confirmed: bool,
    /// The attack's success: the merchant took the payment and the conflicting spend won.
    pub reversed: bool,
    /// The payment.
    pub payment: String,
    /// The conflicting spend.
    pub conflicting: String,
    /// The payment's status in the merchant's wallet when it took it.
    pub merchant_wallet_before: Option<String>,
    /// The payment's status in the merchant's wallet at the end.
    pub merchant_wallet_after: Option<String>,
    /// What happened, in order.
    pub timeline: Vec<Event>,
}

fn in_mempool(testnet: &Testnet, node: usize, txid: &str) -> Result<bool> {
    let pool: Vec<Txid> = testnet.call(node, "getrawmempool", json!([]))?;
    Ok(pool.iter().any(|in_pool| in_pool.to_string() == txid))
}

fn sleep_until(instant: Instant) {
    std::thread::sleep(instant.saturating_duration_since(Instant::now()));
}

/// One race trial: the two spends sent `offset_ms` apart, then the miner mines one block.
fn race_trial(
    testnet: &Testnet,
    offset_ms: i64,
    settle: Duration,
) -> Result<ZeroConfirmationTrial> {
    let mut clock = Clock(Instant::now(), Vec::new());
    wait_for_sync(testnet, Duration::from_secs(120))?;
    let (payment, pay_hex, conflicting, back_hex) = conflicting_pair(testnet)?;
    let start = Instant::now() + Duration::from_millis(20);
    let offset = Duration::from_millis(offset_ms.unsigned_abs());
    let (pay_at, back_at) = if offset_ms >= 0 {
        (start, start + offset)
    } else {
        (start + offset, start)
    };
    // Each node refuses the version it hears second: a refusal is the race, not an error.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            sleep_until(pay_at);
            let _ = testnet.run(MERCHANT, "sendrawtransaction", json!([pay_hex]));
        });
        scope.spawn(|| {
            sleep_until(back_at);
            let _ = testnet.run(HONEST, "sendrawtransaction", json!([back_hex]));
        });
    });
    clock.note(format!(
        "attacker pays the merchant ({}) and, {offset_ms:+} ms later, gives the miner a conflicting spend ({})",
        &payment[..12],
        &conflicting[..12]
    ));
    std::thread::sleep(settle);
    let merchant_accepted = in_mempool(testnet, MERCHANT, &payment)?;
    let miner_has_conflicting = in_mempool(testnet, HONEST, &conflicting)?;
    let merchant_wallet_before = wallet_status(testnet, MERCHANT, &payment)?;
    clock.note(format!(
        "merchant's node took the payment: {merchant_accepted}; the miner holds the {}",
        if miner_has_conflicting {
            "conflicting spend"
        } else {
            "payment"
        }
    ));
    let miner = testnet.state.nodes[HONEST]
        .address(&testnet.params)
        .to_string();
    testnet.generate(HONEST, 1, &miner)?;
    clock.note("the miner mines the version it heard first");
    wait_for_sync(testnet, Duration::from_secs(120))?;
    finish(
        testnet,
        clock,
        offset_ms,
        offset_ms as f64,
        merchant_accepted,
        merchant_wallet_before,
        payment,
        conflicting,
    )
}

/// Blocks paying node `miner` on node `reader`'s best chain above `height`.
fn blocks_paying(testnet: &Testnet, reader: usize, miner: usize, height: u64) -> Result<u64> {
    let tip: u64 = testnet.call(reader, "getblockcount", json!([]))?;
    let address = testnet.state.nodes[miner]
        .address(&testnet.params)
        .to_string();
    let mut count = 0;
    for h in height + 1..=tip {
        let hash: BlockHash = testnet.call(reader, "getblockhash", json!([h]))?;
        let block: BlockWithTransactions = testnet.call(reader, "getblock", json!([hash, 2]))?;
        let payee = block.tx.first().and_then(|coinbase| coinbase.vout.first());
        count += u64::from(payee.is_some_and(|out| out.script_pubkey.address == address));
    }
    Ok(count)
}

/// One Finney trial: a secret block with the conflicting spend, the payment, the release
/// `hold_ms` after the block was mined, the honest miner mining from the secret block on.
/// Also returns how long the honest miner mined and the blocks it found on the final chain.
fn finney_trial(testnet: &Testnet, hold_ms: i64) -> Result<(ZeroConfirmationTrial, Duration, u64)> {
    let mut clock = Clock(Instant::now(), Vec::new());
    // Between trials nobody mines; what the last trial left in the mempools is confirmed.
    set_mining(testnet, HONEST, false)?;
    settle(testnet)?;
    let start_height: u64 = testnet.call(MERCHANT, "getblockcount", json!([]))?;
    let (payment, pay_hex, conflicting, back_hex) = conflicting_pair(testnet)?;
    testnet.partition(&[ATTACKER], &[HONEST, MERCHANT])?;
    testnet.run(ATTACKER, "sendrawtransaction", json!([back_hex]))?;
    let attacker = testnet.state.nodes[ATTACKER]
        .address(&testnet.params)
        .to_string();
    testnet.generate(ATTACKER, 1, &attacker)?;
    let mined = Instant::now();
    set_mining(testnet, HONEST, true)?;
    clock.note(format!(
        "attacker mines, in secret, a block spending its coin to itself ({}); the honest miner mines on",
        &conflicting[..12]
    ));
    let _ = testnet.run(MERCHANT, "sendrawtransaction", json!([pay_hex]));
    let merchant_accepted = in_mempool(testnet, MERCHANT, &payment)?;
    let merchant_wallet_before = wallet_status(testnet, MERCHANT, &payment)?;
    clock.note(format!(
        "attacker pays the merchant with the same coin ({}); its node took it: {merchant_accepted}",
        &payment[..12]
    ));
    sleep_until(mined + Duration::from_millis(hold_ms.unsigned_abs()));
    testnet.heal()?;
    let held = mined.elapsed().as_secs_f64() * 1000.0;
    clock.note(format!("attacker releases its block after {held:.0} ms"));
    // A tie (an honest block at the same height) is settled by the honest miner's next block.
    let settled = wait_for_sync(testnet, Duration::from_secs(120));
    set_mining(testnet, HONEST, false)?;
    let mining = mined.elapsed();
    settled?;
    let honest_blocks = blocks_paying(testnet, MERCHANT, HONEST, start_height)?;
    let trial = finish(
        testnet,
        clock,
        hold_ms,
        held,
        merchant_accepted,
        merchant_wallet_before,
        payment,
        conflicting,
    )?;
    Ok((trial, mining, honest_blocks))
}

/// Reads the outcome on the merchant's node once the nodes agree.
#[allow(clippy::too_many_arguments)]
fn finish(
    testnet: &Testnet,
    mut clock: Clock,
    drawn_ms: i64,
    actual_ms: f64,
    merchant_accepted: bool,
    merchant_wallet_before: Option<String>,
    payment: String,
    conflicting: String,
) -> Result<ZeroConfirmationTrial> {
    let conflicting_confirmed = confirmations(testnet, MERCHANT, &conflicting).0 > 0;
    let merchant_wallet_after = wallet_status(testnet, MERCHANT, &payment)?;
    let reversed = merchant_accepted && conflicting_confirmed;
    clock.note(match (merchant_accepted, conflicting_confirmed) {
        (true, true) => {
            "the conflicting spend is confirmed: the payment the merchant took is reversed"
        }
        (true, false) => "the payment stands",
        (false, _) => {
            "the merchant's node heard the conflicting spend first and refused the payment: no sale"
        }
    });
    Ok(ZeroConfirmationTrial {
        drawn_ms,
        actual_ms,
        merchant_accepted,
        conflicting_confirmed,
        reversed,
        payment,
        conflicting,
        merchant_wallet_before,
        merchant_wallet_after,
        timeline: clock.1,
    })
}

/// The trials, and the honest miner's seconds per block measured over them (Finney).
pub type Trials = (Vec<ZeroConfirmationTrial>, Option<f64>);

/// Runs `trials` trials of the attack `timing` describes on a funded attack testnet, drawing
/// timings from `seed`; `progress(done, reversed)` after each.
pub fn run_trials(
    testnet: &Testnet,
    timing: Timing,
    trials: u32,
    seed: u64,
    progress: impl FnMut(usize, u64),
) -> Result<Trials> {
    run_drawn(timing, trials, seed, progress, |drawn, _| match timing {
        Timing::Race {
            latency_ms,
            spread_ms,
        } => {
            let settle = Duration::from_millis(spread_ms + 2 * latency_ms + 500);
            Ok((race_trial(testnet, drawn, settle)?, 0.0, 0))
        }
        Timing::Finney { .. } => {
            let (trial, mined_for, found) = finney_trial(testnet, drawn)?;
            Ok((trial, mined_for.as_secs_f64(), found))
        }
    })
}

/// What one trial gives back: the trial, and (Finney) the seconds the honest miner mined and
/// the blocks it found on the final chain.
pub type Timed = (ZeroConfirmationTrial, f64, u64);

/// Draws `trials` timings from `seed` and runs `trial(timing, index)` for each, with
/// `progress(done, reversed)` after each; the honest spacing is measured over the trials.
pub fn run_drawn(
    timing: Timing,
    trials: u32,
    seed: u64,
    mut progress: impl FnMut(usize, u64),
    mut trial: impl FnMut(i64, u32) -> Result<Timed>,
) -> Result<Trials> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut done = Vec::with_capacity(trials as usize);
    let (mut mining, mut honest_blocks) = (0.0, 0u64);
    for index in 0..trials {
        let drawn = timing.draw(&mut rng);
        let (result, mined_for, found) = trial(drawn, index)?;
        mining += mined_for;
        honest_blocks += found;
        done.push(result);
        progress(
            done.len(),
            done.iter().filter(|t| t.reversed).count() as u64,
        );
    }
    // The honest miner's pace while it mined (blocks it lost to a release are not counted:
    // a slight overestimate of the spacing, noted in the report).
    let spacing = (honest_blocks > 0).then(|| mining / honest_blocks as f64);
    Ok((done, spacing))
}

/// The experiment's result.
#[derive(Clone, Debug, Serialize)]
pub struct ZeroConfirmationReport {
    /// Which attack.
    pub attack: ZeroConfirmation,
    /// Its timings.
    pub timing: Timing,
    /// The seed the timings were drawn from.
    pub seed: u64,
    /// Trials run.
    pub trials: u64,
    /// Payments reversed.
    pub reversed: u64,
    /// Trials where the merchant's node refused the payment (it heard the conflicting spend
    /// first): no sale, no success.
    pub refused: u64,
    /// Measured success rate.
    pub rate: f64,
    /// Its 95% Wilson interval.
    pub interval: (f64, f64),
    /// The model's probability over the timings the trials had.
    pub model: f64,
    /// Whether the model's value lies outside the interval.
    pub model_outside_interval: bool,
    /// Finney: the honest miner's seconds per block as measured over the trials.
    pub honest_spacing_measured: Option<f64>,
    /// Finney: the model's probability at that measured spacing.
    pub model_at_measured_spacing: Option<f64>,
    /// The model, in words.
    pub model_text: String,
    /// Every trial.
    pub trial_list: Vec<ZeroConfirmationTrial>,
    /// Real nodes or the virtual-time engine.
    pub engine: crate::engine::EngineKind,
    /// The image the real nodes ran, when they ran in Docker containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// The Finney model's probability over the holds `trials` had, honest blocks coming every
/// `spacing` seconds: the mean of exp(-hold / spacing).
fn finney_model(trials: &[ZeroConfirmationTrial], spacing: f64) -> f64 {
    let each = |trial: &ZeroConfirmationTrial| (-trial.actual_ms / (spacing * 1000.0)).exp();
    trials.iter().map(each).sum::<f64>() / trials.len().max(1) as f64
}

/// Builds the report from the trials and the honest spacing measured over them.
pub fn build(
    timing: Timing,
    seed: u64,
    (trial_list, honest_spacing): Trials,
) -> ZeroConfirmationReport {
    let trials = trial_list.len() as u64;
    let reversed = trial_list.iter().filter(|t| t.reversed).count() as u64;
    let refused = trial_list.iter().filter(|t| !t.merchant_accepted).count() as u64;
    let interval = wilson_interval(reversed, trials);
    let model = match timing {
        // Exact over the offset's distribution: P(|offset| < latency).
        Timing::Race {
            latency_ms,
            spread_ms,
        } => {
            let inside = (2 * latency_ms.min(spread_ms + 1)).saturating_sub(1);
            inside as f64 / (2 * spread_ms + 1) as f64
        }
        // The holds are what the trials had (paying takes time): averaged over them.
        Timing::Finney { spacing, .. } => finney_model(&trial_list, f64::from(spacing)),
    };
    let model_at_measured_spacing = match (timing, honest_spacing) {
        (Timing::Finney { .. }, Some(seconds)) => Some(finney_model(&trial_list, seconds)),
        _ => None,
    };
    ZeroConfirmationReport {
        attack: timing.attack(),
        timing,
        seed,
        trials,
        reversed,
        refused,
        rate: reversed as f64 / trials.max(1) as f64,
        interval,
        model,
        model_outside_interval: model < interval.0 || model > interval.1,
        honest_spacing_measured: honest_spacing,
        model_at_measured_spacing,
        model_text: timing.model_text(),
        trial_list,
        engine: crate::engine::EngineKind::Nodes,
        image: None,
    }
}

/// The summary: the table and the model.
pub fn summary(report: &ZeroConfirmationReport, style: crate::report::Style) -> String {
    use crate::report::{table, wrap};
    let headers = [
        "trials",
        "reversed",
        "refused",
        "rate",
        "95% interval",
        "model",
    ];
    let [rate, interval, model] = crate::report::rate_cells(
        report.rate,
        report.interval,
        report.model,
        report.model_outside_interval,
    );
    let row = vec![
        report.trials.to_string(),
        report.reversed.to_string(),
        report.refused.to_string(),
        rate,
        interval,
        model,
    ];
    let mut text = format!(
        "{} {} (seed {})\n\n{}",
        report.attack.title(),
        match report.engine {
            crate::engine::EngineKind::Nodes =>
                format!("on {}", crate::report::real_nodes(report.image.as_deref())),
            crate::engine::EngineKind::Sim => "in the virtual-time engine".to_owned(),
        },
        report.seed,
        table(&headers, &[row], style)
    );
    if report.model_outside_interval {
        text.push_str(&format!(
            "\n{}\n",
            wrap(
                "⚠ the model's value lies outside the measured 95% interval (reported as \
                 measured, not adjusted).",
                96
            )
        ));
    }
    let bullet = if style == crate::report::Style::Markdown {
        "- "
    } else {
        "  "
    };
    for line in [
        "reversed: the merchant took the payment and the conflicting spend was confirmed",
        "refused: the merchant's node heard the conflicting spend first (no sale)",
        "model: the probability of a reversal under the model below",
    ] {
        text.push_str(&format!("\n{bullet}{line}"));
    }
    text.push_str(&format!(
        "\n\n{}\n",
        wrap(&format!("Model: {}", report.model_text), 96)
    ));
    text
}

/// Writes `report.json`, `report.md` and `outcomes.svg` into `dir`.
pub fn write(report: &ZeroConfirmationReport, dir: &std::path::Path) -> Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    std::fs::write(dir.join("outcomes.svg"), crate::plot::outcomes_svg(report))?;
    let mut markdown = format!(
        "# {}\n\n{}\n![every trial's outcome against its timing](outcomes.svg)\n",
        report.attack.title(),
        summary(report, crate::report::Style::Markdown)
    );
    if let Some(trial) = report
        .trial_list
        .iter()
        .find(|t| t.reversed)
        .or(report.trial_list.first())
    {
        markdown.push_str("\n## Timeline of one trial\n\n");
        for event in &trial.timeline {
            markdown.push_str(&format!("- {:>7.2} s  {}\n", event.at, event.what));
        }
    }
    std::fs::write(dir.join("report.md"), markdown)?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn trial(x: f64, reversed: bool, accepted: bool) -> ZeroConfirmationTrial {
        ZeroConfirmationTrial {
            drawn_ms: x as i64,
            actual_ms: x,
            merchant_accepted: accepted,
            conflicting_confirmed: reversed || !accepted,
            reversed,
            payment: "cc".repeat(32),
            conflicting: "dd".repeat(32),
            merchant_wallet_before: Some("unconfirmed".into()),
            merchant_wallet_after: Some(if reversed { "conflicted" } else { "confirmed" }.into()),
            timeline: Vec::new(),
        }
    }

    #[test]
    fn the_race_model_is_the_share_of_offsets_inside_the_latency() {
        let timing = Timing::Race {
            latency_ms: 200,
            spread_ms: 400,
        };
        // Offsets -400..=400 ms: |offset| < 200 for 399 of the 801.
        let report = build(
            timing,
            7,
            (
                vec![trial(0.0, true, true), trial(300.0, false, true)],
                None,
            ),
        );
        assert!((report.model - 399.0 / 801.0).abs() < 1e-12);
        assert_eq!(timing.success_at(-199.0), 1.0);
        assert_eq!(timing.success_at(200.0), 0.0);
        // Within the spread, every offset is a reversal.
        let always = Timing::Race {
            latency_ms: 300,
            spread_ms: 100,
        };
        assert_eq!(
            build(always, 7, (vec![trial(0.0, true, true)], None)).model,
            1.0
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        assert!((0..1000).all(|_| always.draw(&mut rng).abs() <= 100));
    }

    #[test]
    fn the_finney_model_averages_over_the_holds_the_trials_had() {
        let timing = Timing::Finney {
            max_hold_ms: 4000,
            spacing: 2,
        };
        let report = build(
            timing,
            1,
            (
                vec![
                    trial(0.0, true, true),
                    trial(2000.0, false, true),
                    trial(4000.0, false, true),
                ],
                Some(4.0),
            ),
        );
        let expected = (1.0 + (-1.0f64).exp() + (-2.0f64).exp()) / 3.0;
        assert!((report.model - expected).abs() < 1e-12);
        // Honest blocks every 4 s instead of 2: exp(-hold / 4 s) over the same holds.
        let slower = (1.0 + (-0.5f64).exp() + (-1.0f64).exp()) / 3.0;
        assert!((report.model_at_measured_spacing.unwrap() - slower).abs() < 1e-12);
        assert_eq!((report.trials, report.reversed, report.refused), (3, 1, 0));
        let text = summary(&report, crate::report::Style::Terminal);
        assert!(
            text.contains("Finney attack on real nodes (seed 1)"),
            "{text}"
        );
        assert!(text.contains("exp(-hold / 2 s)"), "{text}");
        assert!(!text.contains('|'), "{text}");
    }

    #[test]
    fn a_model_value_outside_the_interval_is_flagged_not_adjusted() {
        let timing = Timing::Race {
            latency_ms: 300,
            spread_ms: 100,
        };
        let trials: Vec<_> = (0..20).map(|_| trial(0.0, false, true)).collect();
        let report = build(timing, 1, (trials, None));
        assert_eq!(report.rate, 0.0);
        assert_eq!(report.model, 1.0);
        assert!(report.model_outside_interval);
        assert!(summary(&report, crate::report::Style::Terminal).contains("not adjusted"));
        let dir = tempfile::tempdir().unwrap();
        write(&report, dir.path()).unwrap();
        for file in ["report.json", "report.md", "outcomes.svg"] {
            assert!(dir.path().join(file).exists(), "{file}");
        }
    }
}
