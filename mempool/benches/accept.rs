//! Mempool acceptance of 10,000 signed transactions from a funded wallet: transactions per
//! second and resident memory per pooled transaction.
//!
//! Run with `cargo bench -p quarry-mempool`. One measured pass after the transactions are
//! signed; signatures are verified inside the measurement, as for any transaction received.

use std::time::Instant;

use quarry_chain::testing::{pay, signed_spend, test_keypair, Harness, Spendable};
use quarry_mempool::{Mempool, TipContext};

const TRANSACTIONS: u32 = 10_000;

/// Resident set size of this process in KiB (`VmRSS`).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        println!("accept_10000: bench");
        return;
    }
    // A wallet (key 1) holding 10,000 confirmed outputs: one coinbase fanned out in a block.
    let mut harness = Harness::new();
    let genesis = harness.genesis();
    let funding = harness.mine(Vec::new());
    harness.mature();
    let coin = Harness::coinbase_coin(&funding);
    let share = (coin.output.value.to_sat() - 1_000_000) / u64::from(TRANSACTIONS);
    let fan_out = signed_spend(
        genesis,
        &[coin],
        (0..TRANSACTIONS).map(|_| pay(1, share)).collect(),
    );
    harness.mine(vec![fan_out.clone()]);
    let wallet = test_keypair(1);
    let transactions: Vec<_> = (0..TRANSACTIONS)
        .map(|vout| {
            let coin = Spendable::output_of(&fan_out, vout, wallet);
            signed_spend(genesis, &[coin], vec![pay(2, share - 2_000)])
        })
        .collect();

    let tip = TipContext {
        height: harness.chain.tip_height(),
        genesis,
        coinbase_maturity: harness.chain.params().coinbase_maturity(),
    };
    let mut pool = Mempool::default();
    let rss_before = rss_kib();
    let started = Instant::now();
    for tx in transactions {
        pool.accept(tx, harness.chain.store(), &tip, harness.now)
            .expect("a valid transaction");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss_after = rss_kib();
    println!(
        "accepted {} transactions in {:.3} s = {:.0} transactions/s (one thread, signatures included)",
        pool.len(),
        elapsed,
        f64::from(TRANSACTIONS) / elapsed
    );
    println!(
        "pool: {} bytes of transactions ({:.0} per transaction); resident memory grew {:.1} MiB = {:.0} bytes per transaction",
        pool.bytes(),
        pool.bytes() as f64 / f64::from(TRANSACTIONS),
        rss_after.saturating_sub(rss_before) as f64 / 1024.0,
        rss_after.saturating_sub(rss_before) as f64 * 1024.0 / f64::from(TRANSACTIONS)
    );
    let started = Instant::now();
    let (selected, fees, size) = pool.select_transactions(1_000_000 - 1_000);
    println!(
        "template: {} transactions, {size} bytes, {fees} fees, selected in {:.1} ms",
        selected.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
}
