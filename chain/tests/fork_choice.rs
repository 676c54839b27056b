//! Fork choice, reorganisations, orphans and invalid branches, including property tests over
//! random block trees delivered in random order.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use quarry_chain::testing::Harness;
use quarry_chain::testing::{assemble_block, signed_spend, test_key, test_keypair, Spendable};
use quarry_chain::testing::{assert_utxo_set_matches_replay, replayed_utxo_set};
use quarry_chain::{
    Acceptance, Amount, Block, BlockError, BlockHash, BlockStatus, Chain, ChainError, ChainEvent,
    ChainReader, Coin, OutPoint, TipStatus, Transaction, TxOut, Txid, Work,
};

/// The unit network with a short ASERT half-life, so blocks' work varies.
fn tree_params() -> quarry_chain::ChainParams {
    let mut spec = quarry_chain::testing::unit_params().spec().clone();
    spec.retarget = quarry_chain::RetargetRule::Asert { half_life: 5 };
    spec.genesis_nonce = None;
    quarry_chain::ChainParams::new(spec).unwrap()
}

/// Builds blocks on any block it has seen; the chain under test only receives them.
fn builder_and_subject() -> (Harness, Harness) {
    (Harness::new(), Harness::new())
}

/// Builds `n` empty blocks on `parent` with the builder, returning them in order.
fn branch(builder: &mut Harness, parent: BlockHash, n: usize) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for _ in 0..n {
        let parent = blocks.last().map_or(parent, Block::block_hash);
        let block = builder.block_on(parent, Vec::new());
        // The builder only needs the header indexed; it may itself find the branch invalid.
        let _ = builder.submit(block.clone());
        blocks.push(block);
    }
    blocks
}

#[test]
fn a_longer_branch_reorganises_the_chain_and_emits_events_in_order() {
    let (mut builder, mut subject) = builder_and_subject();
    let genesis = builder.genesis();
    let a = branch(&mut builder, genesis, 3);
    let b = branch(&mut builder, genesis, 4);
    for block in &a {
        subject.submit(block.clone()).unwrap();
    }
    subject.chain.take_events();
    for block in &b {
        subject.submit(block.clone()).unwrap();
    }
    assert_eq!(subject.chain.tip_hash(), b[3].block_hash());
    let events = subject.chain.take_events();
    let mut expected: Vec<ChainEvent> = a
        .iter()
        .enumerate()
        .rev()
        .map(|(i, block)| ChainEvent::Disconnected {
            hash: block.block_hash(),
            height: i as u32 + 1,
        })
        .collect();
    expected.extend(
        b.iter()
            .enumerate()
            .map(|(i, block)| ChainEvent::Connected {
                hash: block.block_hash(),
                height: i as u32 + 1,
            }),
    );
    assert_eq!(events, expected);
    assert_utxo_set_matches_replay(&subject.chain);
}

#[test]
fn equal_work_keeps_the_tip_seen_first() {
    let (mut builder, mut subject) = builder_and_subject();
    let genesis = builder.genesis();
    let a = branch(&mut builder, genesis, 2);
    let b = branch(&mut builder, genesis, 3);
    subject.submit(a[0].clone()).unwrap();
    subject.submit(a[1].clone()).unwrap();
    subject.submit(b[0].clone()).unwrap();
    subject.submit(b[1].clone()).unwrap();
    assert_eq!(
        subject.chain.tip_hash(),
        a[1].block_hash(),
        "tie keeps the first seen"
    );
    subject.submit(b[2].clone()).unwrap();
    assert_eq!(
        subject.chain.tip_hash(),
        b[2].block_hash(),
        "more work wins"
    );
}

/// Ties go to the chain whose bodies all arrived first (Bitcoin Core's `nSequenceId`), not to
/// the one whose header was announced first: otherwise whoever spams headers early, without
/// the blocks, would steer every tie.
#[test]
fn equal_work_goes_to_the_chain_complete_first_not_the_header_announced_first() {
    let (mut builder, mut subject) = builder_and_subject();
    let genesis = builder.genesis();
    let honest = branch(&mut builder, genesis, 2);
    let early = branch(&mut builder, genesis, 2);
    let now = subject.now;
    for block in &early {
        subject.chain.process_header(block.header, now).unwrap();
    }
    // The announced branch's last body arrives before its first one.
    subject.submit(early[1].clone()).unwrap();
    subject.submit(honest[0].clone()).unwrap();
    subject.submit(honest[1].clone()).unwrap();
    subject.submit(early[0].clone()).unwrap();
    assert_eq!(
        subject.chain.tip_hash(),
        honest[1].block_hash(),
        "the chain complete first keeps the tie"
    );
    // The order survives a restart.
    let reopened = Chain::open(
        subject.chain.params().clone(),
        subject.chain.store().clone(),
    );
    assert_eq!(reopened.unwrap().tip_hash(), honest[1].block_hash());
}

#[test]
fn fork_choice_follows_work_not_length() {
    // At the easy limit every target in (2^254, 2^255] is worth the same integer work, so use a
    // five-second half-life: one block nine seconds early makes the next 2^1.8 times harder.
    let (mut builder, mut subject) = (
        Harness::with_params(tree_params()),
        Harness::with_params(tree_params()),
    );
    let genesis = builder.genesis();
    // Three blocks at the limit, then a branch of three whose second block came fast enough
    // (one second after its parent) for ASERT to raise the third's difficulty.
    let long = branch(&mut builder, genesis, 3);
    let first = branch(&mut builder, genesis, 1).remove(0);
    let mut template = builder.template_on(first.block_hash());
    template.time = first.header.time + 1;
    let hard = assemble_block(&template, Vec::new()).unwrap();
    builder.submit(hard.clone()).unwrap();
    let mut template = builder.template_on(hard.block_hash());
    template.time = hard.header.time + 1;
    let harder = assemble_block(&template, Vec::new()).unwrap();
    let work = |block: &Block| block.header.bits.to_target().unwrap().to_work();
    assert!(work(&harder) > work(&long[0]));
    for block in long.iter().chain([&first, &hard, &harder]) {
        subject.submit(block.clone()).unwrap();
    }
    let short_work = subject
        .chain
        .index()
        .get(&harder.block_hash())
        .unwrap()
        .chain_work;
    let long_work = subject
        .chain
        .index()
        .get(&long[2].block_hash())
        .unwrap()
        .chain_work;
    assert!(short_work > long_work);
    assert_eq!(subject.chain.tip_hash(), harder.block_hash());
    assert_eq!(subject.chain.tip_height(), 3);
}

#[test]
fn a_branch_that_turns_out_invalid_is_marked_and_the_chain_returns_to_the_best_valid_tip() {
    let (mut builder, mut subject) = builder_and_subject();
    let genesis = builder.genesis();
    let a = branch(&mut builder, genesis, 3);
    let b1 = branch(&mut builder, genesis, 1).remove(0);
    // B2 pays its miner one sat too many: only connecting it can tell.
    let mut template = builder.template_on(b1.block_hash());
    template.coinbase_outputs[0].value =
        Amount::from_sat(template.coinbase_outputs[0].value.to_sat() + 1);
    let b2 = assemble_block(&template, Vec::new()).unwrap();
    let _ = builder.submit(b2.clone());
    let rest = branch(&mut builder, b2.block_hash(), 3);
    for block in &a {
        subject.submit(block.clone()).unwrap();
    }
    subject.submit(b1.clone()).unwrap();
    subject.submit(b2.clone()).unwrap();
    subject.submit(rest[0].clone()).unwrap();
    // B4 has more work than A3: the chain tries B, finds B2 invalid and goes back to A.
    subject.submit(rest[1].clone()).unwrap();
    assert_eq!(subject.chain.tip_hash(), a[2].block_hash());
    let status = |block: &Block| {
        subject
            .chain
            .index()
            .get(&block.block_hash())
            .unwrap()
            .status
    };
    assert_eq!(status(&b1), BlockStatus::Valid);
    assert_eq!(status(&b2), BlockStatus::Invalid);
    assert_eq!(status(&rest[0]), BlockStatus::InvalidAncestor);
    assert_eq!(status(&rest[1]), BlockStatus::InvalidAncestor);
    // Anything built on the invalid branch is refused, and the block itself stays refused.
    match subject.submit(rest[2].clone()) {
        Err(ChainError::InvalidBlock {
            source: BlockError::InvalidParent { parent },
            ..
        }) => assert_eq!(parent, rest[1].block_hash()),
        other => panic!("expected InvalidParent, got {other:?}"),
    }
    assert!(matches!(
        subject.submit(b2.clone()),
        Err(ChainError::KnownInvalid { .. })
    ));
    assert_utxo_set_matches_replay(&subject.chain);
}

#[test]
fn blocks_arriving_before_their_parents_wait_and_connect_when_the_parent_arrives() {
    let (mut builder, mut subject) = builder_and_subject();
    let genesis = builder.genesis();
    let blocks = branch(&mut builder, genesis, 6);
    for block in blocks[1..].iter().rev() {
        assert_eq!(subject.submit(block.clone()).unwrap(), Acceptance::Orphan);
    }
    assert_eq!(subject.chain.orphan_count(), 5);
    assert_eq!(subject.chain.tip_height(), 0);
    assert_eq!(
        subject.submit(blocks[0].clone()).unwrap(),
        Acceptance::Accepted
    );
    assert_eq!(subject.chain.tip_hash(), blocks[5].block_hash());
    assert_eq!(subject.chain.orphan_count(), 0);
}

#[test]
fn deep_reorganisations_restore_the_exact_utxo_set() {
    let (mut builder, mut subject) = builder_and_subject();
    let genesis = builder.genesis();
    let a = branch(&mut builder, genesis, 60);
    let b = branch(&mut builder, genesis, 61);
    for block in a.iter().chain(&b) {
        subject.submit(block.clone()).unwrap();
    }
    assert_eq!(subject.chain.tip_hash(), b[60].block_hash());
    let disconnected = subject
        .chain
        .take_events()
        .iter()
        .filter(|event| matches!(event, ChainEvent::Disconnected { .. }))
        .count();
    assert_eq!(disconnected, 60);
    assert_utxo_set_matches_replay(&subject.chain);
}

#[test]
fn reopening_the_store_restores_tip_index_and_statuses() {
    let (mut builder, mut subject) = builder_and_subject();
    let genesis = builder.genesis();
    let a = branch(&mut builder, genesis, 4);
    let b = branch(&mut builder, genesis, 2);
    for block in a.iter().chain(&b) {
        subject.submit(block.clone()).unwrap();
    }
    let reopened = Chain::open(
        subject.chain.params().clone(),
        subject.chain.store().clone(),
    )
    .unwrap();
    assert_eq!(reopened.tip_hash(), subject.chain.tip_hash());
    assert_eq!(reopened.tip_work(), subject.chain.tip_work());
    assert_eq!(reopened.index().len(), subject.chain.index().len());
    for height in 0..=4 {
        assert_eq!(
            reopened.hash_at_height(height),
            subject.chain.hash_at_height(height)
        );
    }
}

#[test]
fn a_store_of_another_network_is_refused() {
    let subject = Harness::new();
    let store = subject.chain.store().clone();
    let error = Chain::open(quarry_chain::ChainParams::regtest(), store).unwrap_err();
    assert!(error.to_string().contains("genesis"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Property tests over random block trees.

/// How a generated block breaks the rules, if it does; only connecting it can tell.
#[derive(Clone, Copy, Debug)]
enum Flaw {
    CoinbaseOverpays,
    BadSignature,
    SpendsMissingCoin,
}

#[derive(Clone, Debug)]
struct PlannedBlock {
    latest_parent: bool,
    parent: prop::sample::Index,
    time_delta: u32,
    spends: usize,
    flaw: Option<Flaw>,
}

fn planned_block() -> impl Strategy<Value = PlannedBlock> {
    (
        any::<bool>(),
        any::<prop::sample::Index>(),
        prop_oneof![Just(10u32), Just(8), Just(12), Just(20)],
        0usize..3,
        prop_oneof![
            20 => Just(None),
            1 => Just(Some(Flaw::CoinbaseOverpays)),
            1 => Just(Some(Flaw::BadSignature)),
            1 => Just(Some(Flaw::SpendsMissingCoin)),
        ],
    )
        .prop_map(
            |(latest_parent, parent, time_delta, spends, flaw)| PlannedBlock {
                latest_parent,
                parent,
                time_delta,
                spends,
                flaw,
            },
        )
}

/// A generated block with an independent model of the UTXO set after it.
struct Generated {
    block: Block,
    valid: bool,
    utxos: BTreeMap<OutPoint, Coin>,
}

const KEYS: u64 = 4;

/// Builds the planned tree. Each block's UTXO model is its parent's plus its own effect, kept
/// by the generator independently of the chain under test.
fn generate(plan: &[PlannedBlock]) -> Vec<Generated> {
    let mut builder = Harness::with_params(tree_params());
    let genesis = builder.genesis();
    let params = builder.chain.params().clone();
    let maturity = params.coinbase_maturity();
    let mut owners: HashMap<OutPoint, u64> = HashMap::new();
    let mut hashes = vec![genesis];
    let mut by_hash: HashMap<BlockHash, (u32, bool, BTreeMap<OutPoint, Coin>, u32)> =
        HashMap::from([(
            genesis,
            (0, true, BTreeMap::new(), params.genesis_block().header.time),
        )]);
    let mut generated = Vec::new();
    for (n, step) in plan.iter().enumerate() {
        let parent = if step.latest_parent {
            *hashes.last().unwrap()
        } else {
            *step.parent.get(&hashes)
        };
        let (parent_height, parent_valid, parent_utxos, parent_time) = by_hash[&parent].clone();
        let height = parent_height + 1;
        let mature: Vec<(OutPoint, Coin)> = parent_utxos
            .iter()
            .filter(|(_, coin)| !coin.is_coinbase || height - coin.height >= maturity)
            .filter(|(_, coin)| coin.output.value.to_sat() >= 1_000)
            .map(|(outpoint, coin)| (*outpoint, *coin))
            .collect();
        let mut txs: Vec<Transaction> = Vec::new();
        let mut fees = 0;
        for (i, (outpoint, coin)) in mature.iter().take(step.spends).enumerate() {
            let half = coin.output.value.to_sat() / 2;
            // 100 sats, or 101 when the coin's value is odd.
            fees += coin.output.value.to_sat() - (2 * half - 100);
            let to = (n as u64 + i as u64) % KEYS;
            let tx = signed_spend(
                genesis,
                &[Spendable {
                    outpoint: *outpoint,
                    output: coin.output,
                    keypair: test_keypair(owners[outpoint]),
                }],
                vec![
                    TxOut {
                        value: Amount::from_sat(half),
                        pubkey: test_key(to),
                    },
                    TxOut {
                        value: Amount::from_sat(half - 100),
                        pubkey: test_key((to + 1) % KEYS),
                    },
                ],
            );
            txs.push(tx);
        }
        let mut template = builder.template_on(parent);
        template.time = parent_time + step.time_delta;
        template.bits = builder
            .chain
            .index()
            .next_work_required(&params, &parent)
            .unwrap();
        match step.flaw {
            Some(Flaw::CoinbaseOverpays) => {
                // The coinbase may claim the spends' fees: claim one sat more.
                let value = template.coinbase_outputs[0].value.to_sat() + fees + 1;
                template.coinbase_outputs[0].value = Amount::from_sat(value);
            }
            Some(Flaw::BadSignature) if !txs.is_empty() => txs[0].inputs[0].witness[5] ^= 1,
            Some(Flaw::BadSignature | Flaw::SpendsMissingCoin) => {
                let fake = OutPoint {
                    txid: Txid::from_byte_array([n as u8 + 1; 32]),
                    vout: 7,
                };
                let output = TxOut {
                    value: Amount::from_sat(5_000),
                    pubkey: test_key(0),
                };
                txs.push(signed_spend(
                    genesis,
                    &[Spendable {
                        outpoint: fake,
                        output,
                        keypair: test_keypair(0),
                    }],
                    vec![output],
                ));
            }
            None => {}
        }
        let block = assemble_block(&template, txs).unwrap();
        let hash = block.block_hash();
        let valid = parent_valid && step.flaw.is_none();
        let mut utxos = parent_utxos;
        if valid {
            for (index, tx) in block.transactions.iter().enumerate() {
                for input in tx.inputs.iter().filter(|input| !input.prevout.is_null()) {
                    utxos.remove(&input.prevout);
                }
                let txid = tx.txid();
                for (vout, output) in tx.outputs.iter().enumerate() {
                    let outpoint = OutPoint {
                        txid,
                        vout: vout as u32,
                    };
                    let owner = (0..KEYS).find(|k| test_key(*k) == output.pubkey).unwrap();
                    owners.insert(outpoint, owner);
                    utxos.insert(
                        outpoint,
                        Coin {
                            output: *output,
                            height,
                            is_coinbase: index == 0,
                        },
                    );
                }
            }
        }
        // Index the header in the builder so children can be built on it, flawed or not (the
        // flaws are in bodies, which only connecting finds).
        let now = builder.now;
        builder.chain.process_header(block.header, now).unwrap();
        by_hash.insert(hash, (height, valid, utxos.clone(), block.header.time));
        hashes.push(hash);
        generated.push(Generated {
            block,
            valid,
            utxos,
        });
    }
    generated
}

fn tree_and_delivery_order() -> impl Strategy<Value = (Vec<PlannedBlock>, Vec<usize>)> {
    prop::collection::vec(planned_block(), 1..24).prop_flat_map(|plan| {
        let order: Vec<usize> = (0..plan.len()).collect();
        (Just(plan), Just(order).prop_shuffle())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random trees (with invalid blocks) delivered in random order end on the most-work valid
    /// tip, and after every delivery — through every reorganisation on the way — the UTXO set
    /// equals the generator's independent model for the current tip.
    #[test]
    fn random_trees_in_random_order_end_on_the_most_work_valid_tip(
        (plan, order) in tree_and_delivery_order()
    ) {
        let generated = generate(&plan);
        let mut subject = Harness::with_params(tree_params());
        let models: HashMap<BlockHash, &Generated> =
            generated.iter().map(|g| (g.block.block_hash(), g)).collect();
        for &i in &order {
            let _ = subject.submit(generated[i].block.clone());
            let tip = subject.chain.tip_hash();
            let expected = models.get(&tip).map_or_else(BTreeMap::new, |g| g.utxos.clone());
            prop_assert_eq!(subject.chain.store().utxo_set().unwrap(), expected);
        }
        let tip = subject.chain.tip_hash();
        prop_assert!(models.get(&tip).is_none_or(|g| g.valid), "tip {} is invalid", tip);
        // Every block has arrived, so the index knows every block's work.
        let work_of = |hash: &BlockHash| subject.chain.index().get(hash).unwrap().chain_work;
        let best_valid: Work = generated
            .iter()
            .filter(|g| g.valid)
            .map(|g| work_of(&g.block.block_hash()))
            .chain([work_of(&subject.genesis())])
            .max()
            .unwrap();
        prop_assert_eq!(subject.chain.tip_work(), best_valid);
        // Invalid blocks are marked so, or (children of blocks found invalid) never indexed.
        for g in generated.iter().filter(|g| !g.valid) {
            let entry = subject.chain.index().get(&g.block.block_hash());
            prop_assert!(entry.is_none_or(|entry| entry.status != BlockStatus::Valid));
        }
        prop_assert_eq!(subject.chain.store().utxo_set().unwrap(), replayed_utxo_set(&subject.chain));
    }
}

// ---------------------------------------------------------------------------------------------
// Operator decisions: invalidateblock / reconsiderblock, and the branch tips.

#[test]
fn invalidating_a_block_moves_to_the_best_remaining_branch_and_reconsidering_moves_back() {
    let (mut builder, mut subject) = builder_and_subject();
    let genesis = builder.genesis();
    let a = branch(&mut builder, genesis, 5);
    let b = branch(&mut builder, genesis, 3);
    for block in a.iter().chain(&b) {
        subject.submit(block.clone()).unwrap();
    }
    assert_eq!(subject.chain.tip_hash(), a[4].block_hash());
    let tips = subject.chain.chain_tips();
    assert_eq!(tips.len(), 2);
    assert_eq!(
        (tips[0].hash, tips[0].status),
        (a[4].block_hash(), TipStatus::Active)
    );
    assert_eq!(
        (tips[1].hash, tips[1].branch_len, tips[1].status),
        (b[2].block_hash(), 3, TipStatus::ValidHeaders),
        "never connected: bodies stored but not validated"
    );

    subject.chain.invalidate_block(a[1].block_hash()).unwrap();
    assert_eq!(subject.chain.tip_hash(), b[2].block_hash());
    let tips = subject.chain.chain_tips();
    let a_tip = tips
        .iter()
        .find(|tip| tip.hash == a[4].block_hash())
        .unwrap();
    assert_eq!((a_tip.status, a_tip.branch_len), (TipStatus::Invalid, 5));
    assert_utxo_set_matches_replay(&subject.chain);
    // New blocks on the invalidated branch are refused.
    let on_top = builder.block_on(a[4].block_hash(), Vec::new());
    assert!(subject.submit(on_top).is_err());

    subject.chain.reconsider_block(a[4].block_hash()).unwrap();
    assert!(subject.chain.tip_height() >= 5);
    assert_eq!(subject.chain.hash_at_height(5), Some(a[4].block_hash()));
    assert_utxo_set_matches_replay(&subject.chain);
}

#[test]
fn invalidating_unknown_blocks_or_genesis_is_an_error_and_changes_nothing() {
    let mut subject = Harness::new();
    subject.mine_empty(2);
    let tip = subject.chain.tip_hash();
    let genesis = subject.genesis();
    assert!(matches!(
        subject.chain.invalidate_block(genesis),
        Err(ChainError::GenesisImmutable)
    ));
    let unknown = BlockHash::from_byte_array([3; 32]);
    assert!(matches!(
        subject.chain.invalidate_block(unknown),
        Err(ChainError::UnknownBlock { .. })
    ));
    assert!(matches!(
        subject.chain.reconsider_block(unknown),
        Err(ChainError::UnknownBlock { .. })
    ));
    assert_eq!(subject.chain.tip_hash(), tip);
}

#[test]
fn blocks_on_a_chain_the_operator_invalidated_are_refused_unrecorded_and_taken_after_reconsidering()
{
    let (mut builder, mut subject) = builder_and_subject();
    let genesis = builder.genesis();
    let good = branch(&mut builder, genesis, 3);
    subject.submit(good[0].clone()).unwrap();
    subject
        .chain
        .invalidate_block(good[0].block_hash())
        .unwrap();
    // Not a broken rule: the refusals say so (peers sending them are not at fault), and
    // nothing is recorded of the children.
    for block in [&good[0], &good[1]] {
        assert!(matches!(
            subject.submit(block.clone()),
            Err(ChainError::Invalidated { .. })
        ));
        assert!(matches!(
            subject.chain.process_header(block.header, subject.now),
            Err(ChainError::Invalidated { .. })
        ));
    }
    assert!(subject.chain.index().get(&good[1].block_hash()).is_none());
    assert_eq!(subject.chain.tip_height(), 0);

    subject
        .chain
        .reconsider_block(good[0].block_hash())
        .unwrap();
    assert_eq!(subject.chain.tip_hash(), good[0].block_hash());
    for block in &good[1..] {
        assert_eq!(subject.submit(block.clone()).unwrap(), Acceptance::Accepted);
    }
    assert_eq!(subject.chain.tip_hash(), good[2].block_hash());
}
