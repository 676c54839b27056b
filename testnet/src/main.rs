//! `quarry-testnet`: local Quarry networks. Until the node and network land, it offers the chain
//! self-check: mine a real chain, force a reorganisation, and verify the UTXO set against a
//! replay from genesis.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use quarry_chain::testing::{
    assemble_block, pay, signed_spend, test_key, test_keypair, BlockTemplate, Spendable,
};
use quarry_chain::{
    Block, Chain, ChainEvent, ChainParams, ChainReader, Coin, MemoryStore, OutPoint, RetargetRule,
    Transaction,
};

/// Local Quarry test networks and scenarios.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Mine a chain with transactions, force a reorganisation, and check the UTXO set against a
    /// replay from genesis. Exits non-zero if any check fails.
    Selfcheck {
        /// Network: `regtest` or a custom parameters TOML file with an easy pow limit.
        #[arg(long, default_value = "regtest")]
        network: String,
        /// Blocks to mine on the main branch (at least 20).
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(20..=100_000))]
        blocks: u32,
        /// Depth of the forced reorganisation (the competing branch is one block longer).
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=1_000))]
        reorg_depth: u32,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Selfcheck {
            network,
            blocks,
            reorg_depth,
        } => selfcheck(&network, blocks, reorg_depth),
    }
}

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

fn selfcheck(network: &str, blocks: u32, reorg_depth: u32) -> Result<()> {
    print_networks();
    let params = ChainParams::from_name_or_file(network)?;
    if reorg_depth >= blocks {
        bail!("--reorg-depth {reorg_depth} must be smaller than --blocks {blocks}");
    }
    println!(
        "\nSelf-check on {} ({} blocks, reorganisation depth {reorg_depth})",
        params.name(),
        blocks
    );
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
        if height % (blocks / 20).max(1) == 0 || height == blocks {
            progress("mining", height, blocks);
        }
    }
    let mining = started.elapsed();
    println!();

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

    let checks = [
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
            replay.store().utxo_set()? == miner.chain.store().utxo_set()?,
        ),
    ];
    println!("\n{:<52} result", "check");
    for (name, passed) in &checks {
        println!("{name:<52} {}", if *passed { "ok" } else { "FAILED" });
    }
    println!("\n{:<28} {:>14}", "figure", "value");
    let rows = [
        ("blocks mined", blocks.to_string()),
        ("transactions", transactions.to_string()),
        ("tip height", miner.chain.tip_height().to_string()),
        (
            "tip",
            miner.chain.tip_hash().to_string()[..16].to_string() + "…",
        ),
        (
            "UTXO set size",
            miner.chain.store().utxo_set()?.len().to_string(),
        ),
        (
            "mining + validation",
            format!("{:.2} s", mining.as_secs_f64()),
        ),
        (
            "replay (validation only)",
            format!("{:.2} s", replay_time.as_secs_f64()),
        ),
    ];
    for (name, value) in rows {
        println!("{name:<28} {value:>14}");
    }
    if checks.iter().all(|(_, passed)| *passed) {
        println!("\nall checks passed");
        Ok(())
    } else {
        bail!("self-check failed")
    }
}

fn print_networks() {
    println!(
        "{:<8} {:<22} {:>8} {:>11}  genesis",
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
        println!(
            "{:<8} {:<22} {:>7}s {:>11}  {}",
            params.name(),
            retarget,
            params.target_spacing(),
            params.genesis_block().header.bits,
            params.genesis_hash()
        );
    }
}

fn progress(label: &str, done: u32, total: u32) {
    let width = 30;
    let filled = (done as usize * width) / total.max(1) as usize;
    print!(
        "\r{label:<8} [{}{}] {done}/{total}",
        "#".repeat(filled),
        " ".repeat(width - filled)
    );
    let _ = std::io::stdout().flush();
}
