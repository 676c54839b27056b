//! The race and Finney attacks in virtual time: the trials of [`crate::zero_conf`] on engine
//! nodes, with the same report. A node keeps the first of two conflicting spends it hears,
//! as a mempool without replacement does.

use super::double_spend::{short, Setup, Timeline};
use super::{Engine, Happened};
use crate::attack::{ATTACKER, HONEST, MERCHANT};
use crate::zero_conf::{run_drawn, Timed, Timing, Trials, ZeroConfirmationTrial};

/// Runs `trials` trials of the attack `timing` describes on `setup`, drawing timings from
/// `seed` as the real-node run does; `progress(done, reversed)` after each.
pub fn run_trials(
    setup: &Setup,
    timing: Timing,
    trials: u32,
    seed: u64,
    progress: impl FnMut(usize, u64),
) -> anyhow::Result<Trials> {
    run_drawn(timing, trials, seed, progress, |drawn, index| {
        let engine_seed = super::trial_seed(seed, u64::from(index));
        match timing {
            Timing::Race { .. } => Ok((race(setup, drawn, engine_seed)?, 0.0, 0)),
            Timing::Finney { .. } => finney(setup, drawn, engine_seed),
        }
    })
}

/// One race: payment to the merchant's node and conflicting spend to the miner's, `offset_ms`
/// apart, every link delayed by the setup's delay; then the miner mines one block.
fn race(setup: &Setup, offset_ms: i64, seed: u64) -> anyhow::Result<ZeroConfirmationTrial> {
    let mut engine = setup.engine(&[0.0; 3], seed)?;
    let mut timeline = Timeline::new(&engine);
    let (payment, conflicting) = setup.conflicting_pair();
    let (payment_id, conflicting_id) = (payment.txid(), conflicting.txid());
    let start = engine.now();
    let offset = offset_ms as f64 / 1000.0;
    let (pay_at, back_at) = if offset >= 0.0 {
        (start, start + offset)
    } else {
        (start - offset, start)
    };
    let mut sends = [(pay_at, MERCHANT, payment), (back_at, HONEST, conflicting)];
    sends.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (at, node, tx) in sends {
        engine.advance_to(at)?;
        engine.submit_transaction(node, tx);
    }
    timeline.note(
        &engine,
        format!(
            "attacker pays the merchant ({}) and, {offset_ms:+} ms later, gives the miner a conflicting spend ({})",
            short(&payment_id),
            short(&conflicting_id)
        ),
    );
    deliver_everything(&mut engine)?;
    let merchant_accepted = engine.holds(MERCHANT, &payment_id);
    timeline.note(
        &engine,
        format!(
            "merchant's node took the payment: {merchant_accepted}; the miner holds the {}",
            if engine.holds(HONEST, &conflicting_id) {
                "conflicting spend"
            } else {
                "payment"
            }
        ),
    );
    engine.generate(HONEST)?;
    timeline.note(&engine, "the miner mines the version it heard first");
    deliver_everything(&mut engine)?;
    Ok(outcome(
        &engine,
        timeline,
        (offset_ms, offset_ms as f64),
        merchant_accepted,
        (payment_id, conflicting_id),
    ))
}

/// One Finney trial: the attacker's secret block with the conflicting spend, the payment, the
/// release `hold_ms` later while the honest miner mines. Also returns the seconds the honest
/// miner mined and its blocks on the final chain.
fn finney(setup: &Setup, hold_ms: i64, seed: u64) -> anyhow::Result<Timed> {
    let mut engine = setup.engine(&[setup.hash_rate, 0.0, 0.0], seed)?;
    let mut timeline = Timeline::new(&engine);
    let start_height = engine.tip_height(MERCHANT);
    let (payment, conflicting) = setup.conflicting_pair();
    let (payment_id, conflicting_id) = (payment.txid(), conflicting.txid());
    engine.cut(ATTACKER);
    engine.submit_transaction(ATTACKER, conflicting);
    engine.generate(ATTACKER)?;
    let mined = engine.now();
    engine.set_mining(HONEST, true);
    timeline.note(
        &engine,
        format!(
            "attacker mines, in secret, a block spending its coin to itself ({}); the honest miner mines on",
            short(&conflicting_id)
        ),
    );
    let merchant_accepted = engine.submit_transaction(MERCHANT, payment);
    timeline.note(
        &engine,
        format!(
            "attacker pays the merchant with the same coin ({}); its node took it: {merchant_accepted}",
            short(&payment_id)
        ),
    );
    engine.advance_to(mined + hold_ms as f64 / 1000.0)?;
    engine.heal(ATTACKER);
    timeline.note(
        &engine,
        format!("attacker releases its block after {hold_ms} ms"),
    );
    // A tie (an honest block at the same height) is settled by the honest miner's next block.
    while engine.in_flight() || !agree(&engine) {
        if engine.step()?.is_none() {
            anyhow::bail!("nothing left to happen while the nodes disagree");
        }
    }
    engine.set_mining(HONEST, false);
    let seconds = engine.now() - mined;
    let honest_blocks = engine
        .branch(MERCHANT, start_height + 1, engine.tip_height(MERCHANT))
        .iter()
        .filter(|hash| engine.mined_by(MERCHANT, hash) == Some(HONEST))
        .count() as u64;
    let trial = outcome(
        &engine,
        timeline,
        (hold_ms, hold_ms as f64),
        merchant_accepted,
        (payment_id, conflicting_id),
    );
    Ok((trial, seconds, honest_blocks))
}

fn agree(engine: &Engine) -> bool {
    let tip = engine.tip(MERCHANT);
    engine.tip(HONEST) == tip && engine.tip(ATTACKER) == tip
}

/// Lets every block and transaction in flight arrive.
fn deliver_everything(engine: &mut Engine) -> anyhow::Result<()> {
    while engine.in_flight() {
        if let Some(Happened::Mined { .. }) = engine.step()? {
            anyhow::bail!("a miner mined while only deliveries were expected");
        }
    }
    Ok(())
}

/// The trial's outcome on the merchant's node.
fn outcome(
    engine: &Engine,
    mut timeline: Timeline,
    (drawn_ms, actual_ms): (i64, f64),
    merchant_accepted: bool,
    (payment, conflicting): (quarry_chain::Txid, quarry_chain::Txid),
) -> ZeroConfirmationTrial {
    let conflicting_confirmed = engine.confirmations(MERCHANT, &conflicting) > 0;
    let reversed = merchant_accepted && conflicting_confirmed;
    timeline.note(
        engine,
        match (merchant_accepted, conflicting_confirmed) {
            (true, true) => {
                "the conflicting spend is confirmed: the payment the merchant took is reversed"
            }
            (true, false) => "the payment stands",
            (false, _) => {
                "the merchant's node heard the conflicting spend first and refused the payment: no sale"
            }
        },
    );
    ZeroConfirmationTrial {
        drawn_ms,
        actual_ms,
        merchant_accepted,
        conflicting_confirmed,
        reversed,
        payment: payment.to_string(),
        conflicting: conflicting.to_string(),
        merchant_wallet_before: None,
        merchant_wallet_after: None,
        timeline: timeline.events(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::LocalNetwork;
    use quarry_chain::PowMode;

    fn setup(spacing: u32, delay: f64) -> Setup {
        let network = LocalNetwork {
            pow: PowMode::Simulated,
            ..LocalNetwork::new(20_000, spacing)
        };
        Setup::new(
            network.params(super::super::GENESIS_TIME).unwrap(),
            20_000.0,
            delay,
        )
    }

    #[test]
    fn a_race_is_reversed_exactly_when_the_offset_is_within_the_latency() {
        let setup = setup(1, 0.2);
        for (offset, reversed, accepted) in [
            (0, true, true),
            (150, true, true),
            (-150, true, true),
            (250, false, true),
            (-250, false, false),
        ] {
            let trial = race(&setup, offset, 1).unwrap();
            assert_eq!(
                (trial.reversed, trial.merchant_accepted),
                (reversed, accepted),
                "offset {offset}: {trial:#?}"
            );
        }
    }

    #[test]
    fn a_finney_block_released_at_once_reverses_and_one_held_for_ever_does_not() {
        let setup = setup(2, 0.0);
        let (at_once, _, _) = finney(&setup, 0, 3).unwrap();
        assert!(at_once.reversed, "{at_once:#?}");
        let (held, _, found) = finney(&setup, 600_000, 3).unwrap();
        assert!(!held.reversed && held.merchant_accepted, "{held:#?}");
        assert!(found > 0);
    }

    #[test]
    fn finney_rates_agree_with_the_model_and_the_run_reproduces() {
        let setup = setup(2, 0.0);
        let timing = Timing::Finney {
            max_hold_ms: 4_000,
            spacing: 2,
        };
        let trials = run_trials(&setup, timing, 400, 9, |_, _| {}).unwrap();
        let report = crate::zero_conf::build(timing, 9, trials);
        assert!(
            !report.model_outside_interval,
            "{} {:?} {}",
            report.rate, report.interval, report.model
        );
        let again = run_trials(&setup, timing, 400, 9, |_, _| {}).unwrap();
        let again = crate::zero_conf::build(timing, 9, again);
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            serde_json::to_string(&again).unwrap()
        );
    }
}
