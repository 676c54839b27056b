//! Attacks by a hostile peer that speaks the real protocol, against real nodes on loopback:
//! what the victim stores, relays and keeps connected afterwards.

mod common;

use std::time::Duration;

use common::*;
use quarry_chain::{BlockHash, BlockHeader, ChainReader};
use quarry_network::protocol::{SyncRequest, SyncResponse, TopicKind, MAX_HEADERS};
use quarry_network::{Multiaddr, NetworkConfig, PeerId};

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

/// Inbound connections of `node` from IPv4 (the host all the rogues below share).
async fn inbound_from_ipv4(node: &TestNode) -> usize {
    node.client()
        .peers()
        .await
        .unwrap()
        .iter()
        .filter(|peer| peer.inbound)
        .filter(|peer| {
            peer.address
                .iter()
                .any(|part| matches!(part, quarry_network::Protocol::Ip4(_)))
        })
        .count()
}

/// Peer identities cost nothing to make; addresses do. Here one host (127.0.0.1) plays many
/// identities and another (::1) the honest newcomers: the host holds no more than its share of
/// inbound slots, newcomers evict it when slots run out, its score follows it across
/// identities, and its ban shuts out the address, not just the identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_identities_from_one_address_hold_few_slots_and_their_ban_covers_the_address() {
    let loopbacks = |config: NetworkConfig| NetworkConfig {
        listen: vec![
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            "/ip6/::1/tcp/0".parse().unwrap(),
        ],
        ..config
    };
    let victim = start_node_with(
        "victim",
        params(),
        loopbacks(NetworkConfig {
            max_inbound: 3,
            max_inbound_per_host: 2,
            ban_loopback: true,
            // Two malformed messages, not one, earn a ban: the first shows the score staying.
            ban_threshold: 150,
            ..test_network_config()
        }),
    )
    .await;
    let addresses = eventually("both listen addresses", CONVERGE, || async {
        let addresses = victim.client().listen_addresses().await.unwrap();
        (addresses.len() == 2).then_some(addresses)
    })
    .await;
    let is_ipv4 = |address: &Multiaddr| {
        address
            .iter()
            .any(|part| matches!(part, quarry_network::Protocol::Ip4(_)))
    };
    let ipv4 = addresses.iter().find(|a| is_ipv4(a)).unwrap().clone();
    let ipv6 = addresses.iter().find(|a| !is_ipv4(a)).unwrap().clone();
    let peer_on = |config: NetworkConfig| bare_peer(&victim, config, |_| None);
    let v4_config = || test_network_config();
    let v6_config = || NetworkConfig {
        listen: vec!["/ip6/::1/tcp/0".parse().unwrap()],
        ..test_network_config()
    };

    // Five identities from one address get two slots.
    let mut rogues = Vec::new();
    for _ in 0..5 {
        let rogue = peer_on(v4_config());
        let _ = rogue.dial(ipv4.clone()).await;
        rogues.push(rogue);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(inbound_from_ipv4(&victim).await, 2);

    // The slots fill up; a newcomer from elsewhere evicts one of the crowded host's.
    let honest = [peer_on(v6_config()), peer_on(v6_config())];
    for newcomer in &honest {
        newcomer.dial(ipv6.clone()).await.unwrap();
        let id = newcomer.local_peer_id();
        eventually("the newcomer to be admitted", CONVERGE, || async {
            is_connected(&victim, id).await.then_some(())
        })
        .await;
    }
    assert_eq!(inbound_from_ipv4(&victim).await, 1, "one rogue evicted");

    // A malformed message: 100 points, below this victim's threshold. The rogue leaves and the
    // score stays with its address; a fresh identity from it reaches the threshold.
    let connected_rogue = {
        let peers = victim.client().peers().await.unwrap();
        let ids: Vec<PeerId> = peers.iter().map(|peer| peer.peer).collect();
        rogues
            .iter()
            .find(|rogue| ids.contains(&rogue.local_peer_id()))
            .unwrap()
            .clone()
    };
    let junk = vec![0xff; 64];
    publish_when_subscribed(&connected_rogue, TopicKind::Transactions, junk).await;
    let scored = connected_rogue.local_peer_id();
    eventually("the offence to be scored", CONVERGE, || async {
        let peers = victim.client().peers().await.unwrap();
        peers
            .iter()
            .any(|peer| peer.peer == scored && peer.score == 100)
            .then_some(())
    })
    .await;
    assert!(victim.client().bans().await.unwrap().is_empty());
    for rogue in &rogues {
        rogue.shutdown();
    }
    eventually("the rogues to be gone", CONVERGE, || async {
        (inbound_from_ipv4(&victim).await == 0).then_some(())
    })
    .await;
    let fresh = peer_on(v4_config());
    fresh.dial(ipv4.clone()).await.unwrap();
    // Other bytes: gossip is content-addressed, and the same message again is a duplicate.
    let other_junk = vec![0xfe; 64];
    publish_when_subscribed(&fresh, TopicKind::Transactions, other_junk).await;
    let reason = wait_for_ban(&victim, fresh.local_peer_id()).await;
    assert_eq!(
        reason,
        quarry_network::BanReason::Misbehaviour(quarry_network::Misbehaviour::Malformed)
    );
    let ban = victim.client().bans().await.unwrap()[0];
    assert_eq!(ban.address, Some("127.0.0.1".parse().unwrap()));

    // The address is shut out whatever identity it shows; the other host stays connected.
    let another = peer_on(v4_config());
    let _ = another.dial(ipv4.clone()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!is_connected(&victim, another.local_peer_id()).await);
    assert_eq!(inbound_from_ipv4(&victim).await, 0);
    for newcomer in &honest {
        assert!(is_connected(&victim, newcomer.local_peer_id()).await);
        newcomer.shutdown();
    }
    fresh.shutdown();
    another.shutdown();
    shutdown([victim]).await;
}

/// A node configured with a minimum chain work indexes no header of a chain lighter than that
/// (however valid: a fresh node cannot tell it from a cheap fake), and syncs the chain as soon
/// as it has the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_of_a_chain_below_the_minimum_chain_work_are_not_indexed() {
    let source = start_node("source").await;
    source.generate(2_000, payout()).await.unwrap();
    // The work of one more block than the source has.
    let tip = source.tip();
    let minimum = tip.chain_work.saturating_add(tip.header.work());
    let mut spec = params().spec().clone();
    spec.minimum_chain_work = Some(minimum.to_string());
    let demanding = quarry_chain::ChainParams::new(spec).unwrap();
    assert_eq!(demanding.genesis_hash(), params().genesis_hash());
    let victim = start_node_with("victim", demanding, test_network_config()).await;
    connect(&victim, &source).await;
    // The first headers exchange happens on connecting; give it time to come and go.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let indexed = victim.reader().store().index_entries().unwrap().len();
    assert_eq!(indexed, 1, "only genesis is indexed");
    assert_eq!(victim.tip().height, 0);

    let more = source.generate(10, payout()).await.unwrap();
    let nodes = [source, victim];
    wait_for_tip(&nodes, more[9], CONVERGE).await;
    shutdown(nodes).await;
}

/// Sync requests over their limits and gossip over its topic's size cost the sender the full
/// score: each of these rogues is banned for its first offence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_and_gossip_get_the_sender_banned() {
    let victim = start_node("victim").await;
    let genesis = victim.params().genesis_hash();

    // More block hashes than a request may carry (a frame within the byte limit).
    let (rogue, id) = rogue_peer(&victim).await;
    let too_many = SyncRequest::Blocks(vec![
        genesis;
        quarry_network::protocol::MAX_BLOCKS_PER_REQUEST + 1
    ]);
    let _ = rogue
        .request(victim.client().local_peer_id(), too_many)
        .await;
    assert_eq!(
        wait_for_ban(&victim, id).await,
        quarry_network::BanReason::Misbehaviour(quarry_network::Misbehaviour::Malformed)
    );

    // A frame over the request byte limit.
    let (rogue, id) = rogue_peer(&victim).await;
    let huge = SyncRequest::Headers {
        locator: vec![genesis; quarry_network::protocol::MAX_REQUEST_BYTES / 32 + 1],
    };
    let _ = rogue.request(victim.client().local_peer_id(), huge).await;
    assert_eq!(
        wait_for_ban(&victim, id).await,
        quarry_network::BanReason::Misbehaviour(quarry_network::Misbehaviour::Malformed)
    );

    // A transaction message over the transaction topic's size.
    let (rogue, id) = rogue_peer(&victim).await;
    let bloated = vec![0u8; quarry_network::protocol::MAX_TX_GOSSIP_BYTES + 1];
    publish_when_subscribed(&rogue, TopicKind::Transactions, bloated).await;
    assert_eq!(
        wait_for_ban(&victim, id).await,
        quarry_network::BanReason::Misbehaviour(quarry_network::Misbehaviour::Oversized)
    );
    rogue.shutdown();
    shutdown([victim]).await;
}

/// A peer that shows the best chain's headers but withholds the blocks cannot hold up sync: it
/// is found stalling the download (the block the chain needs next stays with it while another
/// peer could serve it) and its share is fetched elsewhere, long before its requests would
/// time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_withholding_blocks_cannot_hold_up_sync() {
    let source = start_node("source").await;
    let mined = source.generate(3_000, payout()).await.unwrap();
    let victim = start_node_with(
        "victim",
        params(),
        NetworkConfig {
            request_timeout_seconds: 600,
            ..test_network_config()
        },
    )
    .await;
    // The rogue mirrors the source's headers and leaves every block request unanswered (for
    // as long as libp2p lets it hold a request open).
    let mirror = source.reader().clone();
    let patient = NetworkConfig {
        request_timeout_seconds: 600,
        ..test_network_config()
    };
    let rogue = bare_peer(&victim, patient, move |request| match request {
        SyncRequest::Headers { locator } => Some(SyncResponse::Headers(
            quarry_network::serve::headers_after(mirror.store(), locator).unwrap(),
        )),
        SyncRequest::Blocks(_) => None,
    });
    rogue.dial(listen_address(&victim).await).await.unwrap();
    let rogue_id = rogue.local_peer_id();
    eventually(
        "the victim to ask the rogue for blocks",
        CONVERGE,
        || async {
            let in_flight = victim.sync_status().borrow().blocks_in_flight;
            (in_flight > 0).then_some(())
        },
    )
    .await;

    connect(&victim, &source).await;
    let nodes = [source, victim];
    wait_for_tip(&nodes, mined[2_999], CONVERGE).await;
    let victim = &nodes[1];
    assert!(
        !is_connected(victim, rogue_id).await,
        "the staller is dropped"
    );
    assert!(
        victim.client().bans().await.unwrap().is_empty(),
        "slowness is not misbehaviour: nobody is banned"
    );
    rogue.shutdown();
    shutdown(nodes).await;
}
