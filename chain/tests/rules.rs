//! Every consensus rule, each with a block that breaks it.

use quarry_chain::encode::{decode, encode, MAX_BLOCK_BYTES};
use quarry_chain::testing::{assemble_block, mine, pay, signed_spend, test_keypair, Spendable};
use quarry_chain::testing::{Harness, MINER};
use quarry_chain::{
    Acceptance, Amount, Block, BlockError, ChainError, ChainReader, CompactTarget, DecodeError,
    OutPoint, OutputKey, Transaction, TxError, TxIn, TxOut, Txid,
};

fn rejection(result: Result<Acceptance, ChainError>) -> BlockError {
    match result {
        Err(ChainError::InvalidBlock { source, .. }) => source,
        other => panic!("expected a rule violation, got {other:?}"),
    }
}

fn tx_rejection(result: Result<Acceptance, ChainError>) -> TxError {
    match rejection(result) {
        BlockError::Transaction { source, .. } => *source,
        other => panic!("expected a transaction rule violation, got {other:?}"),
    }
}

/// Re-derives the merkle root and re-mines after a block's transactions were edited.
fn reseal(mut block: Block) -> Block {
    block.header.merkle_root = block.compute_merkle_root().0;
    block.header.nonce = 0;
    assert!(mine(&mut block.header));
    block
}

/// A harness with one mature coinbase ready to spend.
fn funded() -> (Harness, Spendable) {
    let mut h = Harness::new();
    let first = h.mine(Vec::new());
    h.mature();
    (h, Harness::coinbase_coin(&first))
}

fn unsigned(inputs: Vec<OutPoint>, outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: 1,
        inputs: inputs
            .into_iter()
            .map(|prevout| TxIn {
                prevout,
                witness: vec![0; 64],
            })
            .collect(),
        outputs,
    }
}

#[test]
fn a_valid_block_connects_and_extends_the_tip() {
    let mut h = Harness::new();
    let block = h.mine(Vec::new());
    assert_eq!(h.chain.tip_hash(), block.block_hash());
    assert_eq!(h.chain.tip_height(), 1);
    assert_eq!(h.submit(block).unwrap(), Acceptance::AlreadyKnown);
}

#[test]
fn oversized_block_is_rejected_and_oversized_bytes_never_decode() {
    let mut h = Harness::new();
    let parent = h.chain.tip_hash();
    let wide: Vec<TxOut> = (0..9_000).map(|i| pay(1, i)).collect();
    let txs = (0..3)
        .map(|i| {
            unsigned(
                vec![OutPoint {
                    txid: Txid::from_byte_array([i + 1; 32]),
                    vout: 0,
                }],
                wide.clone(),
            )
        })
        .collect();
    let block = h.block_on(parent, txs);
    assert!(block.encoded_size() > MAX_BLOCK_BYTES);
    assert!(matches!(
        rejection(h.submit(block.clone())),
        BlockError::TooLarge { .. }
    ));
    let bytes = encode(&block);
    assert!(matches!(
        decode::<Block>(&bytes),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn block_without_transactions_is_rejected() {
    let mut h = Harness::new();
    let mut block = h.block_on(h.chain.tip_hash(), Vec::new());
    block.transactions.clear();
    let block = reseal(block);
    assert_eq!(rejection(h.submit(block)), BlockError::NoTransactions);
}

#[test]
fn hash_above_its_own_target_is_rejected() {
    let mut h = Harness::new();
    let mut block = h.block_on(h.chain.tip_hash(), Vec::new());
    let target = block.header.bits.to_target().unwrap();
    while target.is_met_by(block.block_hash()) {
        block.header.nonce += 1;
    }
    assert!(matches!(
        rejection(h.submit(block)),
        BlockError::InsufficientProofOfWork { .. }
    ));
}

#[test]
fn bits_easier_than_the_limit_negative_or_overflowing_are_rejected() {
    let mut h = Harness::new();
    for bits in [0x2100_ffff, 0x0392_3456, 0xff12_3456, 0x0000_0000] {
        let mut block = h.block_on(h.chain.tip_hash(), Vec::new());
        block.header.bits = CompactTarget::from_consensus(bits);
        assert_eq!(
            rejection(h.submit(block)),
            BlockError::BadTarget {
                bits: CompactTarget::from_consensus(bits)
            }
        );
    }
}

#[test]
fn bits_other_than_the_retarget_rule_requires_are_rejected() {
    let mut h = Harness::new();
    let mut block = h.block_on(h.chain.tip_hash(), Vec::new());
    // Harder than required, with valid proof of work for it.
    block.header.bits = CompactTarget::from_consensus(0x2000_ffff);
    assert!(mine(&mut block.header));
    assert_eq!(
        rejection(h.submit(block)),
        BlockError::WrongDifficulty {
            height: 1,
            actual: CompactTarget::from_consensus(0x2000_ffff),
            expected: CompactTarget::from_consensus(0x207f_ffff),
        }
    );
}

#[test]
fn wrong_merkle_root_is_rejected_without_condemning_the_header() {
    let mut h = Harness::new();
    let good = h.block_on(h.chain.tip_hash(), Vec::new());
    let mut bad = good.clone();
    bad.transactions[0].outputs[0].value = Amount::from_sat(1);
    assert!(matches!(
        rejection(h.submit(bad)),
        BlockError::BadMerkleRoot { .. }
    ));
    assert_eq!(h.submit(good).unwrap(), Acceptance::Accepted);
}

#[test]
fn duplicated_transactions_mutating_the_merkle_tree_are_rejected_and_the_honest_copy_accepted() {
    let (mut h, coin) = funded();
    let spend = h.spend(&coin, 1, 1_000);
    let second = signed_spend(
        h.genesis(),
        &[Spendable::output_of(&spend, 0, test_keypair(1))],
        vec![pay(2, 900)],
    );
    let honest = h.block_on(h.chain.tip_hash(), vec![spend, second]);
    // [coinbase, a, b] and [coinbase, a, b, b] share a merkle root (CVE-2012-2459).
    let mut mutated = honest.clone();
    mutated.transactions.push(mutated.transactions[2].clone());
    assert_eq!(mutated.block_hash(), honest.block_hash());
    assert_eq!(rejection(h.submit(mutated)), BlockError::MutatedMerkleTree);
    assert_eq!(h.submit(honest.clone()).unwrap(), Acceptance::Accepted);
    assert_eq!(h.chain.tip_hash(), honest.block_hash());
}

#[test]
fn first_transaction_must_be_the_only_coinbase() {
    let (mut h, coin) = funded();
    let spend = h.spend(&coin, 1, 1_000);
    let block = h.block_on(h.chain.tip_hash(), vec![spend]);

    let mut swapped = block.clone();
    swapped.transactions.swap(0, 1);
    assert!(matches!(
        rejection(h.submit(reseal(swapped))),
        BlockError::FirstNotCoinbase { .. }
    ));

    let mut two = block.clone();
    let mut extra = two.transactions[0].clone();
    extra.inputs[0].witness[4] ^= 1;
    two.transactions.push(extra);
    assert!(matches!(
        rejection(h.submit(reseal(two))),
        BlockError::ExtraCoinbase { index: 2, .. }
    ));
}

#[test]
fn coinbase_must_commit_to_the_block_height() {
    let mut h = Harness::new();
    let mut block = h.block_on(h.chain.tip_hash(), Vec::new());
    block.transactions[0].inputs[0].witness[..4].copy_from_slice(&7u32.to_le_bytes());
    assert_eq!(
        rejection(h.submit(reseal(block))),
        BlockError::BadCoinbaseHeight {
            height: 1,
            found: Some(7)
        }
    );
}

#[test]
fn malformed_witnesses_and_empty_sides_are_rejected() {
    let (mut h, coin) = funded();
    let tip = h.chain.tip_hash();
    type Edit = Box<dyn Fn(&mut Block)>;
    let cases: Vec<(Edit, TxError)> = vec![
        (
            Box::new(|b: &mut Block| b.transactions[1].inputs[0].witness.pop().map(drop).unwrap()),
            TxError::BadWitnessLength { index: 0, len: 63 },
        ),
        (
            // With one input a null prevout makes a coinbase; with two it is malformed.
            Box::new(|b: &mut Block| {
                b.transactions[1].inputs.push(TxIn {
                    prevout: OutPoint::NULL,
                    witness: vec![0; 64],
                })
            }),
            TxError::NullPrevout { index: 1 },
        ),
        (
            Box::new(|b: &mut Block| b.transactions[1].outputs.clear()),
            TxError::NoOutputs,
        ),
        (
            Box::new(|b: &mut Block| b.transactions[0].inputs[0].witness.truncate(8)),
            TxError::BadCoinbaseWitness { len: 8 },
        ),
        (
            Box::new(|b: &mut Block| b.transactions[0].inputs[0].witness.resize(101, 0)),
            TxError::BadCoinbaseWitness { len: 101 },
        ),
    ];
    for (edit, expected) in cases {
        let mut block = h.block_on(tip, vec![h.spend(&coin, 1, 1_000)]);
        edit(&mut block);
        assert_eq!(tx_rejection(h.submit(reseal(block))), expected);
    }
    // A transaction with no inputs at all.
    let mut block = h.block_on(tip, vec![unsigned(Vec::new(), vec![pay(1, 1)])]);
    block.transactions[1].inputs.clear();
    assert_eq!(tx_rejection(h.submit(reseal(block))), TxError::NoInputs);
}

#[test]
fn spending_one_outpoint_twice_in_a_transaction_is_rejected() {
    let (mut h, coin) = funded();
    let tx = signed_spend(h.genesis(), &[coin, coin], vec![pay(1, 1_000)]);
    let block = h.block_on(h.chain.tip_hash(), vec![tx]);
    assert_eq!(
        tx_rejection(h.submit(block)),
        TxError::DuplicateInput {
            index: 1,
            outpoint: coin.outpoint
        }
    );
}

#[test]
fn outputs_above_the_money_supply_are_rejected() {
    let (mut h, coin) = funded();
    let too_much = Amount::MAX_MONEY.to_sat() + 1;
    let block = h.block_on(h.chain.tip_hash(), vec![h.spend(&coin, 1, too_much)]);
    assert!(matches!(
        tx_rejection(h.submit(block)),
        TxError::OutputTooLarge { index: 0, .. }
    ));
    let max = Amount::MAX_MONEY.to_sat();
    let tx = signed_spend(h.genesis(), &[coin], vec![pay(1, max), pay(2, max)]);
    let block = h.block_on(h.chain.tip_hash(), vec![tx]);
    assert_eq!(tx_rejection(h.submit(block)), TxError::OutputsOverflow);
}

#[test]
fn time_at_or_below_the_median_of_the_last_eleven_is_rejected() {
    let mut h = Harness::new();
    h.mine_empty(11);
    let mut template = h.template_on(h.chain.tip_hash());
    let median = h.chain.index().median_time_past(&h.chain.tip_hash());
    template.time = median;
    let block = assemble_block(&template, Vec::new()).unwrap();
    assert_eq!(
        rejection(h.submit(block)),
        BlockError::TimeTooOld {
            time: median,
            median
        }
    );
    template.time = median + 1;
    template.extra_nonce += 1;
    let block = assemble_block(&template, Vec::new()).unwrap();
    assert_eq!(h.submit(block).unwrap(), Acceptance::Accepted);
}

#[test]
fn time_too_far_ahead_is_rejected_now_and_accepted_once_the_clock_catches_up() {
    let mut h = Harness::new();
    let mut template = h.template_on(h.chain.tip_hash());
    template.time = (h.now + 7_201) as u32;
    let block = assemble_block(&template, Vec::new()).unwrap();
    assert!(matches!(
        rejection(h.submit(block.clone())),
        BlockError::TimeTooNew {
            max_drift: 7200,
            ..
        }
    ));
    h.now += 1;
    assert_eq!(h.submit(block).unwrap(), Acceptance::Accepted);
}

#[test]
fn spending_a_missing_or_already_spent_output_is_rejected() {
    let (mut h, coin) = funded();
    let missing = Spendable {
        outpoint: OutPoint {
            txid: Txid::from_byte_array([9; 32]),
            vout: 0,
        },
        ..coin
    };
    let block = h.block_on(h.chain.tip_hash(), vec![h.spend(&missing, 1, 1)]);
    assert_eq!(
        tx_rejection(h.submit(block)),
        TxError::MissingOrSpent {
            index: 0,
            outpoint: missing.outpoint
        }
    );
    h.mine(vec![h.spend(&coin, 1, 1_000)]);
    let again = h.block_on(h.chain.tip_hash(), vec![h.spend(&coin, 2, 1_000)]);
    assert_eq!(
        tx_rejection(h.submit(again)),
        TxError::MissingOrSpent {
            index: 0,
            outpoint: coin.outpoint
        }
    );
}

#[test]
fn bad_signatures_are_rejected() {
    let (mut h, coin) = funded();
    let tip = h.chain.tip_hash();
    let expected = TxError::BadSignature {
        index: 0,
        outpoint: coin.outpoint,
    };

    let mut flipped = h.spend(&coin, 1, 1_000);
    flipped.inputs[0].witness[10] ^= 1;
    let block = h.block_on(tip, vec![flipped]);
    assert_eq!(tx_rejection(h.submit(block)), expected);

    let wrong_key = Spendable {
        keypair: test_keypair(5),
        ..coin
    };
    let block = h.block_on(tip, vec![h.spend(&wrong_key, 1, 1_000)]);
    assert_eq!(tx_rejection(h.submit(block)), expected);

    // Signed for another network: the signature hash commits to the genesis hash.
    let replayed = signed_spend(
        quarry_chain::ChainParams::regtest().genesis_hash(),
        &[coin],
        vec![pay(1, 1_000)],
    );
    let block = h.block_on(tip, vec![replayed]);
    assert_eq!(tx_rejection(h.submit(block)), expected);

    // Changing an output after signing (to take a larger fee) breaks the signature.
    let mut edited = h.spend(&coin, 1, 1_000);
    edited.outputs[0].value = Amount::from_sat(10);
    let block = h.block_on(tip, vec![edited]);
    assert_eq!(tx_rejection(h.submit(block)), expected);

    // The valid spend still goes through on the same tip.
    let block = h.block_on(tip, vec![h.spend(&coin, 1, 1_000)]);
    assert_eq!(h.submit(block).unwrap(), Acceptance::Accepted);
}

#[test]
fn outputs_exceeding_inputs_are_rejected() {
    let (mut h, coin) = funded();
    let value = coin.output.value.to_sat() + 1;
    let block = h.block_on(h.chain.tip_hash(), vec![h.spend(&coin, 1, value)]);
    assert!(matches!(
        tx_rejection(h.submit(block)),
        TxError::OutputsExceedInputs { .. }
    ));
}

#[test]
fn coinbase_may_claim_subsidy_plus_fees_and_not_one_sat_more() {
    let (mut h, coin) = funded();
    let fee = 2_500;
    let spend = h.spend(&coin, 1, coin.output.value.to_sat() - fee);
    let mut template = h.template_on(h.chain.tip_hash());
    let subsidy = template.coinbase_outputs[0].value;
    template.coinbase_outputs[0].value = Amount::from_sat(subsidy.to_sat() + fee + 1);
    let greedy = assemble_block(&template, vec![spend.clone()]).unwrap();
    assert_eq!(
        rejection(h.submit(greedy)),
        BlockError::CoinbaseTooLarge {
            paid: Amount::from_sat(subsidy.to_sat() + fee + 1),
            subsidy,
            fees: Amount::from_sat(fee),
        }
    );
    template.coinbase_outputs[0].value = Amount::from_sat(subsidy.to_sat() + fee);
    template.extra_nonce += 1;
    let exact = assemble_block(&template, vec![spend]).unwrap();
    assert_eq!(h.submit(exact).unwrap(), Acceptance::Accepted);
}

#[test]
fn coinbase_outputs_mature_after_the_parameterised_depth() {
    let mut h = Harness::new();
    let first = h.mine(Vec::new());
    let coin = Harness::coinbase_coin(&first);
    // Maturity 3: spendable at height 1 + 3 = 4, not at height 3.
    h.mine_empty(1);
    let early = h.block_on(h.chain.tip_hash(), vec![h.spend(&coin, 1, 1_000)]);
    assert_eq!(
        tx_rejection(h.submit(early)),
        TxError::ImmatureCoinbase {
            index: 0,
            outpoint: coin.outpoint,
            coin_height: 1,
            spend_height: 3,
            maturity: 3
        }
    );
    h.mine_empty(1);
    h.mine(vec![h.spend(&coin, 1, 1_000)]);
    assert_eq!(h.chain.tip_height(), 4);
}

#[test]
fn subsidy_halves_on_schedule() {
    let mut h = Harness::new();
    let params = h.chain.params().clone();
    assert_eq!(params.block_subsidy(19), Amount::from_sat(50 * 100_000_000));
    assert_eq!(params.block_subsidy(20), Amount::from_sat(25 * 100_000_000));
    assert_eq!(params.block_subsidy(40), Amount::from_sat(1_250_000_000));
    assert_eq!(params.block_subsidy(20 * 64), Amount::ZERO);
    h.mine_empty(19);
    let mut template = h.template_on(h.chain.tip_hash());
    assert_eq!(template.height, 20);
    template.coinbase_outputs[0].value = params.block_subsidy(19);
    let stale_subsidy = assemble_block(&template, Vec::new()).unwrap();
    assert!(matches!(
        rejection(h.submit(stale_subsidy)),
        BlockError::CoinbaseTooLarge { .. }
    ));
    h.mine(Vec::new());
    assert_eq!(h.chain.tip_height(), 20);
}

#[test]
fn in_block_chains_of_spends_are_valid() {
    let (mut h, coin) = funded();
    let parent = h.spend(&coin, 1, 10_000);
    let child = signed_spend(
        h.genesis(),
        &[Spendable::output_of(&parent, 0, test_keypair(1))],
        vec![pay(2, 9_000)],
    );
    let block = h.mine(vec![parent, child.clone()]);
    assert_eq!(h.chain.tip_hash(), block.block_hash());
    let utxos = h.chain.store().utxo_set().unwrap();
    assert!(utxos.contains_key(&OutPoint {
        txid: child.txid(),
        vout: 0
    }));
    assert!(!utxos.contains_key(&coin.outpoint));
}

#[test]
fn unspendable_keys_are_allowed_in_outputs_but_never_spent() {
    let (mut h, coin) = funded();
    let burn = TxOut {
        value: Amount::from_sat(1_000),
        pubkey: OutputKey::from_byte_array([0; 32]),
    };
    let tx = signed_spend(h.genesis(), &[coin], vec![burn]);
    h.mine(vec![tx.clone()]);
    let attempt = signed_spend(
        h.genesis(),
        &[Spendable {
            outpoint: OutPoint {
                txid: tx.txid(),
                vout: 0,
            },
            output: burn,
            keypair: test_keypair(MINER),
        }],
        vec![pay(1, 500)],
    );
    let block = h.block_on(h.chain.tip_hash(), vec![attempt]);
    assert!(matches!(
        tx_rejection(h.submit(block)),
        TxError::BadSignature { .. }
    ));
}

#[test]
fn the_first_block_of_a_retarget_period_may_not_be_dated_over_two_hours_before_its_parent() {
    let mut spec = quarry_chain::testing::unit_params().spec().clone();
    spec.retarget = quarry_chain::RetargetRule::Epoch { interval: 10 };
    let mut h = Harness::with_params(quarry_chain::ChainParams::new(spec).unwrap());
    h.mine_empty(8);
    // The period's last block is dated far ahead, as a time-warp attacker would.
    let mut template = h.template_on(h.chain.tip_hash());
    template.time += 20_000;
    let last = assemble_block(&template, Vec::new()).unwrap();
    h.submit(last.clone()).unwrap();
    let parent_time = last.header.time;

    let mut template = h.template_on(h.chain.tip_hash());
    assert_eq!(template.height, 10);
    template.time = parent_time - 7_201;
    let warped = assemble_block(&template, Vec::new()).unwrap();
    assert_eq!(
        rejection(h.submit(warped)),
        BlockError::TimeWarp {
            time: parent_time - 7_201,
            parent: parent_time
        }
    );
    template.time = parent_time - 7_200;
    template.extra_nonce += 1;
    let opening = assemble_block(&template, Vec::new()).unwrap();
    assert_eq!(h.submit(opening.clone()).unwrap(), Acceptance::Accepted);

    // Inside a period only the median-time rule applies.
    let mut template = h.template_on(h.chain.tip_hash());
    template.time = opening.header.time - 7_201;
    let inside = assemble_block(&template, Vec::new()).unwrap();
    assert_eq!(h.submit(inside).unwrap(), Acceptance::Accepted);
}
