//! The private-chain double-spend attack of the Bitcoin whitepaper (section 11), run on real
//! nodes: an honest miner, a merchant's node and an attacker's node, their hash power capped
//! to the shares asked for.
//!
//! One trial: the attacker's node is cut off (its blocks stay private), it pays the merchant
//! through the merchant's node and gives its own node a conflicting transaction spending the
//! same coin back to itself, then mines its secret branch while the honest miner mines the
//! payment. The merchant delivers once the payment has `z` confirmations (its block is the
//! first). The attacker publishes its branch as soon as it is strictly longer (more work) than
//! the honest chain after delivery, or gives up when `give_up_behind` blocks behind. The
//! merchant's node then reorganises, or not.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use quarry_chain::FeeRate;
use quarry_chain::{Address, Amount, BlockHash, OutputKey, PowMode, Txid};
use quarry_rpc::types::{BlockchainInfo, VerboseTransaction};
use serde::Serialize;
use serde_json::json;

use crate::cluster::{wallet_seed, NodeSpec, Testnet};
use crate::commands::wait_for_sync;

/// Index of the honest miner in an attack testnet.
pub const HONEST: usize = 0;
/// Index of the merchant's node.
pub const MERCHANT: usize = 1;
/// Index of the attacker's node.
pub const ATTACKER: usize = 2;

/// How long one trial may take before it is abandoned as a give-up.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the nodes may take to agree after a race before a tie is assumed.
const TIE_WAIT: Duration = Duration::from_secs(5);

/// How often the nodes are polled: well under a block interval, so that the attacker
/// publishes (or gives up) at the block that decides, not one poll later.
const POLL: Duration = Duration::from_millis(20);

/// The nodes of an attack testnet for attacker share `q`.
pub fn node_specs(q: f64) -> Vec<NodeSpec> {
    vec![
        NodeSpec {
            name: "honest".into(),
            share: 1.0 - q,
            config: None,
        },
        NodeSpec {
            name: "merchant".into(),
            share: 0.0,
            config: None,
        },
        NodeSpec {
            name: "attacker".into(),
            share: q,
            config: None,
        },
    ]
}

/// One event of a trial, seconds after it started.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Seconds since the trial started.
    pub at: f64,
    /// What happened.
    pub what: String,
}

/// What one trial did.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    /// Confirmations the merchant waited for.
    pub z: u32,
    /// Whether the merchant saw `z` confirmations and delivered.
    pub delivered: bool,
    /// Whether the attacker published a longer branch.
    pub published: bool,
    /// Whether the payment was reversed after delivery: the success of the attack.
    pub reversed: bool,
    /// Blocks the merchant's node disconnected.
    pub reorg_depth: u32,
    /// Height of the fork point.
    pub fork_height: u64,
    /// The honest branch above the fork point when the race ended.
    pub honest_branch: Vec<String>,
    /// The attacker's branch above the fork point when the race ended.
    pub attacker_branch: Vec<String>,
    /// The block holding the payment on the honest branch, if mined.
    pub payment_block: Option<String>,
    /// The block holding the conflicting spend on the attacker's branch, if mined.
    pub conflicting_block: Option<String>,
    /// The payment.
    pub payment: String,
    /// The conflicting spend.
    pub conflicting: String,
    /// The payment's status in the merchant's wallet when it delivered.
    pub merchant_wallet_at_delivery: Option<String>,
    /// The payment's status in the merchant's wallet at the end.
    pub merchant_wallet_at_end: Option<String>,
    /// Seconds the trial took.
    pub seconds: f64,
    /// What happened, in order.
    pub timeline: Vec<Event>,
}

/// The attack's settings.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AttackSettings {
    /// Attacker's share of the hash rate.
    pub q: f64,
    /// Whether the attacker pre-mines one block before paying.
    pub premined: bool,
    /// The attacker gives up this many blocks behind.
    pub give_up_behind: u32,
    /// Real hashing, or simulated proof of work (exact shares, no CPU).
    pub pow: PowMode,
    /// Whether difficulty retargeting (ASERT) is on; off, every block has the same work.
    pub retarget: bool,
    /// Blocks this many times faster than the spacing (simulated work, retargeting off).
    pub speedup: u32,
}

/// Notes what happens, timed from the start of a trial.
pub(crate) struct Clock(pub(crate) Instant, pub(crate) Vec<Event>);

impl Clock {
    pub(crate) fn note(&mut self, what: impl Into<String>) {
        let at = self.0.elapsed().as_secs_f64();
        self.1.push(Event {
            at,
            what: what.into(),
        });
    }
}

fn chain_state(testnet: &Testnet, node: usize) -> Result<(u64, String, String)> {
    let info: BlockchainInfo = testnet.call(node, "getblockchaininfo", json!([]))?;
    Ok((
        u64::from(info.blocks),
        info.chainwork,
        info.bestblockhash.to_string(),
    ))
}

/// Confirmations of `txid` on `node`'s best chain (0 if unconfirmed or unknown) and its block.
pub(crate) fn confirmations(testnet: &Testnet, node: usize, txid: &str) -> (u64, Option<String>) {
    match testnet.call::<VerboseTransaction>(node, "getrawtransaction", json!([txid, true])) {
        Ok(tx) => (
            u64::from(tx.confirmations.unwrap_or(0)),
            tx.blockhash.map(|hash| hash.to_string()),
        ),
        Err(_) => (0, None),
    }
}

/// The status of `txid` in the history of `node`'s wallet (which remembers it from then on).
pub fn wallet_status(testnet: &Testnet, node: usize, txid: &str) -> Result<Option<String>> {
    let mut wallet = testnet.state.nodes[node].open_wallet(testnet)?;
    Ok(wallet
        .history()?
        .into_iter()
        .find(|entry| entry.txid.to_string() == txid)
        .map(|entry| entry.status.to_string()))
}

fn branch(testnet: &Testnet, node: usize, from: u64, to: u64) -> Result<Vec<String>> {
    (from..=to)
        .map(|height| {
            let hash: BlockHash = testnet.call(node, "getblockhash", json!([height]))?;
            Ok(hash.to_string())
        })
        .collect()
}

pub(crate) fn set_mining(testnet: &Testnet, node: usize, on: bool) -> Result<()> {
    if testnet.state.nodes[node].hash_rate > 0 {
        testnet.run(node, "setgenerate", json!([on, 1]))?;
    }
    Ok(())
}

/// Funds the attacker with one mature coinbase per trial (mined by the honest node).
pub fn fund_attacker(testnet: &Testnet, trials: usize) -> Result<()> {
    let attacker = testnet.state.nodes[ATTACKER]
        .address(&testnet.params)
        .to_string();
    let maturity = testnet.params.coinbase_maturity() as usize;
    testnet.generate(HONEST, trials + 1, &attacker)?;
    let honest = testnet.state.nodes[HONEST]
        .address(&testnet.params)
        .to_string();
    testnet.generate(HONEST, maturity, &honest)?;
    wait_for_sync(testnet, Duration::from_secs(120))
}

/// Two transactions spending the same coin of the attacker: one paying the merchant, one
/// paying the attacker's own second address.
pub(crate) fn conflicting_pair(testnet: &Testnet) -> Result<(String, String, String, String)> {
    let attacker = &testnet.state.nodes[ATTACKER];
    let mut wallet = attacker.open_wallet(testnet)?;
    let seed = wallet_seed(&attacker.name);
    let merchant = testnet.state.nodes[MERCHANT].address(&testnet.params);
    let own = Address::new(OutputKey::from_keypair(&seed.keypair(1)), &testnet.params);
    let amount = Amount::from_sat(10 * Amount::SATS_PER_COIN);
    let rate = FeeRate::from_sat_per_kb(2_000);
    let pay = wallet.plan_payment(&merchant, amount, rate)?;
    let back = wallet.plan_payment(&own, amount, rate)?;
    if pay.coins[0].outpoint != back.coins[0].outpoint {
        bail!("the attacker's two payments do not spend the same coin");
    }
    let pay_tx = wallet.sign_payment(&pay, &seed)?;
    let back_tx = wallet.sign_payment(&back, &seed)?;
    let hex = |tx| hex::encode(quarry_chain::encode::encode(tx));
    Ok((
        pay_tx.txid().to_string(),
        hex(&pay_tx),
        back_tx.txid().to_string(),
        hex(&back_tx),
    ))
}

/// Waits for the nodes to agree, and confirms whatever a trial left in any mempool (a payment
/// or spend of a race that ended in between: each node may hold a different one of the pair,
/// so each node with leftovers mines a block of its own), so the attacker's coins are settled
/// everywhere before it plans the next pair. Nobody must be mining.
pub(crate) fn settle(testnet: &Testnet) -> Result<()> {
    wait_for_sync(testnet, Duration::from_secs(120))?;
    for node in [HONEST, MERCHANT, ATTACKER] {
        let pending: Vec<Txid> = testnet.call(node, "getrawmempool", json!([]))?;
        if !pending.is_empty() {
            let payee = testnet.state.nodes[node]
                .address(&testnet.params)
                .to_string();
            testnet.generate(node, 1, &payee)?;
            wait_for_sync(testnet, Duration::from_secs(120))?;
        }
    }
    Ok(())
}

/// Runs one trial with `z` confirmations.
pub fn run_trial(testnet: &Testnet, settings: AttackSettings, z: u32) -> Result<Trial> {
    let mut clock = Clock(Instant::now(), Vec::new());
    // Between races nobody mines: the nodes settle on one tip however fast blocks come, and
    // the race starts with the payment (waits are memoryless: the pause changes no odds).
    set_mining(testnet, HONEST, false)?;
    settle(testnet)?;
    // The pair is planned on the chain every node shares: after a pre-mined block the
    // attacker's wallet would count one more confirmation than the merchant's node, and could
    // pick a coinbase that is mature only on the attacker's branch.
    let (payment, pay_hex, conflicting, back_hex) = conflicting_pair(testnet)?;
    let (fork_height, _, fork) = chain_state(testnet, MERCHANT)?;
    clock.note(format!("fork point: block {fork_height} ({})", &fork[..12]));
    testnet.partition(&[ATTACKER], &[HONEST, MERCHANT])?;
    clock.note("attacker's node cut off: its blocks stay private");
    if settings.premined && settings.q > 0.0 {
        set_mining(testnet, ATTACKER, true)?;
        while chain_state(testnet, ATTACKER)?.0 <= fork_height {
            std::thread::sleep(POLL);
        }
        clock.note("attacker pre-mined one secret block");
    }
    testnet.run(MERCHANT, "sendrawtransaction", json!([pay_hex]))?;
    clock.note(format!("attacker paid the merchant: {}", &payment[..12]));
    testnet.run(ATTACKER, "sendrawtransaction", json!([back_hex]))?;
    clock.note(format!(
        "attacker's secret spend of the same coin: {}",
        &conflicting[..12]
    ));
    set_mining(testnet, HONEST, true)?;
    set_mining(testnet, ATTACKER, true)?;

    let mut delivered = false;
    let mut published = false;
    let mut merchant_wallet_at_delivery = None;
    // Start from what the nodes already have: a pre-mined block is noted once, above.
    let (mut honest_height, mut attacker_height) = (
        chain_state(testnet, MERCHANT)?.0,
        chain_state(testnet, ATTACKER)?.0,
    );
    loop {
        let (m_height, m_work, _) = chain_state(testnet, MERCHANT)?;
        let (a_height, a_work, _) = chain_state(testnet, ATTACKER)?;
        if m_height != honest_height {
            clock.note(format!("honest block {m_height}"));
        }
        if a_height != attacker_height {
            clock.note(format!("attacker's secret block {a_height}"));
        }
        (honest_height, attacker_height) = (m_height, a_height);
        if !delivered && confirmations(testnet, MERCHANT, &payment).0 >= u64::from(z) {
            delivered = true;
            merchant_wallet_at_delivery = wallet_status(testnet, MERCHANT, &payment)?;
            clock.note(format!(
                "merchant sees {z} confirmation(s) and delivers (its wallet: {})",
                merchant_wallet_at_delivery.as_deref().unwrap_or("not seen")
            ));
        }
        // Chain work in fixed-width hex compares as a number.
        if delivered && a_work > m_work {
            // The race ends here, as in the whitepaper: the honest miner stops until the
            // merchant's node has decided, so it cannot catch up while the branch travels.
            set_mining(testnet, HONEST, false)?;
            published = true;
            clock.note("attacker's branch has more work: published (mining paused until the merchant's node decides)");
            break;
        }
        let behind = m_height.saturating_sub(a_height);
        if behind >= u64::from(settings.give_up_behind) {
            clock.note(format!("attacker {behind} blocks behind: gives up"));
            break;
        }
        if clock.0.elapsed() > TRIAL_TIMEOUT {
            clock.note("trial timed out: the attacker gives up");
            break;
        }
        std::thread::sleep(POLL);
    }
    set_mining(testnet, HONEST, false)?;
    set_mining(testnet, ATTACKER, false)?;
    // Blocks gossiped just before the cut reach both sides: the branches part at the last
    // block they share.
    let mut fork_height = fork_height;
    for height in (fork_height..=honest_height.min(attacker_height)).rev() {
        let hash_at = |node| testnet.call::<BlockHash>(node, "getblockhash", json!([height]));
        if hash_at(MERCHANT)? == hash_at(ATTACKER)? {
            fork_height = height;
            break;
        }
    }
    let honest_branch = branch(testnet, MERCHANT, fork_height + 1, honest_height)?;
    let attacker_branch = branch(testnet, ATTACKER, fork_height + 1, attacker_height)?;
    let payment_block = confirmations(testnet, MERCHANT, &payment).1;
    let conflicting_block = confirmations(testnet, ATTACKER, &conflicting).1;
    testnet.heal()?;
    if wait_for_sync(testnet, TIE_WAIT).is_err() {
        // A block in flight when mining paused can leave the branches tied in work, each node
        // keeping the one it saw first: the next block decides, as it would on a live network.
        clock.note("the branches are tied: both miners mine on until the next block decides");
        set_mining(testnet, HONEST, true)?;
        set_mining(testnet, ATTACKER, true)?;
        let settled = wait_for_sync(testnet, Duration::from_secs(120));
        set_mining(testnet, HONEST, false)?;
        set_mining(testnet, ATTACKER, false)?;
        settled?;
    }
    let (confirmed, _) = confirmations(testnet, MERCHANT, &payment);
    let (back_confirmed, _) = confirmations(testnet, MERCHANT, &conflicting);
    let reversed = delivered && confirmed == 0 && back_confirmed > 0;
    let merchant_wallet_at_end = wallet_status(testnet, MERCHANT, &payment)?;
    let reorg_depth = if published && back_confirmed > 0 {
        honest_branch.len() as u32
    } else {
        0
    };
    let wallet_view = merchant_wallet_at_end.as_deref().unwrap_or("not seen");
    clock.note(if reversed {
        format!("merchant's node reorganised {reorg_depth} blocks: the payment is reversed (its wallet: {wallet_view})")
    } else {
        format!("merchant's payment stands (its wallet: {wallet_view})")
    });
    Ok(Trial {
        z,
        delivered,
        published,
        reversed,
        reorg_depth,
        fork_height,
        honest_branch,
        attacker_branch,
        payment_block,
        conflicting_block,
        payment,
        conflicting,
        merchant_wallet_at_delivery,
        merchant_wallet_at_end,
        seconds: clock.0.elapsed().as_secs_f64(),
        timeline: clock.1,
    })
}

/// The hash shares the chain saw: blocks of each branch across `trials` (honest, attacker).
pub fn measured_share(trials: &[Trial]) -> Option<f64> {
    let honest: usize = trials.iter().map(|trial| trial.honest_branch.len()).sum();
    let attacker: usize = trials.iter().map(|trial| trial.attacker_branch.len()).sum();
    (honest + attacker > 0).then(|| attacker as f64 / (honest + attacker) as f64)
}

/// How many trials reversed the payment.
pub fn successes(trials: &[Trial]) -> u64 {
    trials.iter().filter(|trial| trial.reversed).count() as u64
}
