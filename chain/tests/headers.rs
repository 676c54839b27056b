//! Headers-first: headers are checked and indexed before their bodies arrive, and the chain
//! moves onto them only once the bodies are stored and connect.

use quarry_chain::testing::mine;
use quarry_chain::testing::Harness;
use quarry_chain::{
    Acceptance, Block, BlockError, BlockStatus, ChainError, CompactTarget, TipStatus,
};

fn rejection(result: Result<Acceptance, ChainError>) -> BlockError {
    match result {
        Err(ChainError::InvalidBlock { source, .. }) => source,
        other => panic!("expected a rejected header, got {other:?}"),
    }
}

/// Three blocks built elsewhere, not yet known to the subject.
fn three_blocks() -> (Harness, Vec<Block>) {
    let mut builder = Harness::new();
    let blocks = builder.mine_empty(3);
    (Harness::new(), blocks)
}

#[test]
fn headers_are_indexed_without_moving_the_tip_until_the_bodies_connect() {
    let (mut subject, blocks) = three_blocks();
    let now = subject.now;
    for block in &blocks {
        assert_eq!(
            subject.chain.process_header(block.header, now).unwrap(),
            Acceptance::Accepted
        );
    }
    assert_eq!(
        subject.chain.process_header(blocks[0].header, now).unwrap(),
        Acceptance::AlreadyKnown
    );
    assert_eq!(subject.chain.tip_height(), 0);
    let last = blocks[2].block_hash();
    assert_eq!(
        subject.chain.index().get(&last).unwrap().status,
        BlockStatus::HeaderOnly
    );
    let tip = subject.chain.chain_tips()[0];
    assert_eq!((tip.hash, tip.status), (last, TipStatus::HeadersOnly));

    // Bodies out of order: nothing connects until the first one arrives.
    subject.submit(blocks[2].clone()).unwrap();
    subject.submit(blocks[1].clone()).unwrap();
    assert_eq!(subject.chain.tip_height(), 0);
    subject.submit(blocks[0].clone()).unwrap();
    assert_eq!(subject.chain.tip_hash(), last);
    assert_eq!(
        subject.chain.index().get(&last).unwrap().status,
        BlockStatus::Valid
    );
}

#[test]
fn a_header_with_insufficient_work_or_wrong_bits_is_refused() {
    let (mut subject, blocks) = three_blocks();
    let now = subject.now;

    let mut weak = blocks[0].header;
    while weak.bits.to_target().unwrap().is_met_by(weak.block_hash()) {
        weak.nonce += 1;
    }
    assert!(matches!(
        rejection(subject.chain.process_header(weak, now)),
        BlockError::InsufficientProofOfWork { .. }
    ));

    let mut wrong_bits = blocks[0].header;
    wrong_bits.bits = CompactTarget::from_consensus(0x2000_ffff);
    assert!(mine(&mut wrong_bits));
    assert!(matches!(
        rejection(subject.chain.process_header(wrong_bits, now)),
        BlockError::WrongDifficulty { .. }
    ));
    // Wrong bits condemn the header: sending it again is answered from the index.
    assert!(matches!(
        subject.chain.process_header(wrong_bits, now),
        Err(ChainError::KnownInvalid { .. })
    ));
    // A child of the condemned header is condemned too.
    let mut child = blocks[1].header;
    child.prev_blockhash = wrong_bits.block_hash();
    assert!(mine(&mut child));
    assert!(matches!(
        rejection(subject.chain.process_header(child, now)),
        BlockError::InvalidParent { .. }
    ));
    assert_eq!(
        subject
            .chain
            .index()
            .get(&child.block_hash())
            .unwrap()
            .status,
        BlockStatus::InvalidAncestor
    );
}

#[test]
fn a_header_of_an_unknown_parent_or_from_the_future_is_refused_without_condemning_it() {
    let (mut subject, blocks) = three_blocks();
    let now = subject.now;
    assert!(matches!(
        rejection(subject.chain.process_header(blocks[1].header, now)),
        BlockError::UnknownParent { .. }
    ));
    let early_clock = u64::from(blocks[0].header.time) - 7201;
    assert!(matches!(
        rejection(subject.chain.process_header(blocks[0].header, early_clock)),
        BlockError::TimeTooNew { .. }
    ));
    // Neither was recorded: both are accepted once their time comes.
    assert_eq!(
        subject.chain.process_header(blocks[0].header, now).unwrap(),
        Acceptance::Accepted
    );
    assert_eq!(
        subject.chain.process_header(blocks[1].header, now).unwrap(),
        Acceptance::Accepted
    );
}
