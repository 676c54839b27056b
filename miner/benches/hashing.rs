//! Hash rate of every kernel on one thread and on all threads, beside the single-stream
//! `compress256` midstate loop measured in the same run. Targets: the selected kernel at least
//! 2.2x the single-stream loop per thread, and at least 1.8x from one thread to all.
//!
//! Run with `cargo bench -p quarry-miner`. Each figure is the best of three timed passes.

use std::ops::ControlFlow;
use std::time::Instant;

use quarry_chain::{BlockHash, BlockHeader, CompactTarget, MerkleRoot};
use quarry_miner::{HeaderWork, Kernel, Miner, MinerConfig};

/// Nonces per pass and thread.
const NONCES: u64 = 1 << 24;

/// A header no hash meets, so every pass scans its whole range.
fn header() -> BlockHeader {
    BlockHeader {
        version: 1,
        prev_blockhash: BlockHash::from_byte_array([1; 32]),
        merkle_root: MerkleRoot::from_byte_array([2; 32]),
        time: 1_800_000_000,
        bits: CompactTarget::from_consensus(0x0300_0001),
        nonce: 0,
    }
}

fn best_of_three(mut pass: impl FnMut() -> u64) -> f64 {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            let hashes = pass();
            hashes as f64 / started.elapsed().as_secs_f64() / 1e6
        })
        .fold(0.0, f64::max)
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        println!("kernels: bench");
        return;
    }
    let header = header();
    let work = HeaderWork::new(&header).expect("valid bits");
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "{:<12} {:>10} {:>14} {:>12} {:>12}",
        "kernel", "threads", "MH/s", "per thread", "vs loop"
    );
    let mut single_stream = 0.0;
    for kernel in Kernel::available().into_iter().rev() {
        let one = best_of_three(|| {
            kernel.for_each_hit(&work, 0..NONCES, |_| ControlFlow::Continue(()));
            NONCES
        });
        if kernel == Kernel::Compress256 {
            single_stream = one;
        }
        let miner = Miner::new(MinerConfig {
            threads,
            kernel: Some(kernel),
            max_hash_rate: None,
            simulation: None,
        })
        .expect("miner");
        let all = best_of_three(|| {
            miner.search(&header, 0..NONCES * threads as u64, &|| false);
            NONCES * threads as u64
        });
        for (count, rate) in [(1, one), (threads, all)] {
            println!(
                "{:<12} {:>10} {:>14.2} {:>12.2} {:>11.2}x",
                kernel.name(),
                count,
                rate,
                rate / count as f64,
                rate / count as f64 / single_stream
            );
        }
        println!(
            "{:<12} scaling from 1 to {threads} threads: {:.2}x",
            kernel.name(),
            all / one
        );
    }
    println!("selected kernel on this CPU: {}", Kernel::best().name());
}
