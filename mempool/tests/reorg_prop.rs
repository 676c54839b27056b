//! Property: through any sequence of spends, mined blocks and competing branches that reorganise
//! the chain, every pool entry stays valid against the tip (a fresh pool accepts them all).

mod common;

use common::{output, spend, Funded, COIN};
use proptest::prelude::*;
use quarry_chain::testing::Spendable;
use quarry_chain::Block;
use quarry_mempool::{MempoolConfig, ReplacementPolicy};

#[derive(Clone, Debug)]
enum Op {
    /// Spend one of the known outputs (a coin or a pool transaction's output).
    Spend { pick: usize },
    /// Mine a block with the first `take` transactions of the template.
    Mine { take: usize },
    /// A branch from `depth` blocks below the tip, one block longer, whose first block spends
    /// coin `coin` elsewhere (a double spend of whatever spends it on the old branch).
    Fork { depth: u32, coin: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<usize>().prop_map(|pick| Op::Spend { pick }),
        2 => (0usize..6).prop_map(|take| Op::Mine { take }),
        1 => (1u32..=3, any::<usize>()).prop_map(|(depth, coin)| Op::Fork { depth, coin }),
    ]
}

fn run(ops: &[Op], replacement: ReplacementPolicy) {
    let config = MempoolConfig {
        replacement,
        ..MempoolConfig::default()
    };
    let mut funded = Funded::new(6, config);
    funded.harness.mine_empty(4);
    funded.follow();
    let genesis = funded.harness.genesis();
    let coins = funded.coins.clone();
    let mut known: Vec<Spendable> = coins.clone();
    for op in ops {
        match *op {
            Op::Spend { pick } => {
                let coin = known[pick % known.len()];
                let value = coin.output.value.to_sat();
                if value > 20_000 {
                    let tx = spend(
                        genesis,
                        &coin,
                        1,
                        value - 10_000 - (pick % 7) as u64 * 1_000,
                    );
                    if funded.accept(&tx).is_ok() {
                        known.push(output(&tx, 0, 1));
                    }
                }
            }
            Op::Mine { take } => {
                let (selected, _, _) = funded.pool.select_transactions(1_000_000);
                let txs = selected
                    .iter()
                    .take(take)
                    .map(|tx| (**tx).clone())
                    .collect();
                let block = funded
                    .harness
                    .block_on(funded.harness.chain.tip_hash(), txs);
                funded.submit_and_follow(block);
            }
            Op::Fork { depth, coin } => {
                let tip_height = funded.harness.chain.tip_height();
                let mut parent = funded
                    .harness
                    .chain
                    .hash_at_height(tip_height - depth)
                    .unwrap();
                let double_spend =
                    spend(genesis, &coins[coin % coins.len()], 2, 50 * COIN - 50_000);
                for index in 0..=depth {
                    let txs = if index == 0 {
                        vec![double_spend.clone()]
                    } else {
                        Vec::new()
                    };
                    let block: Block = funded.harness.block_on(parent, txs);
                    parent = block.block_hash();
                    // A branch whose double spend is invalid at the fork point is refused.
                    let _ = funded.harness.submit(block);
                }
                let u = funded.follow();
                eprintln!("fork update {:?}", u);
            }
        }
        funded.assert_pool_consistent();
        eprintln!(
            "op {:?} pool {} height {} known {}",
            op,
            funded.pool.len(),
            funded.harness.chain.tip_height(),
            known.len()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn first_seen_pools_stay_valid_through_random_reorganisations(ops in prop::collection::vec(op(), 1..30)) {
        run(&ops, ReplacementPolicy::FirstSeen);
    }

    #[test]
    fn replace_by_fee_pools_stay_valid_through_random_reorganisations(ops in prop::collection::vec(op(), 1..30)) {
        run(&ops, ReplacementPolicy::ReplaceByFee);
    }
}
