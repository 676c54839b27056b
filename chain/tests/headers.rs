//! Headers-first: headers are checked and indexed before their bodies arrive, and the chain
//! moves onto them only once the bodies are stored and connect.

use quarry_chain::testing::mine;
use quarry_chain::testing::Harness;
use quarry_chain::{
    Acceptance, Block, BlockError, BlockStatus, ChainError, ChainReader, CompactTarget, TipStatus,
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
    // Wrong bits condemn the header: sending it again is answered from memory, and neither it
    // nor anything built on it is indexed or stored (any peer could grow the store so).
    let entries_before = subject.chain.store().index_entries().unwrap().len();
    assert!(matches!(
        subject.chain.process_header(wrong_bits, now),
        Err(ChainError::KnownInvalid { .. })
    ));
    let mut child = blocks[1].header;
    child.prev_blockhash = wrong_bits.block_hash();
    assert!(mine(&mut child));
    assert!(matches!(
        rejection(subject.chain.process_header(child, now)),
        BlockError::InvalidParent { .. }
    ));
    assert!(matches!(
        subject.chain.process_header(child, now),
        Err(ChainError::KnownInvalid { .. })
    ));
    for header in [wrong_bits, child] {
        assert!(subject.chain.index().get(&header.block_hash()).is_none());
    }
    assert_eq!(
        subject.chain.store().index_entries().unwrap().len(),
        entries_before
    );
    assert_eq!(subject.chain.chain_tips().len(), 1);
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

/// A builder of blocks on a branch of its own: its first block differs from any a fresh
/// harness mines.
fn branch_builder() -> (Harness, quarry_chain::BlockHash) {
    let mut builder = Harness::new();
    builder.mine_empty(1);
    let genesis = builder.genesis();
    (builder, genesis)
}

/// `count` blocks on `parent` built (and indexed) by `builder`.
fn extend(builder: &mut Harness, parent: &mut quarry_chain::BlockHash, count: usize) -> Vec<Block> {
    (0..count)
        .map(|_| {
            let block = builder.block_on(*parent, Vec::new());
            builder.submit(block.clone()).unwrap();
            *parent = block.block_hash();
            block
        })
        .collect()
}

/// Heights of the blocks a plan lists.
fn planned_heights(
    subject: &mut Harness,
    peers: &[quarry_chain::BlockHash],
) -> (Vec<u32>, Vec<u32>) {
    let plan = subject.chain.download_plan(peers, 1_000);
    (
        plan.blocks.iter().map(|(height, _)| *height).collect(),
        plan.reach,
    )
}

#[test]
fn downloads_walk_from_the_fork_toward_the_best_header_whatever_batch_the_headers_came_in() {
    // The subject mines 5 blocks of its own; another chain of 8 parts at genesis and arrives
    // as headers in two batches, the first of which alone has less work than the subject's tip.
    let mut subject = Harness::new();
    let ours = subject.mine_empty(5);
    let (mut other, mut parent) = branch_builder();
    let theirs = extend(&mut other, &mut parent, 8);
    let now = subject.now;
    for block in &theirs[..4] {
        subject.chain.process_header(block.header, now).unwrap();
    }
    let (blocks, _) = planned_heights(&mut subject, &[]);
    assert!(
        blocks.is_empty(),
        "less work than the tip: nothing to fetch"
    );
    for block in &theirs[4..] {
        subject.chain.process_header(block.header, now).unwrap();
    }
    assert_eq!(subject.chain.best_header().hash, theirs[7].block_hash());
    let peers = [
        theirs[7].block_hash(),
        theirs[2].block_hash(),
        ours[4].block_hash(),
        quarry_chain::BlockHash::ZERO,
    ];
    let (blocks, reach) = planned_heights(&mut subject, &peers);
    assert_eq!(
        blocks,
        (1..=8).collect::<Vec<_>>(),
        "from the fork, lowest first"
    );
    assert_eq!(reach, vec![8, 3, 0, 0]);

    // Bodies that arrive leave the plan; the first ones connect nothing yet (less work).
    for block in &theirs[..3] {
        subject.submit(block.clone()).unwrap();
    }
    let (blocks, reach) = planned_heights(&mut subject, &peers);
    assert_eq!(blocks, (4..=8).collect::<Vec<_>>());
    // Below the blocks still missing, a reach says nothing more: none of them is asked for.
    assert_eq!(reach[0], 8);
    assert!(reach[1..].iter().all(|reach| *reach < 4), "{reach:?}");
    assert_eq!(subject.chain.tip_hash(), ours[4].block_hash());

    // More headers on top extend the way; everything fetched moves the tip.
    let more = extend(&mut other, &mut parent, 2);
    for block in &more {
        subject.chain.process_header(block.header, now).unwrap();
    }
    let (blocks, _) = planned_heights(&mut subject, &[]);
    assert_eq!(blocks, (4..=10).collect::<Vec<_>>());
    for block in theirs[3..].iter().chain(&more) {
        subject.submit(block.clone()).unwrap();
    }
    assert_eq!(subject.chain.tip_hash(), more[1].block_hash());
    assert!(planned_heights(&mut subject, &[]).0.is_empty());
}

#[test]
fn an_invalid_best_header_gives_way_to_the_next_best() {
    let mut subject = Harness::new();
    let (mut other, mut parent) = branch_builder();
    let theirs = extend(&mut other, &mut parent, 4);
    let now = subject.now;
    for block in &theirs {
        subject.chain.process_header(block.header, now).unwrap();
    }
    assert_eq!(subject.chain.best_header().height, 4);
    subject
        .chain
        .invalidate_block(theirs[2].block_hash())
        .unwrap();
    assert_eq!(subject.chain.best_header().hash, theirs[1].block_hash());
    assert_eq!(planned_heights(&mut subject, &[]).0, vec![1, 2]);
    subject
        .chain
        .reconsider_block(theirs[2].block_hash())
        .unwrap();
    assert_eq!(subject.chain.best_header().hash, theirs[3].block_hash());
    assert_eq!(planned_heights(&mut subject, &[]).0, vec![1, 2, 3, 4]);
}
