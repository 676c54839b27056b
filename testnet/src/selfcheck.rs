//! The chain self-check: mine a real chain with transactions in memory, force a
//! reorganisation, and verify the UTXO set against a replay from genesis.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use quarry_chain::testing::{
    assemble_block, pay, signed_spend, test_key, test_keypair, BlockTemplate, Spendable,
};
use quarry_chain::{
    Block, Chain, ChainEvent, ChainParams, ChainReader, Coin, MemoryStore, OutPoint, RetargetRule,
    Transaction,
};

/// A chain under construction with a simulated clock and the coins the miner key may spend.
struct Miner {
    chain: Chain<MemoryStore>,
    clock: u64,
    spendable: BTreeMap<OutPoint, Coin>,
    extra_nonce: u64,
}

impl Miner {
    /// Mines one block on `parent` spending up to `spends` mature coins, and submits it.
    fn mine_on(&mut self, parent: quarry_chain::BlockHash, spends: usize) -> Result<Block> {
        let index = self.chain.index();
        let entry = *index.get(&parent).context("parent not indexed")?;
        let params = self.chain.params();
        let height = entry.height + 1;
        let maturity = params.coinbase_maturity();
        let genesis = params.genesis_hash();
        let txs: Vec<Transaction> = self
            .spendable
            .iter()
            .filter(|(_, coin)| !coin.is_coinbase || height - coin.height >= maturity)
            .filter(|(_, coin)| coin.height < height)
            .take(spends)
            .map(|(outpoint, coin)| {
                let half = coin.output.value.to_sat() / 2;
                let input = Spendable {
                    outpoint: *outpoint,
                    output: coin.output,
                    keypair: test_keypair(0),
                };
                signed_spend(
                    genesis,
                    &[input],
                    vec![pay(0, half), pay(1, half.saturating_sub(1_000))],
                )
            })
            .collect();
        self.extra_nonce += 1;
        let template = BlockTemplate {
            prev_blockhash: parent,
            height,
            time: entry.header.time + params.target_spacing(),
            bits: index
                .next_work_required(params, &parent)
                .context("parent not indexed")?,
            coinbase_outputs: vec![quarry_chain::TxOut {
                value: params.block_subsidy(height),
                pubkey: test_key(0),
            }],
            extra_nonce: self.extra_nonce,
        };
        let block = assemble_block(&template, txs).context("no nonce meets the target")?;
        self.clock = self.clock.max(u64::from(template.time));
        self.chain
            .process_block(block.clone(), self.clock)
            .with_context(|| format!("block at height {height} rejected"))?;
        Ok(block)
    }

    /// Tracks the miner key's coins created and spent by `block` (on the best chain).
    fn track(&mut self, block: &Block, height: u32) {
        for (index, tx) in block.transactions.iter().enumerate() {
            for input in &tx.inputs {
                self.spendable.remove(&input.prevout);
            }
            let txid = tx.txid();
            for (vout, output) in tx.outputs.iter().enumerate() {
                if output.pubkey == test_key(0) {
                    let coin = Coin {
                        output: *output,
                        height,
                        is_coinbase: index == 0,
                    };
                    self.spendable.insert(
                        OutPoint {
                            txid,
                            vout: vout as u32,
                        },
                        coin,
                    );
                }
            }
        }
    }
}

/// What a self-check found.
#[derive(Debug)]
pub struct Report {
    /// Each check and whether it passed.
    pub checks: Vec<(&'static str, bool)>,
    /// Blocks mined on the first branch.
    pub blocks: u32,
    /// Transactions in them, coinbases aside.
    pub transactions: usize,
    /// Height of the final tip.
    pub tip_height: u32,
    /// The final tip.
    pub tip: quarry_chain::BlockHash,
    /// Coins in the final UTXO set.
    pub utxos: usize,
    /// Time to mine and validate the first branch.
    pub mining: Duration,
    /// Time to validate the best chain again from genesis.
    pub replay: Duration,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|(_, passed)| *passed)
    }

    /// The checks and the figures as two aligned tables.
    pub fn render(&self) -> String {
        let mut text = format!("\n{:<52} result\n", "check");
        for (name, passed) in &self.checks {
            let _ = writeln!(text, "{name:<52} {}", if *passed { "ok" } else { "FAILED" });
        }
        let _ = writeln!(text, "\n{:<28} {:>14}", "figure", "value");
        let rows = [
            ("blocks mined", self.blocks.to_string()),
            ("transactions", self.transactions.to_string()),
            ("tip height", self.tip_height.to_string()),
            ("tip", self.tip.to_string()[..16].to_string() + "…"),
            ("UTXO set size", self.utxos.to_string()),
            (
                "mining + validation",
                format!("{:.2} s", self.mining.as_secs_f64()),
            ),
            (
                "replay (validation only)",
                format!("{:.2} s", self.replay.as_secs_f64()),
            ),
        ];
        for (name, value) in rows {
            let _ = writeln!(text, "{name:<28} {value:>14}");
        }
        text
    }
}

/// Mines `blocks` blocks with transactions on `params` (in memory, with a simulated clock),
/// then a branch from `reorg_depth` blocks below the tip one block longer, and checks the
/// reorganisation and the UTXO set against a replay; `progress` hears `(mined, blocks)`.
pub fn run(
    params: ChainParams,
    blocks: u32,
    reorg_depth: u32,
    mut progress: impl FnMut(u32, u32),
) -> Result<Report> {
    if reorg_depth >= blocks {
        bail!("--reorg-depth {reorg_depth} must be smaller than --blocks {blocks}");
    }
    let genesis_time = u64::from(params.genesis_block().header.time);
    let mut miner = Miner {
        chain: Chain::open(params.clone(), MemoryStore::new())?,
        clock: genesis_time,
        spendable: BTreeMap::new(),
        extra_nonce: 0,
    };
    let started = Instant::now();
    let mut transactions = 0;
    for height in 1..=blocks {
        let block = miner.mine_on(miner.chain.tip_hash(), 4)?;
        transactions += block.transactions.len() - 1;
        miner.track(&block, height);
        progress(height, blocks);
    }
    let mining = started.elapsed();

    // A competing branch from `reorg_depth` blocks below the tip, one block longer.
    let fork_height = blocks - reorg_depth;
    let mut parent = miner
        .chain
        .hash_at_height(fork_height)
        .context("fork point")?;
    miner.chain.take_events();
    miner.spendable.clear();
    for _ in 0..=reorg_depth {
        parent = miner.mine_on(parent, 0)?.block_hash();
    }
    let events = miner.chain.take_events();
    let disconnected = events
        .iter()
        .filter(|event| matches!(event, ChainEvent::Disconnected { .. }))
        .count();

    let replay_started = Instant::now();
    let mut replay = Chain::open(params, MemoryStore::new())?;
    for height in 1..=miner.chain.tip_height() {
        let hash = miner
            .chain
            .hash_at_height(height)
            .context("best chain height")?;
        let block = miner.chain.store().block(&hash)?.context("stored block")?;
        replay.process_block(block, miner.clock)?;
    }
    let replay_time = replay_started.elapsed();
    let utxos = miner.chain.store().utxo_set()?;
    let checks = vec![
        (
            "tip moved to the longer branch",
            miner.chain.tip_hash() == parent,
        ),
        (
            "blocks disconnected by the reorganisation",
            disconnected == reorg_depth as usize,
        ),
        (
            "replay from genesis reaches the same tip",
            replay.tip_hash() == miner.chain.tip_hash(),
        ),
        (
            "UTXO set after the reorganisation equals the replay",
            replay.store().utxo_set()? == utxos,
        ),
    ];
    Ok(Report {
        checks,
        blocks,
        transactions,
        tip_height: miner.chain.tip_height(),
        tip: miner.chain.tip_hash(),
        utxos: utxos.len(),
        mining,
        replay: replay_time,
    })
}

/// The built-in networks: retargeting, spacing, easiest target and genesis.
pub fn networks_table() -> String {
    let mut text = format!(
        "{:<8} {:<22} {:>8} {:>11}  genesis\n",
        "network", "retarget", "spacing", "pow limit"
    );
    for params in [
        ChainParams::main(),
        ChainParams::testnet(),
        ChainParams::regtest(),
    ] {
        let retarget = match params.spec().retarget {
            RetargetRule::Epoch { interval } => format!("epoch / {interval} blocks"),
            RetargetRule::Asert { half_life } => format!("asert / {half_life} s half-life"),
        };
        let _ = writeln!(
            text,
            "{:<8} {:<22} {:>7}s {:>11}  {}",
            params.name(),
            retarget,
            params.target_spacing(),
            params.genesis_block().header.bits,
            params.genesis_hash()
        );
    }
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use quarry_chain::testing::unit_params;

    use super::*;

    #[test]
    fn a_reorganised_chain_with_transactions_passes_every_check() {
        let mut reported = 0;
        let report = run(unit_params(), 150, 12, |done, total| {
            assert_eq!(total, 150);
            reported = done;
        })
        .unwrap();
        assert_eq!(reported, 150);
        assert!(report.passed(), "{}", report.render());
        assert_eq!(report.checks.len(), 4);
        assert_eq!(report.tip_height, 151);
        assert!(
            report.transactions > 0,
            "the miner spends its matured coins"
        );
        assert!(report
            .render()
            .contains("UTXO set after the reorganisation equals the replay"));
    }

    #[test]
    fn a_reorganisation_deeper_than_the_chain_is_refused() {
        let error = run(unit_params(), 10, 10, |_, _| {}).unwrap_err();
        assert!(error.to_string().contains("--reorg-depth 10"), "{error}");
    }

    #[test]
    fn the_networks_table_lists_the_three_built_in_networks() {
        let table = networks_table();
        assert_eq!(table.lines().count(), 4);
        for name in ["main", "testnet", "regtest"] {
            assert!(table.contains(name));
        }
    }
}
