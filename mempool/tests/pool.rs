//! Acceptance, conflicts, replacement, limits, orphans, expiry and chain following.

mod common;

use common::{output, spend, spend_many, Funded, COIN};
use quarry_chain::testing::{assemble_block, pay, BlockTemplate, MINER};
use quarry_chain::{Acceptance, TxError, TxOut};
use quarry_mempool::{
    FeeRate, MempoolConfig, MempoolError, ReplacementPolicy, ReplacementShortfall,
};

const VALUE: u64 = 50 * COIN;

fn rbf() -> MempoolConfig {
    MempoolConfig {
        replacement: ReplacementPolicy::ReplaceByFee,
        ..MempoolConfig::default()
    }
}

#[test]
fn valid_spends_and_chains_of_unconfirmed_spends_are_accepted() {
    let mut funded = Funded::new(1, MempoolConfig::default());
    let genesis = funded.harness.genesis();
    let parent = spend(genesis, &funded.coins[0], 1, VALUE - 10_000);
    let accepted = funded.accept(&parent).unwrap();
    assert_eq!(accepted.fee.to_sat(), 10_000);
    let child = spend(genesis, &output(&parent, 0, 1), 2, VALUE - 30_000);
    funded.accept(&child).unwrap();
    assert_eq!(funded.pool.len(), 2);
    assert_eq!(
        funded
            .pool
            .ancestors(&child.txid())
            .into_iter()
            .collect::<Vec<_>>(),
        vec![parent.txid()]
    );
    assert!(matches!(
        funded.accept(&parent),
        Err(MempoolError::AlreadyInPool { .. })
    ));
    funded.assert_pool_consistent();
}

#[test]
fn a_double_spend_is_rejected_naming_the_transaction_it_conflicts_with() {
    let mut funded = Funded::new(1, MempoolConfig::default());
    let genesis = funded.harness.genesis();
    let first = spend(genesis, &funded.coins[0], 1, VALUE - 10_000);
    funded.accept(&first).unwrap();
    let second = spend(genesis, &funded.coins[0], 2, VALUE - 500_000);
    let error = funded.accept(&second).unwrap_err();
    assert!(
        matches!(error, MempoolError::Conflict { conflicting, .. } if conflicting == first.txid())
    );
    assert!(
        error.to_string().contains(&first.txid().to_string()),
        "{error}"
    );
    assert_eq!(error.reason(), "txn-mempool-conflict");
}

#[test]
fn replace_by_fee_evicts_conflicts_and_descendants_only_when_paying_more() {
    let mut funded = Funded::new(1, rbf());
    let genesis = funded.harness.genesis();
    let original = spend(genesis, &funded.coins[0], 1, VALUE - 10_000);
    funded.accept(&original).unwrap();
    let child = spend(genesis, &output(&original, 0, 1), 1, VALUE - 20_000);
    funded.accept(&child).unwrap();

    // Same fee rate: refused.
    let cheap = spend(genesis, &funded.coins[0], 2, VALUE - 10_000);
    let error = funded.accept(&cheap).unwrap_err();
    assert!(matches!(
        error,
        MempoolError::ReplacementRejected {
            why: ReplacementShortfall::FeeRate { .. },
            ..
        }
    ));
    // Higher rate but less than the 20,000 the original and its child pay together.
    let short = spend(genesis, &funded.coins[0], 2, VALUE - 15_000);
    assert!(matches!(
        funded.accept(&short).unwrap_err(),
        MempoolError::ReplacementRejected {
            why: ReplacementShortfall::AbsoluteFee { .. },
            ..
        }
    ));
    let better = spend(genesis, &funded.coins[0], 2, VALUE - 40_000);
    let accepted = funded.accept(&better).unwrap();
    let mut replaced = accepted.replaced.clone();
    replaced.sort();
    let mut expected = vec![original.txid(), child.txid()];
    expected.sort();
    assert_eq!(replaced, expected);
    assert_eq!(funded.pool.len(), 1);
    assert!(funded.pool.contains(&better.txid()));
    funded.assert_pool_consistent();
}

#[test]
fn fees_below_the_minimum_relay_rate_are_refused() {
    let mut funded = Funded::new(1, MempoolConfig::default());
    let genesis = funded.harness.genesis();
    let free = spend(genesis, &funded.coins[0], 1, VALUE);
    assert!(matches!(
        funded.accept(&free).unwrap_err(),
        MempoolError::FeeTooLow { .. }
    ));
    let overspend = spend(genesis, &funded.coins[0], 1, VALUE + 1);
    assert!(matches!(
        funded.accept(&overspend).unwrap_err(),
        MempoolError::Invalid(TxError::OutputsExceedInputs { .. })
    ));
    assert!(funded.pool.is_empty());
}

#[test]
fn an_orphan_waits_for_its_parent_and_is_accepted_when_it_arrives() {
    let mut funded = Funded::new(1, MempoolConfig::default());
    let genesis = funded.harness.genesis();
    let parent = spend(genesis, &funded.coins[0], 1, VALUE - 10_000);
    let child = spend(genesis, &output(&parent, 0, 1), 2, VALUE - 20_000);
    let error = funded.accept(&child).unwrap_err();
    assert_eq!(error.reason(), "missing-inputs");
    assert_eq!(funded.pool.orphan_count(), 1);
    let accepted = funded.accept(&parent).unwrap();
    assert_eq!(accepted.resolved_orphans, vec![child.txid()]);
    assert_eq!(funded.pool.len(), 2);
    assert_eq!(funded.pool.orphan_count(), 0);
}

#[test]
fn orphans_are_bounded_and_expire() {
    let config = MempoolConfig {
        max_orphans: 2,
        ..MempoolConfig::default()
    };
    let mut funded = Funded::new(3, config);
    let genesis = funded.harness.genesis();
    let parents: Vec<_> = (0..3)
        .map(|i| spend(genesis, &funded.coins[i], 1, VALUE - 10_000))
        .collect();
    for parent in &parents {
        let child = spend(genesis, &output(parent, 0, 1), 2, VALUE - 20_000);
        let _ = funded.accept(&child);
    }
    assert_eq!(funded.pool.orphan_count(), 2);
    // The oldest orphan was evicted: its parent resolves nothing.
    assert!(funded
        .accept(&parents[0])
        .unwrap()
        .resolved_orphans
        .is_empty());
    let later = funded.harness.now + funded.pool.config().orphan_expiry_secs + 1;
    funded.pool.expire(later);
    assert_eq!(funded.pool.orphan_count(), 0);
}

#[test]
fn ancestor_and_descendant_limits_hold() {
    let config = MempoolConfig {
        max_ancestors: 3,
        max_descendants: 3,
        ..MempoolConfig::default()
    };
    let mut funded = Funded::new(1, config);
    let genesis = funded.harness.genesis();
    let mut last = spend_many(
        genesis,
        &[funded.coins[0]],
        vec![pay(1, VALUE / 2), pay(1, VALUE / 2 - 10_000)],
    );
    funded.accept(&last).unwrap();
    let root = last.clone();
    for _ in 0..2 {
        let value = last.outputs[0].value.to_sat() - 10_000;
        let next = spend(genesis, &output(&last, 0, 1), 1, value);
        funded.accept(&next).unwrap();
        last = next;
    }
    let too_deep = spend(genesis, &output(&last, 0, 1), 1, VALUE / 4);
    assert!(matches!(
        funded.accept(&too_deep).unwrap_err(),
        MempoolError::TooManyAncestors { count: 4, max: 3 }
    ));
    // The root already has three descendants with itself: a fourth is refused.
    let sibling = spend(genesis, &output(&root, 1, 1), 1, VALUE / 4);
    assert!(matches!(
        funded.accept(&sibling).unwrap_err(),
        MempoolError::TooManyDescendants { .. }
    ));
}

#[test]
fn a_full_pool_evicts_the_lowest_fee_rate_and_refuses_what_pays_less() {
    let mut probe = Funded::new(1, MempoolConfig::default());
    let genesis = probe.harness.genesis();
    let size = probe
        .accept(&spend(genesis, &probe.coins[0], 1, VALUE - 10_000))
        .unwrap()
        .size;
    let config = MempoolConfig {
        max_bytes: 2 * size,
        ..MempoolConfig::default()
    };
    let mut funded = Funded::new(4, config);
    let fees = [20_000, 30_000, 40_000];
    let txs: Vec<_> = fees
        .iter()
        .enumerate()
        .map(|(i, fee)| spend(genesis, &funded.coins[i], 1, VALUE - fee))
        .collect();
    funded.accept(&txs[0]).unwrap();
    funded.accept(&txs[1]).unwrap();
    funded.accept(&txs[2]).unwrap();
    assert_eq!(funded.pool.len(), 2);
    assert!(!funded.pool.contains(&txs[0].txid()));
    let poor = spend(genesis, &funded.coins[3], 1, VALUE - 10_000);
    assert!(matches!(
        funded.accept(&poor).unwrap_err(),
        MempoolError::PoolFull { .. }
    ));
    assert!(funded.pool.bytes() <= 2 * size);
}

#[test]
fn test_accept_reports_without_changing_the_pool() {
    let funded = Funded::new(1, MempoolConfig::default());
    let genesis = funded.harness.genesis();
    let tx = spend(genesis, &funded.coins[0], 1, VALUE - 10_000);
    let tip = funded.tip();
    let report = funded
        .pool
        .test_accept(&tx, funded.harness.chain.store(), &tip)
        .unwrap();
    assert_eq!((report.txid, report.fee.to_sat()), (tx.txid(), 10_000));
    assert!(funded.pool.is_empty());
    let free = spend(genesis, &funded.coins[0], 1, VALUE);
    let error = funded
        .pool
        .test_accept(&free, funded.harness.chain.store(), &tip)
        .unwrap_err();
    assert_eq!(error.reason(), "min-relay-fee-not-met");
    assert!(FeeRate::of(report.fee, report.size) > funded.pool.config().min_relay_fee_rate);
}

#[test]
fn old_transactions_expire_with_their_descendants() {
    let mut funded = Funded::new(1, MempoolConfig::default());
    let genesis = funded.harness.genesis();
    let parent = spend(genesis, &funded.coins[0], 1, VALUE - 10_000);
    funded.accept(&parent).unwrap();
    let child = spend(genesis, &output(&parent, 0, 1), 1, VALUE - 20_000);
    funded.accept(&child).unwrap();
    let later = funded.harness.now + funded.pool.config().expiry_secs + 1;
    assert_eq!(funded.pool.expire(later).len(), 2);
    assert!(funded.pool.is_empty());
}

#[test]
fn connected_blocks_remove_confirmed_and_conflicting_transactions() {
    let mut funded = Funded::new(2, MempoolConfig::default());
    let genesis = funded.harness.genesis();
    let confirmed = spend(genesis, &funded.coins[0], 1, VALUE - 10_000);
    let child = spend(genesis, &output(&confirmed, 0, 1), 1, VALUE - 20_000);
    let loser = spend(genesis, &funded.coins[1], 1, VALUE - 10_000);
    let loser_child = spend(genesis, &output(&loser, 0, 1), 1, VALUE - 20_000);
    for tx in [&confirmed, &child, &loser, &loser_child] {
        funded.accept(tx).unwrap();
    }
    let winner = spend(genesis, &funded.coins[1], 2, VALUE - 5_000);
    let block = funded.harness.block_on(
        funded.harness.chain.tip_hash(),
        vec![confirmed.clone(), winner],
    );
    let update = funded.submit_and_follow(block);
    assert_eq!(update.confirmed, vec![confirmed.txid()]);
    let mut removed = update.removed.clone();
    removed.sort();
    let mut expected = vec![loser.txid(), loser_child.txid()];
    expected.sort();
    assert_eq!(removed, expected);
    assert_eq!(funded.pool.len(), 1);
    assert!(funded.pool.get(&child.txid()).unwrap().parents.is_empty());
    funded.assert_pool_consistent();
}

#[test]
fn a_reorganisation_returns_still_valid_transactions_of_disconnected_blocks() {
    let mut funded = Funded::new(2, MempoolConfig::default());
    let genesis = funded.harness.genesis();
    let fork_point = funded.harness.chain.tip_hash();
    let kept = spend(genesis, &funded.coins[0], 1, VALUE - 10_000);
    let double_spent = spend(genesis, &funded.coins[1], 1, VALUE - 10_000);
    let block = funded
        .harness
        .block_on(fork_point, vec![kept.clone(), double_spent.clone()]);
    funded.submit_and_follow(block);
    // A longer branch spends the second coin differently.
    let conflict = spend(genesis, &funded.coins[1], 2, VALUE - 10_000);
    let first = funded.harness.block_on(fork_point, vec![conflict]);
    let first_hash = first.block_hash();
    assert_eq!(funded.harness.submit(first).unwrap(), Acceptance::Accepted);
    let second = funded.harness.block_on(first_hash, Vec::new());
    let update = funded.submit_and_follow(second);
    assert_eq!(update.readded, vec![kept.txid()]);
    assert!(funded.pool.contains(&kept.txid()));
    assert!(!funded.pool.contains(&double_spent.txid()));
    funded.assert_pool_consistent();
}

#[test]
fn a_template_selects_by_ancestor_fee_rate_and_its_block_is_valid() {
    let mut funded = Funded::new(3, MempoolConfig::default());
    let genesis = funded.harness.genesis();
    // A parent paying the minimum, and a child paying for both.
    let parent = spend(genesis, &funded.coins[0], 1, VALUE - 200);
    let child = spend(genesis, &output(&parent, 0, 1), 1, VALUE - 200 - 90_000);
    let middling = spend(genesis, &funded.coins[1], 1, VALUE - 30_000);
    let low = spend(genesis, &funded.coins[2], 1, VALUE - 1_000);
    for tx in [&parent, &child, &middling, &low] {
        funded.accept(tx).unwrap();
    }
    let (selected, fees, _) = funded.pool.select_transactions(1_000_000);
    let order: Vec<_> = selected.iter().map(|tx| tx.txid()).collect();
    assert_eq!(
        order,
        vec![parent.txid(), child.txid(), middling.txid(), low.txid()]
    );
    assert_eq!(fees.to_sat(), 200 + 90_000 + 30_000 + 1_000);
    // Room for only one package: the parent-child pair wins over the middling transaction.
    let pair_size = parent.encoded_size() + child.encoded_size();
    let (selected, _, used) = funded.pool.select_transactions(pair_size);
    assert_eq!(selected.len(), 2);
    assert_eq!(used, pair_size);

    let chain = &funded.harness.chain;
    let next = chain.next_block();
    let subsidy = chain.params().block_subsidy(next.height);
    let template = funded
        .pool
        .block_template(&next, subsidy, funded.harness.now);
    assert_eq!(
        template.coinbase_value.to_sat(),
        subsidy.to_sat() + fees.to_sat()
    );
    let block = assemble_block(
        &BlockTemplate {
            prev_blockhash: template.prev_blockhash,
            height: template.height,
            time: template.time,
            bits: template.bits,
            coinbase_outputs: vec![TxOut {
                value: template.coinbase_value,
                pubkey: quarry_chain::testing::test_key(MINER),
            }],
            extra_nonce: 1,
        },
        template
            .transactions
            .iter()
            .map(|tx| (**tx).clone())
            .collect(),
    )
    .unwrap();
    let update = funded.submit_and_follow(block);
    assert_eq!(update.confirmed.len(), 4);
    assert!(funded.pool.is_empty());
}
