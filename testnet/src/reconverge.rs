//! The reconvergence benchmark: a testnet split in two halves, each mining its own long branch
//! from the same block, then healed; it measures how long every node takes to reach the
//! most-work tip (the nodes of the lighter half reorganise the whole branch away).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use quarry_chain::{Amount, BlockHash, ChainParams, NetworkSpec, PowMode, RetargetRule};
use serde::Serialize;
use serde_json::json;

use crate::cluster::{links, Link, NodeSpec, Testnet, Topology};
use crate::commands::progress_bar;
use crate::params::genesis_time_for;
use quarry_rpc::launch::Lifetime;

/// Blocks mined per `generatetoaddress` call, so progress shows.
const CHUNK: u32 = 500;
/// How long each half may take to agree on its own tip, and the whole testnet after healing.
const AGREE_TIMEOUT: Duration = Duration::from_secs(1_800);

/// What to run.
#[derive(Clone, Debug)]
pub struct SplitRun {
    /// Nodes in all (at least 2); the first half is the lighter side.
    pub nodes: usize,
    /// Blocks the lighter half mines after the split; the heavier half mines one more.
    pub blocks: u32,
    /// The report folder (the nodes run in its `nodes` subfolder).
    pub report: PathBuf,
    /// Where quarryd is.
    pub quarryd: PathBuf,
}

/// When one node reached the most-work tip after the heal.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReconverged {
    /// The node.
    pub name: String,
    /// Whether it was on the lighter side (and so reorganised).
    pub reorganised: bool,
    /// Seconds from the heal until its tip was the heavier side's.
    pub seconds: f64,
}

/// The measurement.
#[derive(Clone, Debug, Serialize)]
pub struct SplitReport {
    /// Nodes on each side.
    pub nodes: usize,
    /// Blocks of the lighter branch (the depth of the lighter side's reorganisation).
    pub lighter_blocks: u32,
    /// Blocks of the heavier branch.
    pub heavier_blocks: u32,
    /// Seconds to mine both branches.
    pub mining_seconds: f64,
    /// Seconds from the heal until every node had the heavier tip.
    pub reconverge_seconds: f64,
    /// Each node.
    pub per_node: Vec<NodeReconverged>,
}

/// The benchmark's network: the easiest target and a half-life of about 30 years, so that
/// mining thousands of blocks a second leaves the difficulty where it is.
fn split_params() -> Result<ChainParams> {
    let spec = NetworkSpec {
        name: "splitnet".into(),
        retarget: RetargetRule::Asert {
            half_life: 1_000_000_000,
        },
        pow_limit_bits: 0x207f_ffff,
        target_spacing: 1,
        initial_subsidy_sats: 50 * Amount::SATS_PER_COIN,
        halving_interval: 1_000_000,
        coinbase_maturity: 100,
        max_future_block_time: 2 * 60 * 60,
        genesis_time: genesis_time_for(0, 1),
        genesis_message: "Quarry split benchmark".into(),
        genesis_nonce: None,
        minimum_chain_work: None,
        genesis_bits: None,
        pow: PowMode::Real,
    };
    Ok(ChainParams::new(spec)?)
}

fn progress(what: &str, done: u32, total: u32) {
    let caption = format!("{what}: {done}/{total} blocks");
    progress_bar(done as usize, total as usize, &caption, false);
}

/// Mines `blocks` on node `index` in chunks, paying its own address.
fn mine(testnet: &Testnet, index: usize, blocks: u32) -> Result<()> {
    let node = &testnet.state.nodes[index];
    let address = node.address(&testnet.params).to_string();
    let what = format!("{} mines", node.name);
    let mut done = 0;
    progress(&what, 0, blocks);
    while done < blocks {
        let chunk = CHUNK.min(blocks - done);
        testnet.generate(index, chunk as usize, &address)?;
        done += chunk;
        progress(&what, done, blocks);
    }
    Ok(())
}

/// The tip of node `index`.
fn tip(testnet: &Testnet, index: usize) -> Result<String> {
    let tip: BlockHash = testnet.call(index, "getbestblockhash", json!([]))?;
    Ok(tip.to_string())
}

/// Polls until every node in `nodes` has `target` as its tip; returns each one's wait.
fn wait_for_tip(
    testnet: &Testnet,
    nodes: &[usize],
    target: &str,
    started: Instant,
) -> Result<Vec<f64>> {
    let mut reached: Vec<Option<f64>> = vec![None; nodes.len()];
    while reached.iter().any(Option::is_none) {
        if started.elapsed() > AGREE_TIMEOUT {
            bail!("the nodes did not reach {target} within {AGREE_TIMEOUT:?}");
        }
        for (slot, &index) in reached.iter_mut().zip(nodes) {
            if slot.is_none() && tip(testnet, index)? == target {
                *slot = Some(started.elapsed().as_secs_f64());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(reached.into_iter().flatten().collect())
}

/// Runs the benchmark on a fresh testnet in the report folder's `nodes` and stops it.
pub fn run(run: &SplitRun) -> Result<SplitReport> {
    if run.nodes < 2 {
        bail!("--nodes must be at least 2, one per side");
    }
    let nodes_dir = run.report.join("nodes");
    if nodes_dir.exists() {
        std::fs::remove_dir_all(&nodes_dir)?;
    }
    let specs: Vec<NodeSpec> = (0..run.nodes)
        .map(|index| NodeSpec {
            name: format!("n{index}"),
            share: 0.0,
            config: None,
        })
        .collect();
    let testnet = Testnet::start(
        &nodes_dir,
        &split_params()?,
        &specs,
        0,
        Link::plain(links(Topology::Mesh, run.nodes, 0)),
        &crate::cluster::NodeEngine::processes(&run.quarryd),
        Lifetime::WithThisProcess,
    )?;
    let report = measure(&testnet, run);
    let stopped = testnet.shutdown();
    let report = report?;
    stopped?;
    Ok(report)
}

fn measure(testnet: &Testnet, run: &SplitRun) -> Result<SplitReport> {
    let lighter: Vec<usize> = (0..run.nodes / 2).collect();
    let heavier: Vec<usize> = (run.nodes / 2..run.nodes).collect();
    testnet.partition(&lighter, &heavier)?;
    let mining = Instant::now();
    mine(testnet, lighter[0], run.blocks)?;
    mine(testnet, heavier[0], run.blocks + 1)?;
    let mining_seconds = mining.elapsed().as_secs_f64();
    let lighter_tip = tip(testnet, lighter[0])?;
    let heavier_tip = tip(testnet, heavier[0])?;
    eprintln!("each half agrees on its own branch...");
    wait_for_tip(testnet, &lighter, &lighter_tip, Instant::now())?;
    wait_for_tip(testnet, &heavier, &heavier_tip, Instant::now())?;

    eprintln!("healed: waiting for every node to reach the heavier tip...");
    testnet.heal()?;
    let healed = Instant::now();
    let all: Vec<usize> = (0..run.nodes).collect();
    let seconds = wait_for_tip(testnet, &all, &heavier_tip, healed)?;
    let per_node: Vec<NodeReconverged> = all
        .iter()
        .zip(&seconds)
        .map(|(&index, &seconds)| NodeReconverged {
            name: testnet.state.nodes[index].name.clone(),
            reorganised: lighter.contains(&index),
            seconds,
        })
        .collect();
    Ok(SplitReport {
        nodes: run.nodes,
        lighter_blocks: run.blocks,
        heavier_blocks: run.blocks + 1,
        mining_seconds,
        reconverge_seconds: seconds.iter().copied().fold(0.0, f64::max),
        per_node,
    })
}

/// The report as a table for the terminal.
pub fn render(report: &SplitReport) -> String {
    let mut text = format!(
        "Split of {} nodes: {} blocks on the lighter half, {} on the heavier (mined in {:.1} s)\n\n",
        report.nodes, report.lighter_blocks, report.heavier_blocks, report.mining_seconds
    );
    text.push_str(&format!(
        "{:<6} {:<28} {:>10} {:>12}\n",
        "node", "after the heal", "seconds", "blocks/s"
    ));
    for node in &report.per_node {
        let (what, blocks) = if node.reorganised {
            (
                format!("reorganised {} deep", report.lighter_blocks),
                report.lighter_blocks + report.heavier_blocks,
            )
        } else {
            ("already on the heavier tip".to_owned(), 0)
        };
        let rate = if blocks > 0 && node.seconds > 0.0 {
            format!("{:.0}", f64::from(blocks) / node.seconds)
        } else {
            "-".to_owned()
        };
        text.push_str(&format!(
            "{:<6} {:<28} {:>10.2} {:>12}\n",
            node.name, what, node.seconds, rate
        ));
    }
    text.push_str(&format!(
        "\nEvery node on the most-work tip {:.2} s after the heal.\n(blocks/s counts the blocks \
         disconnected and connected.)",
        report.reconverge_seconds
    ));
    text
}

/// Writes `report.json` into `dir`.
pub fn write(report: &SplitReport, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    Ok(())
}
