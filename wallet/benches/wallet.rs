//! Figures for the wallet's local work: unlocking the seed (Argon2id), deriving keys, and coin
//! selection over a large wallet.
//!
//! `cargo bench -p quarry-wallet --bench wallet`

use std::time::Instant;

use quarry_chain::testing::test_key;
use quarry_chain::FeeRate;
use quarry_chain::{Address, Amount, ChainParams, OutPoint, TxOut, Txid};
use quarry_wallet::file::KEY_POOL;
use quarry_wallet::payment::{select_coins, Coin};
use quarry_wallet::{Seed, WalletFile};

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        println!("wallet: bench");
        return;
    }
    let params = ChainParams::regtest();
    let seed = Seed::generate();

    let started = Instant::now();
    let file = WalletFile::new(&seed, "a long passphrase", &params).expect("wallet");
    println!(
        "create (seal + derive {KEY_POOL} keys): {:.1?}",
        started.elapsed()
    );
    let runs = 10;
    let started = Instant::now();
    for _ in 0..runs {
        file.unlock("a long passphrase").expect("unlock");
    }
    println!(
        "unlock (Argon2id 19 MiB, 2 passes): {:.1?} each",
        started.elapsed() / runs
    );

    let started = Instant::now();
    let keys = 10_000;
    for index in 0..keys {
        std::hint::black_box(seed.keypair(index));
    }
    let elapsed = started.elapsed();
    println!(
        "key derivation: {:.0} keys/s",
        f64::from(keys) / elapsed.as_secs_f64()
    );

    let coins: Vec<Coin> = (0..10_000u32)
        .map(|n| {
            let mut txid = [0u8; 32];
            txid[..4].copy_from_slice(&n.to_le_bytes());
            Coin {
                outpoint: OutPoint {
                    txid: Txid::from_byte_array(txid),
                    vout: 0,
                },
                output: TxOut {
                    value: Amount::from_sat(100_000 + u64::from(n % 1_000) * 1_000),
                    pubkey: test_key(1),
                },
                height: 1,
                confirmations: 100,
                coinbase: false,
                mature: true,
            }
        })
        .collect();
    let to = Address::new(test_key(2), &params);
    let started = Instant::now();
    let payment = select_coins(
        &coins,
        Amount::ZERO,
        &to,
        Amount::from_sat(50_000_000),
        FeeRate::from_sat_per_kb(2_000),
        test_key(3),
    )
    .expect("enough coins");
    println!(
        "coin selection: {} of {} coins for 0.5 coins in {:.1?} ({} bytes, fee {})",
        payment.coins.len(),
        coins.len(),
        started.elapsed(),
        payment.size,
        payment.fee
    );
}
