//! The chain on RocksDB: connect 10,000 blocks with transactions to a fresh store (blocks/s,
//! transactions/s, peak resident memory), then a 100-block-deep reorganisation (time).
//!
//! Run with `cargo bench -p quarry-chain --bench store`. One measured pass: the workload is
//! too large for repeated sampling to be worth its time.

use std::time::Instant;

use quarry_chain::testing::{unit_params, Harness, WorkloadBuilder};
use quarry_chain::{Block, Chain, ChainEvent};
use quarry_store::RocksStore;

const BLOCKS: usize = 10_000;
const MAX_SPENDS: usize = 8;
const REORG_DEPTH: u32 = 100;

/// Peak resident set size of this process in KiB (`VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak resident set size to the current one (Linux `clear_refs`).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn transactions(blocks: &[Block]) -> usize {
    blocks
        .iter()
        .map(|block| block.transactions.len() - 1)
        .sum()
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        println!("store_connect_and_reorg: bench");
        return;
    }
    let started = Instant::now();
    let mut builder = WorkloadBuilder::new(1);
    let blocks: Vec<Block> = (0..BLOCKS).map(|_| builder.extend(MAX_SPENDS)).collect();
    let fork = builder.overtake(REORG_DEPTH, MAX_SPENDS);
    drop(builder);
    let bytes: usize = blocks.iter().map(Block::encoded_size).sum();
    println!(
        "workload: {BLOCKS} blocks, {} transactions besides coinbases, {:.1} MiB, built in {:.1?}",
        transactions(&blocks),
        bytes as f64 / 1_048_576.0,
        started.elapsed()
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let now = Harness::new().now;
    let rss_before = peak_rss_kib().unwrap_or(0);
    let reset = reset_peak_rss();
    let mut chain =
        Chain::open(unit_params(), RocksStore::open(dir.path()).expect("store")).expect("chain");
    let started = Instant::now();
    for block in &blocks {
        chain
            .process_block(block.clone(), now)
            .expect("valid block");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let peak = peak_rss_kib().unwrap_or(0);
    println!(
        "connect: {BLOCKS} blocks in {elapsed:.2} s = {:.0} blocks/s, {:.0} transactions/s",
        BLOCKS as f64 / elapsed,
        transactions(&blocks) as f64 / elapsed
    );
    println!(
        "peak RSS while connecting: {:.1} MiB ({}; the workload held in memory is {:.1} MiB, \
         RSS before the store opened {:.1} MiB)",
        peak as f64 / 1024.0,
        if reset {
            "peak reset before opening the store"
        } else {
            "peak of the whole process"
        },
        bytes as f64 / 1_048_576.0,
        rss_before as f64 / 1024.0,
    );

    let (last, branch) = fork.split_last().expect("a branch");
    for block in branch {
        chain
            .process_block(block.clone(), now)
            .expect("valid branch block");
    }
    chain.take_events();
    let started = Instant::now();
    chain
        .process_block(last.clone(), now)
        .expect("the overtaking block");
    let reorg = started.elapsed();
    assert_eq!(chain.tip_hash(), last.block_hash());
    let events = chain.take_events();
    println!(
        "reorganisation {REORG_DEPTH} blocks deep: {} disconnects and {} connects \
         ({} transactions on the new branch) in {:.1} ms",
        events
            .iter()
            .filter(|event| matches!(event, ChainEvent::Disconnected { .. }))
            .count(),
        events
            .iter()
            .filter(|event| matches!(event, ChainEvent::Connected { .. }))
            .count(),
        transactions(&fork),
        reorg.as_secs_f64() * 1000.0
    );
}
