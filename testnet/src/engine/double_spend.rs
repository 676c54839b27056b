//! The private-chain double spend in virtual time: the trial of [`crate::attack::run_trial`]
//! step for step, on engine nodes instead of real ones, with the same report.

use quarry_chain::testing::{signed_spend, test_key, test_keypair, Spendable};
use quarry_chain::{Amount, Block, BlockHash, ChainParams, OutPoint, Transaction, TxOut};

use super::{funding_blocks, Engine, Happened, NodeId};
use crate::attack::{AttackSettings, Event, Trial, ATTACKER, HONEST, MERCHANT};

/// The engine's key for node `node`'s coinbases and payments.
fn key_number(node: NodeId) -> u64 {
    1_000 + node as u64
}

/// Fee of the payment and of the conflicting spend, in sats.
const FEE: u64 = 1_000;

/// The network and the blocks every trial starts from: one mature coin for the attacker.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The engine network (simulated proof of work).
    pub params: ChainParams,
    /// Total virtual hash rate of the miners.
    pub hash_rate: f64,
    /// One-way delay of every link, seconds.
    pub delay: f64,
    base: Vec<Block>,
}

impl Setup {
    /// A setup on `params` for miners totalling `hash_rate`.
    pub fn new(params: ChainParams, hash_rate: f64, delay: f64) -> Self {
        let base = funding_blocks(&params, test_key(key_number(ATTACKER)), 1);
        Self {
            params,
            hash_rate,
            delay,
            base,
        }
    }

    /// The attacker's payment to the merchant and its spend of the same coin back to itself.
    pub(crate) fn conflicting_pair(&self) -> (Transaction, Transaction) {
        let coin = self.coin();
        let spend_to = |node: NodeId| {
            signed_spend(
                self.params.genesis_hash(),
                &[coin],
                vec![TxOut {
                    value: Amount::from_sat(coin.output.value.to_sat() - FEE),
                    pubkey: test_key(key_number(node)),
                }],
            )
        };
        (spend_to(MERCHANT), spend_to(ATTACKER))
    }

    /// An engine on this setup: honest miner, merchant and attacker at `rates`.
    pub(crate) fn engine(&self, rates: &[f64; 3], seed: u64) -> anyhow::Result<Engine> {
        let keys: Vec<_> = (0..3).map(|node| test_key(key_number(node))).collect();
        Engine::new(&self.params, rates, &keys, self.delay, &self.base, seed)
    }

    fn coin(&self) -> Spendable {
        let coinbase = &self.base[0].transactions[0];
        Spendable {
            outpoint: OutPoint {
                txid: coinbase.txid(),
                vout: 0,
            },
            output: coinbase.outputs[0],
            keypair: test_keypair(key_number(ATTACKER)),
        }
    }
}

/// Notes events in virtual seconds since the trial started.
pub(crate) struct Timeline {
    start: f64,
    events: Vec<Event>,
}

impl Timeline {
    /// A timeline starting now.
    pub(crate) fn new(engine: &Engine) -> Self {
        Self {
            start: engine.now(),
            events: Vec::new(),
        }
    }

    /// The events noted, in order.
    pub(crate) fn events(self) -> Vec<Event> {
        self.events
    }

    pub(crate) fn note(&mut self, engine: &Engine, what: impl Into<String>) {
        self.events.push(Event {
            at: engine.now() - self.start,
            what: what.into(),
        });
    }
}

pub(crate) fn short(hash: &impl ToString) -> String {
    hash.to_string()[..12].to_owned()
}

fn hex(hashes: Vec<BlockHash>) -> Vec<String> {
    hashes.iter().map(ToString::to_string).collect()
}

/// Runs one trial with `z` confirmations, drawing from `seed`.
pub fn run_trial(
    setup: &Setup,
    settings: AttackSettings,
    z: u32,
    seed: u64,
) -> anyhow::Result<Trial> {
    let q = settings.q;
    let rates = [(1.0 - q) * setup.hash_rate, 0.0, q * setup.hash_rate];
    let mut engine = setup.engine(&rates, seed)?;
    let mut timeline = Timeline::new(&engine);
    let (payment, conflicting) = setup.conflicting_pair();
    let (payment_id, conflicting_id) = (payment.txid(), conflicting.txid());
    let fork_height = engine.tip_height(MERCHANT);
    timeline.note(
        &engine,
        format!(
            "fork point: block {fork_height} ({})",
            short(&engine.tip(MERCHANT))
        ),
    );
    engine.cut(ATTACKER);
    timeline.note(&engine, "attacker's node cut off: its blocks stay private");
    if settings.premined && q > 0.0 {
        engine.set_mining(ATTACKER, true);
        while engine.tip_height(ATTACKER) <= fork_height {
            engine.step()?;
        }
        engine.set_mining(ATTACKER, false);
        timeline.note(&engine, "attacker pre-mined one secret block");
    }
    engine.submit_transaction(MERCHANT, payment);
    timeline.note(
        &engine,
        format!("attacker paid the merchant: {}", short(&payment_id)),
    );
    engine.submit_transaction(ATTACKER, conflicting);
    timeline.note(
        &engine,
        format!(
            "attacker's secret spend of the same coin: {}",
            short(&conflicting_id)
        ),
    );
    engine.set_mining(HONEST, true);
    engine.set_mining(ATTACKER, true);

    let mut delivered = false;
    let mut published = false;
    loop {
        let Some(happened) = engine.step()? else {
            anyhow::bail!("nothing left to happen while the race runs");
        };
        match happened {
            Happened::Mined { node: ATTACKER, .. } => timeline.note(
                &engine,
                format!("attacker's secret block {}", engine.tip_height(ATTACKER)),
            ),
            Happened::Received {
                node: MERCHANT,
                tip_moved: true,
                ..
            } => timeline.note(
                &engine,
                format!("honest block {}", engine.tip_height(MERCHANT)),
            ),
            _ => continue,
        }
        if !delivered && engine.confirmations(MERCHANT, &payment_id) >= z {
            delivered = true;
            timeline.note(
                &engine,
                format!("merchant sees {z} confirmation(s) and delivers"),
            );
        }
        if delivered && engine.tip_work(ATTACKER) > engine.tip_work(MERCHANT) {
            engine.set_mining(HONEST, false);
            published = true;
            timeline.note(
                &engine,
                "attacker's branch has more work: published (mining paused until the merchant's node decides)",
            );
            break;
        }
        let behind = engine
            .tip_height(MERCHANT)
            .saturating_sub(engine.tip_height(ATTACKER));
        if behind >= settings.give_up_behind {
            timeline.note(
                &engine,
                format!("attacker {behind} blocks behind: gives up"),
            );
            break;
        }
    }
    engine.set_mining(HONEST, false);
    engine.set_mining(ATTACKER, false);
    let honest_height = engine.tip_height(MERCHANT);
    let attacker_height = engine.tip_height(ATTACKER);
    let honest_branch = hex(engine.branch(MERCHANT, fork_height + 1, honest_height));
    let attacker_branch = hex(engine.branch(ATTACKER, fork_height + 1, attacker_height));
    let payment_block = engine.confirming_block(MERCHANT, &payment_id);
    let conflicting_block = engine.confirming_block(ATTACKER, &conflicting_id);
    engine.heal(ATTACKER);
    settle(&mut engine, &mut timeline)?;
    let reversed = delivered
        && engine.confirmations(MERCHANT, &payment_id) == 0
        && engine.confirmations(MERCHANT, &conflicting_id) > 0;
    let reorg_depth = if reversed {
        honest_branch.len() as u32
    } else {
        0
    };
    timeline.note(
        &engine,
        if reversed {
            format!("merchant's node reorganised {reorg_depth} blocks: the payment is reversed")
        } else {
            "merchant's payment stands".to_owned()
        },
    );
    Ok(Trial {
        z,
        delivered,
        published,
        reversed,
        reorg_depth,
        fork_height: u64::from(fork_height),
        honest_branch,
        attacker_branch,
        payment_block: payment_block.map(|hash| hash.to_string()),
        conflicting_block: conflicting_block.map(|hash| hash.to_string()),
        payment: payment_id.to_string(),
        conflicting: conflicting_id.to_string(),
        merchant_wallet_at_delivery: None,
        merchant_wallet_at_end: None,
        seconds: engine.now() - timeline.start,
        timeline: timeline.events(),
    })
}

/// Lets everything in flight arrive; if the nodes then disagree (branches tied in work, each
/// keeping the one it saw first), both miners mine on until one block decides.
fn settle(engine: &mut Engine, timeline: &mut Timeline) -> anyhow::Result<()> {
    while engine.in_flight() {
        engine.step()?;
    }
    let agree = |engine: &Engine| engine.tip(MERCHANT) == engine.tip(ATTACKER);
    if agree(engine) {
        return Ok(());
    }
    timeline.note(
        engine,
        "the branches are tied: both miners mine on until the next block decides",
    );
    engine.set_mining(HONEST, true);
    engine.set_mining(ATTACKER, true);
    while !(agree(engine) && engine.tip(HONEST) == engine.tip(MERCHANT)) || engine.in_flight() {
        if engine.step()?.is_none() {
            anyhow::bail!("the tie cannot be settled: nobody mines");
        }
        if agree(engine) && engine.tip(HONEST) == engine.tip(MERCHANT) {
            engine.set_mining(HONEST, false);
            engine.set_mining(ATTACKER, false);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{exact, wilson_interval, AttackModel};
    use crate::params::LocalNetwork;
    use quarry_chain::PowMode;

    fn setup(retarget: bool) -> Setup {
        let network = LocalNetwork {
            pow: PowMode::Simulated,
            retarget,
            ..LocalNetwork::new(20_000, 600)
        };
        Setup::new(
            network.params(super::super::GENESIS_TIME).unwrap(),
            20_000.0,
            0.0,
        )
    }

    fn settings(q: f64, premined: bool) -> AttackSettings {
        AttackSettings {
            q,
            premined,
            give_up_behind: 6,
            pow: PowMode::Simulated,
            retarget: false,
            speedup: 1,
        }
    }

    fn run(setup: &Setup, settings: AttackSettings, z: u32, trials: u64) -> Vec<Trial> {
        (0..trials)
            .map(|index| run_trial(setup, settings, z, super::super::trial_seed(7, index)).unwrap())
            .collect()
    }

    #[test]
    fn without_attacker_power_no_payment_is_reversed_and_with_most_of_it_every_one_is() {
        let setup = setup(false);
        let none = run(&setup, settings(0.0, false), 2, 20);
        assert!(none.iter().all(|trial| trial.delivered && !trial.reversed));
        assert!(none.iter().all(|trial| trial.attacker_branch.is_empty()));
        let most = run(&setup, settings(0.95, true), 2, 20);
        assert!(most.iter().all(|trial| trial.reversed), "{most:#?}");
        assert!(most.iter().all(|trial| trial.reorg_depth >= 2));
    }

    #[test]
    fn a_seeded_run_reproduces_bit_for_bit_and_another_seed_differs() {
        let setup = setup(true);
        let trial = |seed| {
            serde_json::to_string(&run_trial(&setup, settings(0.3, false), 2, seed).unwrap())
                .unwrap()
        };
        assert_eq!(trial(11), trial(11));
        assert_ne!(trial(11), trial(12));
    }

    #[test]
    fn the_measured_rate_agrees_with_the_exact_model_within_its_interval() {
        let setup = setup(false);
        for (q, z, premined) in [(0.3, 2, false), (0.3, 3, true)] {
            let trials = run(&setup, settings(q, premined), z, 600);
            let reversed = crate::attack::successes(&trials);
            let (low, high) = wilson_interval(reversed, trials.len() as u64);
            let model = exact(AttackModel {
                q,
                z,
                premined,
                give_up_behind: Some(6),
            });
            assert!(
                (low..=high).contains(&model),
                "q {q} z {z}: {reversed}/600, [{low:.3}, {high:.3}] against {model:.4}"
            );
        }
    }
}
