//! A hostile peer for attack tests: the real network actor and protocol without a syncer, so
//! that it sends exactly what a test tells it to, and blocks built on a node's tip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quarry_chain::testing::{mine, test_key};
use quarry_chain::{Amount, Block, BlockHash, Transaction};
use quarry_mempool::BlockTemplate;
use quarry_network::protocol::{SyncRequest, SyncResponse, TopicKind};
use quarry_network::{
    service, BanReason, Client, Keypair, NetworkConfig, NetworkError, NetworkEvent, PeerId,
};

use super::{eventually, listen_address, test_network_config, TestNode};

/// The test key rogue blocks pay.
const ROGUE_KEY: u64 = 99;

/// How long a node may take to ban a misbehaving peer.
const BAN_WAIT: Duration = Duration::from_secs(60);

/// A misbehaving peer: the network actor without a syncer, publishing raw bytes and leaving
/// every request unanswered.
pub async fn rogue_peer(target: &TestNode) -> (Client, PeerId) {
    rogue_responder(target, |_| None).await
}

/// A misbehaving peer that answers sync requests with whatever `answer` makes of them (no
/// answer: the request fails at the asker's timeout).
pub async fn rogue_responder(
    target: &TestNode,
    answer: impl Fn(&SyncRequest) -> Option<SyncResponse> + Send + 'static,
) -> (Client, PeerId) {
    let client = bare_peer(target, test_network_config(), answer);
    let address = listen_address(target).await;
    client.dial(address).await.unwrap();
    let id = client.local_peer_id();
    (client, id)
}

/// A network actor of its own peer identity on `config`, without a syncer, answering sync
/// requests with `answer`; it dials nobody.
pub fn bare_peer(
    target: &TestNode,
    config: NetworkConfig,
    answer: impl Fn(&SyncRequest) -> Option<SyncResponse> + Send + 'static,
) -> Client {
    let genesis = target.params().genesis_hash();
    let (client, events, event_loop) =
        service::new(config, Keypair::generate_ed25519(), genesis).unwrap();
    tokio::spawn(event_loop.run());
    // Keep the event stream open (and drained) for the actor's lifetime, and unanswered
    // requests open too (a dropped channel would fail them at once).
    let responder = client.clone();
    tokio::spawn(async move {
        let mut events = events;
        let mut unanswered = Vec::new();
        while let Some(event) = events.recv().await {
            if let NetworkEvent::Request {
                request, channel, ..
            } = event
            {
                match answer(&request) {
                    Some(response) => {
                        let _ = responder.respond(channel, response);
                    }
                    None => unanswered.push(channel),
                }
            }
        }
    });
    client
}

pub async fn publish_when_subscribed(client: &Client, kind: TopicKind, data: Vec<u8>) {
    let start = Instant::now();
    loop {
        match client.publish(kind, data.clone()).await {
            Ok(()) => return,
            Err(NetworkError::Publish(_)) if start.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("rogue could not publish: {error}"),
        }
    }
}

pub async fn wait_for_ban(node: &TestNode, peer: PeerId) -> BanReason {
    let what = format!("{} to ban {peer}", node.name);
    eventually(&what, BAN_WAIT, || async {
        let bans = node.client().bans().await.unwrap();
        bans.into_iter()
            .find(|ban| ban.peer == peer)
            .map(|ban| ban.reason)
    })
    .await
}

/// A block on `node`'s tip holding `transactions`, with a valid proof of work.
pub fn block_on_tip(node: &TestNode, transactions: Vec<Transaction>, fees: u64) -> Block {
    let tip = node.tip();
    block_on(node, tip.hash, tip.next.height, transactions, fees)
}

/// A block on `parent` at `height`, timed now, with the bits the tip's child needs (on the test
/// network every block has the easiest target, so any parent takes them).
pub fn block_on(
    node: &TestNode,
    parent: BlockHash,
    height: u32,
    transactions: Vec<Transaction>,
    fees: u64,
) -> Block {
    let tip = node.tip();
    let now = u32::try_from(quarry_chain::clock::unix_now()).expect("a 32-bit time");
    let subsidy = node.params().block_subsidy(height);
    let template = BlockTemplate {
        prev_blockhash: parent,
        height,
        bits: tip.next.bits,
        time: now.max(tip.next.min_time),
        transactions_size: transactions.iter().map(Transaction::encoded_size).sum(),
        transactions: transactions.into_iter().map(Arc::new).collect(),
        fees: Amount::from_sat(fees),
        coinbase_value: subsidy.checked_add(Amount::from_sat(fees)).unwrap(),
    };
    // Paid to a key of the rogue's own, so that it never equals a block a node mined.
    let mut block = quarry_miner::assemble(&template, test_key(ROGUE_KEY), 0);
    assert!(mine(&mut block.header));
    block
}
