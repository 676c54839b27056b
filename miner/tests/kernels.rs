//! Every kernel reports exactly the nonces plain double SHA-256 finds, and the miner's blocks
//! are accepted by the chain.

use std::ops::{ControlFlow, Range};

use quarry_chain::testing::{pay, signed_spend, test_key, Harness};
use quarry_chain::{Acceptance, BlockHash, BlockHeader, CompactTarget, MerkleRoot};
use quarry_mempool::{Mempool, TipContext};
use quarry_miner::{HeaderWork, Kernel, Miner, MinerConfig, SearchOutcome, NONCE_SPACE};

fn header(bits: u32) -> BlockHeader {
    BlockHeader {
        version: 1,
        prev_blockhash: BlockHash::from_byte_array([7; 32]),
        merkle_root: MerkleRoot::from_byte_array([9; 32]),
        time: 1_800_000_000,
        bits: CompactTarget::from_consensus(bits),
        nonce: 0,
    }
}

/// Nonces of `range` whose header hash meets the target, by hashing each whole header.
fn reference_hits(header: &BlockHeader, range: Range<u64>) -> Vec<u32> {
    let target = header.bits.to_target().unwrap();
    range
        .map(|nonce| nonce as u32)
        .filter(|nonce| {
            let mut candidate = *header;
            candidate.nonce = *nonce;
            target.is_met_by(candidate.block_hash())
        })
        .collect()
}

fn kernel_hits(kernel: Kernel, header: &BlockHeader, range: Range<u64>) -> Vec<u32> {
    let work = HeaderWork::new(header).unwrap();
    let mut hits = Vec::new();
    kernel.for_each_hit(&work, range, |nonce| {
        hits.push(nonce);
        ControlFlow::Continue(())
    });
    hits
}

#[test]
fn every_kernel_finds_exactly_the_hits_of_plain_double_sha256() {
    let cases = [
        // About one hash in two meets this target: checks every lane of every batch.
        (0x207f_ffff, 0..1_003),
        // One in 65,536: checks the quick top-word filter, over ranges not a multiple of 4.
        (0x1f00_ffff, 0..200_001),
        // The end of the nonce space, and a range running past it.
        (0x207f_ffff, NONCE_SPACE - 10..NONCE_SPACE + 5),
    ];
    let kernels = Kernel::available();
    assert!(kernels.contains(&Kernel::Compress256));
    for (bits, range) in cases {
        let header = header(bits);
        let expected = reference_hits(&header, range.start..range.end.min(NONCE_SPACE));
        assert!(!expected.is_empty());
        for kernel in &kernels {
            assert_eq!(
                kernel_hits(*kernel, &header, range.clone()),
                expected,
                "{} with bits {bits:#x}",
                kernel.name()
            );
        }
    }
}

#[test]
fn the_search_finds_a_valid_nonce_stops_when_stale_and_reports_exhaustion() {
    let miner = Miner::new(MinerConfig::default()).unwrap();
    let header = header(0x1f00_ffff);
    let SearchOutcome::Found(nonce) = miner.search(&header, 0..NONCE_SPACE, &|| false) else {
        panic!("no nonce found");
    };
    let mut solved = header;
    solved.nonce = nonce;
    assert!(header
        .bits
        .to_target()
        .unwrap()
        .is_met_by(solved.block_hash()));
    assert_eq!(
        miner.search(&header, 0..NONCE_SPACE, &|| true),
        SearchOutcome::Stale
    );
    // A target no hash meets: the range is searched to the end.
    let impossible = self::header(0x0300_0001);
    assert_eq!(
        miner.search(&impossible, 0..100_000, &|| false),
        SearchOutcome::Exhausted
    );
    assert!(miner.hash_rate().total >= 100_000);
}

#[test]
fn headers_with_undecodable_bits_are_refused_without_crashing() {
    let negative = header(0x0480_0000);
    assert!(HeaderWork::new(&negative).is_none());
    let miner = Miner::new(MinerConfig {
        threads: 1,
        ..MinerConfig::default()
    })
    .unwrap();
    assert_eq!(
        miner.search(&negative, 0..10, &|| false),
        SearchOutcome::Exhausted
    );
}

#[test]
fn mined_blocks_from_a_mempool_template_are_accepted_by_the_chain() {
    let mut harness = Harness::new();
    let funding = harness.mine(Vec::new());
    harness.mature();
    let genesis = harness.genesis();
    let coin = Harness::coinbase_coin(&funding);
    let tx = signed_spend(
        genesis,
        &[coin],
        vec![pay(1, coin.output.value.to_sat() - 5_000)],
    );
    let mut pool = Mempool::default();
    let tip = TipContext {
        height: harness.chain.tip_height(),
        genesis,
        coinbase_maturity: harness.chain.params().coinbase_maturity(),
    };
    pool.accept(tx.clone(), harness.chain.store(), &tip, harness.now)
        .unwrap();

    let miner = Miner::new(MinerConfig::default()).unwrap();
    let chain = &harness.chain;
    let next = chain.next_block();
    let template = pool.block_template(
        &next,
        chain.params().block_subsidy(next.height),
        harness.now,
    );
    let block = miner.mine(&template, test_key(3), &|| false).unwrap();
    assert_eq!(block.transactions[1], tx);
    assert_eq!(
        block.transactions[0].outputs[0].value.to_sat(),
        chain.params().block_subsidy(next.height).to_sat() + 5_000
    );
    assert_eq!(harness.submit(block.clone()).unwrap(), Acceptance::Accepted);
    assert_eq!(harness.chain.tip_hash(), block.block_hash());

    // generate: three more blocks, each on the previous one.
    let harness = std::cell::RefCell::new(harness);
    let hashes = miner
        .generate(
            3,
            test_key(3),
            u64::MAX,
            &|| false,
            || {
                let harness = harness.borrow();
                let next = harness.chain.next_block();
                let subsidy = harness.chain.params().block_subsidy(next.height);
                Mempool::default().block_template(&next, subsidy, harness.now)
            },
            |block| harness.borrow_mut().submit(block).map(|_| ()),
        )
        .unwrap();
    assert_eq!(hashes.len(), 3);
    assert_eq!(harness.borrow().chain.tip_hash(), hashes[2]);
}
