//! Attacks by a hostile peer that speaks the real protocol, against real nodes on loopback:
//! what the victim stores, relays and keeps connected afterwards.

mod common;

use std::time::Duration;

use common::*;
use quarry_chain::{BlockHash, BlockHeader, ChainReader};
use quarry_network::protocol::{SyncRequest, SyncResponse, TopicKind, MAX_HEADERS};

const CONVERGE: Duration = Duration::from_secs(60);

fn indexed(node: &TestNode, hash: &BlockHash) -> bool {
    node.reader().store().index_entry(hash).unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_work_and_far_ahead_blocks_from_a_peer_are_neither_stored_nor_relayed() {
    let nodes = [start_node("victim").await, start_node("neighbour").await];
    let [victim, neighbour] = &nodes;
    connect(neighbour, victim).await;
    let mined = victim.generate(5, payout()).await.unwrap();
    wait_for_tip(&nodes, mined[4], CONVERGE).await;

    // A child of genesis: valid, but its chain has far less work than the tip's.
    let low_work = block_on(victim, victim.params().genesis_hash(), 1, Vec::new(), 0);
    // A block 300 ahead of the tip on a chain whose headers the victim already knows (the
    // same chain, mined apart by a node the victim never met).
    let apart = start_node("apart").await;
    let long = apart.generate(305, payout()).await.unwrap();
    for hash in &long[..299] {
        let header = apart
            .reader()
            .store()
            .index_entry(hash)
            .unwrap()
            .unwrap()
            .header;
        victim.chain().submit_header(header).unwrap();
    }
    let far_ahead = apart.reader().store().block(&long[299]).unwrap().unwrap();

    let (rogue, rogue_id) = rogue_peer(victim).await;
    for block in [&low_work, &far_ahead] {
        publish_when_subscribed(
            &rogue,
            TopicKind::Blocks,
            quarry_chain::encode::encode(block),
        )
        .await;
    }
    // Then a good block from the same peer: once the neighbour has it, the victim has
    // processed the two before it.
    let good = block_on_tip(victim, Vec::new(), 0);
    publish_when_subscribed(
        &rogue,
        TopicKind::Blocks,
        quarry_chain::encode::encode(&good),
    )
    .await;
    wait_for_tip(&nodes, good.block_hash(), CONVERGE).await;

    for node in &nodes {
        assert!(
            !indexed(node, &low_work.block_hash()),
            "{} stored a low-work block",
            node.name
        );
        assert!(
            !indexed(node, &far_ahead.block_hash()),
            "{} stored a block 300 ahead of its tip",
            node.name
        );
    }
    // A stale block is no offence: an honest peer may send one.
    assert!(is_connected(victim, rogue_id).await);
    assert!(victim.client().bans().await.unwrap().is_empty());
    rogue.shutdown();
    shutdown(nodes.into_iter().chain([apart])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_of_a_low_work_branch_are_neither_indexed_nor_kept() {
    let nodes = [start_node("victim").await, start_node("honest").await];
    let [victim, honest] = &nodes;
    honest.generate(2_200, payout()).await.unwrap();
    connect(victim, honest).await;
    let tip = honest.tip().hash;
    wait_for_tip(&nodes, tip, CONVERGE).await;
    let tips_before = victim.chain().chain_tips().unwrap().len();

    // 2,000 valid headers off genesis at the easiest target: cheap, and 200 blocks' work short
    // of the victim's tip, more than the 144 a branch may fall behind and still be indexed.
    let mut builder = quarry_chain::testing::Harness::new();
    let spam: Vec<BlockHeader> = builder
        .mine_empty(MAX_HEADERS)
        .iter()
        .map(|block| block.header)
        .collect();
    let answer = spam.clone();
    let (rogue, rogue_id) = rogue_responder(victim, move |request| match request {
        SyncRequest::Headers { .. } => Some(SyncResponse::Headers(answer.clone())),
        SyncRequest::Blocks(_) => None,
    })
    .await;
    // The victim asks a new peer for headers at once; then the rogue announces a block of its
    // branch, which makes the victim ask again.
    let body = builder.mine_empty(1).remove(0);
    publish_when_subscribed(
        &rogue,
        TopicKind::Blocks,
        quarry_chain::encode::encode(&body),
    )
    .await;
    // The honest node still gets through: a new block reaches the victim.
    let next = honest.generate(1, payout()).await.unwrap();
    wait_for_tip(&nodes, next[0], CONVERGE).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    for header in spam.iter().step_by(97).chain(spam.last()) {
        assert!(
            !indexed(victim, &header.block_hash()),
            "a low-work header was indexed"
        );
    }
    assert!(!indexed(victim, &body.block_hash()));
    assert_eq!(victim.chain().chain_tips().unwrap().len(), tips_before);
    assert!(is_connected(victim, honest.client().local_peer_id()).await);
    assert!(victim
        .client()
        .bans()
        .await
        .unwrap()
        .iter()
        .all(|ban| ban.peer != honest.client().local_peer_id()));
    let _ = rogue_id;
    rogue.shutdown();
    shutdown(nodes).await;
}
