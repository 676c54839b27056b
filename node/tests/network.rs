//! Multi-node networking on loopback: convergence along a line, a late joiner syncing 2,000
//! blocks, a partition that heals onto the most-work chain, and misbehaving peers banned.

mod common;

use std::time::{Duration, Instant};

use common::*;
use quarry_chain::testing::{pay, signed_spend, test_keypair, Spendable, MINER};
use quarry_chain::{Block, BlockHash, ChainReader, NetworkSpec, OutPoint, Transaction};
use quarry_network::protocol::TopicKind;
use quarry_network::{BanReason, Misbehaviour};

const CONVERGE: Duration = Duration::from_secs(60);

fn stored_block(node: &TestNode, hash: &BlockHash) -> Block {
    node.reader()
        .store()
        .block(hash)
        .unwrap()
        .expect("block stored")
}

/// A signed transaction spending the coinbase of `block` (paid to the test miner key).
fn spend_coinbase(node: &TestNode, block: &Block, fee: u64) -> Transaction {
    let coinbase = &block.transactions[0];
    let coin = Spendable {
        outpoint: OutPoint {
            txid: coinbase.txid(),
            vout: 0,
        },
        output: coinbase.outputs[0],
        keypair: test_keypair(MINER),
    };
    let value = coin.output.value.to_sat() - fee;
    signed_spend(node.params().genesis_hash(), &[coin], vec![pay(7, value)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_in_a_line_converge_after_each_mines() {
    let mut nodes = Vec::new();
    for index in 0..5 {
        nodes.push(start_node(&format!("node{index}")).await);
    }
    for pair in nodes.windows(2) {
        connect(&pair[1], &pair[0]).await;
    }
    for (index, miner) in nodes.iter().enumerate() {
        let mined = miner.generate(2, payout()).await.unwrap();
        let tip = *mined.last().unwrap();
        wait_for_tip(&nodes, tip, CONVERGE).await;
        assert_eq!(miner.tip().height, 2 * (index as u32 + 1));
    }
    for node in &nodes {
        assert!(
            node.client().bans().await.unwrap().is_empty(),
            "{} banned an honest peer",
            node.name
        );
    }
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_syncs_two_thousand_blocks_and_reports_progress() {
    let source = start_node("source").await;
    let mined = source.generate(2_000, payout()).await.unwrap();
    let tip = *mined.last().unwrap();

    let joiner = start_node("joiner").await;
    let mut status = joiner.sync_status();
    let progress = tokio::spawn(async move {
        let mut seen = Vec::new();
        while status.changed().await.is_ok() {
            let now = *status.borrow_and_update();
            seen.push(now);
            if now.tip_height == 2_000 && now.is_synced() {
                break;
            }
        }
        seen
    });
    let started = Instant::now();
    connect(&joiner, &source).await;
    let seen = tokio::time::timeout(CONVERGE, progress)
        .await
        .expect("sync finished")
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(joiner.tip().hash, tip);
    assert_eq!(joiner.tip().height, 2_000);
    // Progress was reported along the way: headers first, then bodies.
    assert!(
        seen.iter()
            .any(|status| status.best_header_height == 2_000 && status.tip_height < 1_000),
        "no mid-sync progress among {} updates",
        seen.len()
    );
    let heights: Vec<u32> = seen.iter().map(|status| status.tip_height).collect();
    assert!(
        heights.windows(2).all(|pair| pair[0] <= pair[1]),
        "tip height went backwards"
    );
    eprintln!("2,000 blocks synced in {elapsed:?}");

    // A third node syncs from both, downloading bodies from each in parallel.
    let third = start_node("third").await;
    connect(&third, &source).await;
    connect(&third, &joiner).await;
    wait_for_tip(std::slice::from_ref(&third), tip, CONVERGE).await;
    shutdown([third, joiner, source]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healed_partition_follows_the_most_work_chain_and_returns_transactions() {
    let nodes = [
        start_node("a").await,
        start_node("b").await,
        start_node("c").await,
        start_node("d").await,
    ];
    let [a, b, c, d] = &nodes;
    connect(b, a).await;
    connect(c, b).await;
    let c_id = c.client().local_peer_id();
    connect(d, c).await;
    let shared = a.generate(5, payout()).await.unwrap();
    wait_for_tip(&nodes, shared[4], CONVERGE).await;

    // Partition between b and c.
    assert!(b.client().disconnect(c_id).await.unwrap());
    wait_until_disconnected(b, c_id).await;
    wait_until_disconnected(c, b.client().local_peer_id()).await;

    // The c–d side confirms a transaction in one block.
    let tx = spend_coinbase(d, &stored_block(d, &shared[0]), 10_000);
    let txid = tx.txid();
    d.submit_transaction(tx).await.unwrap();
    wait_until("the transaction to reach c", CONVERGE, || {
        c.with_mempool(|pool| pool.contains(&txid))
    })
    .await;
    let losing = c.generate(1, payout()).await.unwrap();
    wait_for_tip(&nodes[2..], losing[0], CONVERGE).await;
    assert!(stored_block(c, &losing[0])
        .transactions
        .iter()
        .any(|tx| tx.txid() == txid));
    wait_until("the transaction to leave the mempools", CONVERGE, || {
        !c.with_mempool(|pool| pool.contains(&txid)) && !d.with_mempool(|pool| pool.contains(&txid))
    })
    .await;

    // The a–b side mines more work.
    let winning = a.generate(3, payout()).await.unwrap();
    let best = winning[2];
    wait_for_tip(&nodes[..2], best, CONVERGE).await;
    assert_ne!(c.tip().hash, best, "the partition held");

    // Heal: everyone reorganises onto the most-work chain, and the losing branch's
    // transaction is back in the mempools of the side that had confirmed it.
    connect(b, c).await;
    wait_for_tip(&nodes, best, CONVERGE).await;
    for node in &nodes {
        assert_eq!(node.tip().height, 8, "{}", node.name);
        assert_eq!(
            node.reader().store().hash_at_height(6).unwrap(),
            Some(winning[0])
        );
    }
    wait_until("the transaction to return to c and d", CONVERGE, || {
        c.with_mempool(|pool| pool.contains(&txid)) && d.with_mempool(|pool| pool.contains(&txid))
    })
    .await;
    // It is still valid and gets mined again on the winning chain.
    let again = c.generate(1, payout()).await.unwrap();
    wait_for_tip(&nodes, again[0], CONVERGE).await;
    assert!(stored_block(a, &again[0])
        .transactions
        .iter()
        .any(|tx| tx.txid() == txid));
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_peers_are_banned_and_honest_nodes_keep_syncing() {
    let nodes = [start_node("h1").await, start_node("h2").await];
    let [h1, h2] = &nodes;
    connect(h2, h1).await;
    let mined = h1.generate(5, payout()).await.unwrap();
    wait_for_tip(&nodes, mined[4], CONVERGE).await;

    // Each payload is built when sent, on the tip of that moment: a bad block must extend the
    // best chain to be fully validated (a stale fork block is only stored).
    let bad_pow = |node: &TestNode| {
        let mut block = block_on_tip(node, Vec::new(), 0);
        let target = block.header.bits.to_target().unwrap();
        while target.is_met_by(block.header.block_hash()) {
            block.header.nonce += 1;
        }
        quarry_chain::encode::encode(&block)
    };
    let bad_signature = |node: &TestNode| {
        let mut tx = spend_coinbase(node, &stored_block(node, &mined[0]), 10_000);
        tx.inputs[0].witness[5] ^= 0x40;
        quarry_chain::encode::encode(&block_on_tip(node, vec![tx], 10_000))
    };
    type Payload<'a> = Box<dyn Fn(&TestNode) -> Vec<u8> + 'a>;
    let cases: Vec<(&str, TopicKind, Payload, Misbehaviour)> = vec![
        (
            "garbage bytes",
            TopicKind::Blocks,
            Box::new(|_| vec![0xa5; 1_000]),
            Misbehaviour::Malformed,
        ),
        (
            "an invalid proof of work",
            TopicKind::Blocks,
            Box::new(bad_pow),
            Misbehaviour::InvalidProofOfWork,
        ),
        (
            "an oversized message",
            TopicKind::Transactions,
            Box::new(|_| vec![0; 200_000]),
            Misbehaviour::Oversized,
        ),
        (
            "a block with a bad signature",
            TopicKind::Blocks,
            Box::new(bad_signature),
            Misbehaviour::InvalidBlock,
        ),
    ];
    for (what, kind, payload, offence) in cases {
        let (rogue, rogue_id) = rogue_peer(h1).await;
        publish_when_subscribed(&rogue, kind, payload(h1)).await;
        let reason = wait_for_ban(h1, rogue_id).await;
        assert_eq!(reason, BanReason::Misbehaviour(offence), "{what}");
        // The banned peer is disconnected and cannot come back.
        wait_until_disconnected(h1, rogue_id).await;
        let _ = rogue.dial(listen_address(h1).await).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        wait_until_disconnected(h1, rogue_id).await;
        rogue.shutdown();

        // The honest nodes keep syncing, and the bad data never reached h2.
        let next = h2.generate(1, payout()).await.unwrap();
        wait_for_tip(&nodes, next[0], CONVERGE).await;
    }
    assert!(
        h2.client().bans().await.unwrap().is_empty(),
        "h2 never saw the bad data"
    );
    assert!(h1
        .client()
        .bans()
        .await
        .unwrap()
        .iter()
        .all(|ban| ban.peer != h2.client().local_peer_id()));
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_different_networks_never_mix() {
    let ours = start_node("ours").await;
    let mut spec: NetworkSpec = params().spec().clone();
    spec.genesis_message = "another network".into();
    let other_params = quarry_chain::ChainParams::new(spec).unwrap();
    let theirs = start_node_with("theirs", other_params, test_network_config()).await;
    assert_ne!(ours.params().genesis_hash(), theirs.params().genesis_hash());
    let address = listen_address(&ours).await;
    // The connection may open; identify then shows another network and it is dropped.
    let _ = theirs.client().dial(address).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    wait_until_disconnected(&theirs, ours.client().local_peer_id()).await;
    theirs.generate(3, payout()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ours.tip().height, 0, "a block of another network was taken");
    shutdown([ours, theirs]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_leave_a_running_nodes_mempool_when_they_expire() {
    let config = quarry_node::NodeConfig {
        network: test_network_config(),
        miner_threads: 1,
        mempool: quarry_mempool::MempoolConfig {
            expiry_secs: 2,
            ..quarry_mempool::MempoolConfig::default()
        },
        ..quarry_node::NodeConfig::default()
    };
    let node = start_node_configured("expiring", params(), config).await;
    let mined = node.generate(4, payout()).await.unwrap();
    let tx = spend_coinbase(&node, &stored_block(&node, &mined[0]), 10_000);
    let txid = tx.txid();
    node.submit_transaction(tx).await.unwrap();
    assert!(node.with_mempool(|pool| pool.contains(&txid)));
    wait_until("the transaction to expire", CONVERGE, || {
        !node.with_mempool(|pool| pool.contains(&txid))
    })
    .await;
    shutdown([node]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidating_a_block_bans_no_honest_peer_and_reconsidering_takes_what_came_meanwhile() {
    let nodes = [start_node("operator").await, start_node("peer").await];
    let [operator, peer] = &nodes;
    connect(peer, operator).await;
    let mined = operator.generate(3, payout()).await.unwrap();
    wait_for_tip(&nodes, mined[2], CONVERGE).await;

    operator.chain().invalidate_block(mined[2]).unwrap();
    assert_eq!(operator.tip().hash, mined[1]);
    // The peer keeps building on the block the operator invalidated: its gossip and its
    // headers (at the next poll) carry that chain.
    let meanwhile = peer.generate(2, payout()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let peer_id = peer.client().local_peer_id();
    assert!(
        operator
            .client()
            .bans()
            .await
            .unwrap()
            .iter()
            .all(|ban| ban.peer != peer_id),
        "an honest peer was banned for the operator's decision"
    );
    assert!(is_connected(operator, peer_id).await);
    assert_eq!(operator.tip().hash, mined[1]);

    operator.chain().reconsider_block(mined[2]).unwrap();
    wait_for_tip(std::slice::from_ref(operator), meanwhile[1], CONVERGE).await;
    shutdown(nodes).await;
}

/// `/metrics` and `getblockchaininfo` answer anyone who can reach them, so they read the
/// chain's summary instead of waiting on the chain thread (which walked every branch tip for
/// them, and which a long sync or a slow disk can keep busy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_blockchain_info_never_wait_on_the_chain_thread() {
    use quarry_chain::actor::Command;
    use quarry_node::rpc::gauges::refresh_metrics;
    use quarry_node::rpc::methods::{self, RpcContext};

    let dir = tempfile::tempdir().unwrap();
    let config = quarry_node::NodeConfig {
        network: test_network_config(),
        miner_threads: 1,
        ..quarry_node::NodeConfig::default()
    };
    let keys = quarry_network::Keypair::generate_ed25519();
    let node = quarry_node::Node::start(params(), dir.path(), config, keys)
        .await
        .unwrap();
    node.generate(3, payout()).await.unwrap();
    let node = std::sync::Arc::new(node);
    let context = std::sync::Arc::new(RpcContext {
        node: std::sync::Arc::clone(&node),
        miner_address: None,
        stop: tokio::sync::watch::channel(false).0,
        active: Default::default(),
    });
    // Tips are recounted within a second of a change.
    tokio::time::sleep(quarry_chain::actor::TIP_RECOUNT_INTERVAL * 2).await;

    // Hold the chain thread: a command's reply runs on it.
    let (entered, on_chain_thread) = std::sync::mpsc::channel();
    let (release, held) = std::sync::mpsc::channel::<()>();
    node.chain()
        .send(Command::ChainTips(Box::new(move |_| {
            entered.send(()).unwrap();
            let _ = held.recv();
        })))
        .unwrap();
    on_chain_thread.recv().unwrap();

    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        methods::call(&context, "getblockchaininfo", None),
    )
    .await
    .expect("getblockchaininfo answers while the chain thread is busy")
    .unwrap();
    assert_eq!(answer["blocks"], 3);
    assert_eq!(answer["headers"], 3);
    tokio::time::timeout(Duration::from_secs(10), refresh_metrics(&node))
        .await
        .expect("a metrics scrape completes while the chain thread is busy")
        .unwrap();
    let text = node.metrics().encode();
    assert!(
        text.contains("quarry_chain_tips{status=\"active\"} 1"),
        "{text}"
    );
    assert!(text.contains("quarry_headers 3"), "{text}");
    release.send(()).unwrap();
    drop(context);
    std::sync::Arc::into_inner(node)
        .unwrap()
        .shutdown()
        .await
        .unwrap();
}
