//! Validation of a block of 2,000 signed transactions, beside the raw secp256k1 Schnorr
//! verification rate measured in the same run. Target: block validation reaches at least 80% of
//! (raw verify rate x cores used).

use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use quarry_chain::sighash::{verify, SighashCache};
use quarry_chain::testing::{
    assemble_block, pay, signed_spend, test_keypair, BlockTemplate, Spendable,
};
use quarry_chain::validation::isolation::check_block;
use quarry_chain::validation::utxo_context::{connect_block, ConnectContext};
use quarry_chain::PowMode;
use quarry_chain::{
    Amount, Block, Chain, ChainParams, ChainReader, MemoryStore, NetworkSpec, OutPoint,
    RetargetRule, TxOut,
};

const TRANSACTIONS: usize = 2_000;

struct Fixture {
    chain: Chain<MemoryStore>,
    block: Block,
    context: ConnectContext,
}

fn fixture() -> Fixture {
    let params = ChainParams::new(NetworkSpec {
        name: "bench".into(),
        retarget: RetargetRule::Asert { half_life: 3600 },
        target_spacing: 10,
        pow_limit_bits: 0x207f_ffff,
        initial_subsidy_sats: 50 * 100_000_000,
        halving_interval: 1_000,
        coinbase_maturity: 1,
        max_future_block_time: 7200,
        genesis_time: 1_795_219_200,
        genesis_message: "bench".into(),
        genesis_nonce: None,
        minimum_chain_work: None,
        genesis_bits: None,
        pow: PowMode::Real,
    })
    .expect("valid bench parameters");
    let genesis = params.genesis_hash();
    let genesis_time = params.genesis_block().header.time;
    let mut chain = Chain::open(params, MemoryStore::new()).expect("fresh store");
    let now = u64::from(genesis_time) + 1_000_000;
    let share = 50 * 100_000_000 / TRANSACTIONS as u64;
    let mut time = genesis_time;
    let mut next_template = |chain: &Chain<MemoryStore>, outputs: Vec<TxOut>| {
        let next = chain.next_block();
        time += 10;
        BlockTemplate {
            prev_blockhash: next.prev_blockhash,
            height: next.height,
            time,
            bits: next.bits,
            coinbase_outputs: outputs,
            extra_nonce: 0,
        }
    };
    let funding = assemble_block(
        &next_template(
            &chain,
            (0..TRANSACTIONS)
                .map(|i| pay(i as u64 % 16, share))
                .collect(),
        ),
        Vec::new(),
    )
    .expect("mined");
    chain
        .process_block(funding.clone(), now)
        .expect("funding block");
    let spacer =
        assemble_block(&next_template(&chain, vec![pay(0, 1)]), Vec::new()).expect("mined");
    chain.process_block(spacer, now).expect("maturing block");
    let coinbase = &funding.transactions[0];
    let keys: Vec<_> = (0..16).map(test_keypair).collect();
    let txs = coinbase
        .outputs
        .iter()
        .enumerate()
        .map(|(vout, output)| {
            let coin = Spendable {
                outpoint: OutPoint {
                    txid: coinbase.txid(),
                    vout: vout as u32,
                },
                output: *output,
                keypair: keys[vout % 16],
            };
            signed_spend(
                genesis,
                &[coin],
                vec![pay(1, share / 2), pay(2, share / 2 - 500)],
            )
        })
        .collect();
    let next = chain.next_block();
    let block =
        assemble_block(&next_template(&chain, vec![pay(0, 50 * 100_000_000)]), txs).expect("mined");
    let context = ConnectContext {
        height: next.height,
        subsidy: Amount::from_sat(50 * 100_000_000),
        coinbase_maturity: 1,
        genesis,
    };
    Fixture {
        chain,
        block,
        context,
    }
}

/// Full validation of the block: context-free rules, then UTXO rules and all signatures.
fn validate(fixture: &Fixture) {
    let txids = check_block(&fixture.block, fixture.chain.params().pow_check()).expect("valid");
    connect_block(
        &fixture.block,
        &txids,
        &fixture.context,
        fixture.chain.store(),
    )
    .expect("connects");
}

/// Every input's (sighash, signature, key), computed up front so only verification is timed.
fn raw_signatures(
    fixture: &Fixture,
) -> Vec<(
    quarry_chain::sighash::Sighash,
    Vec<u8>,
    quarry_chain::OutputKey,
)> {
    let coinbase = &fixture
        .chain
        .store()
        .utxo_set()
        .expect("a memory store cannot fail");
    fixture.block.transactions[1..]
        .iter()
        .map(|tx| {
            let spent: Vec<TxOut> = tx
                .inputs
                .iter()
                .map(|input| coinbase[&input.prevout].output)
                .collect();
            let sighash = SighashCache::new(tx, &spent)
                .expect("one spent output per input")
                .sighash(fixture.context.genesis, 0);
            (sighash, tx.inputs[0].witness.clone(), spent[0].pubkey)
        })
        .collect()
}

fn verify_all(
    signatures: &[(
        quarry_chain::sighash::Sighash,
        Vec<u8>,
        quarry_chain::OutputKey,
    )],
) {
    for (sighash, signature, key) in signatures {
        assert!(verify(sighash, signature, key));
    }
}

fn benches(c: &mut Criterion) {
    let fixture = fixture();
    let signatures = raw_signatures(&fixture);
    let mut group = c.benchmark_group("block_of_2000_transactions");
    group.throughput(Throughput::Elements(TRANSACTIONS as u64));
    group.sample_size(20);
    group.bench_function("raw_schnorr_verify_one_core", |b| {
        b.iter(|| verify_all(&signatures))
    });
    group.bench_function("full_block_validation_all_cores", |b| {
        b.iter(|| validate(&fixture))
    });
    group.finish();
}

/// The median time of `runs` runs of `work`.
fn median_time(runs: usize, mut work: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// Prints the figures the target is stated in, measured back to back in this run.
fn summary() {
    let fixture = fixture();
    let signatures = raw_signatures(&fixture);
    let cores = rayon::current_num_threads();
    let raw = median_time(15, || verify_all(&signatures));
    let full = median_time(15, || validate(&fixture));
    let raw_rate = TRANSACTIONS as f64 / raw.as_secs_f64();
    let full_rate = TRANSACTIONS as f64 / full.as_secs_f64();
    let ratio = full_rate / (raw_rate * cores as f64);
    println!();
    println!("block validation, {TRANSACTIONS} signed transactions (medians of 15 runs)");
    println!("  raw Schnorr verification, 1 core : {raw_rate:>10.0} signatures/s");
    println!("  cores used by validation         : {cores:>10}");
    println!(
        "  full block validation            : {full_rate:>10.0} transactions/s ({:.1} ms/block)",
        full.as_secs_f64() * 1e3
    );
    println!(
        "  validation / (raw x cores)       : {:>9.1}%  (target >= 80%: {})",
        ratio * 100.0,
        if ratio >= 0.8 { "met" } else { "NOT met" }
    );
}

criterion_group!(validation, benches);

fn main() {
    validation();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
