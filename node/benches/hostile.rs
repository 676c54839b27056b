//! A hostile peer against a real node while an honest peer mines: 100,000 low-work headers (50
//! branches of 2,000 off genesis, each sent in answer to a headers request the peer provokes by
//! gossiping a block of the branch) and 1,000 low-work blocks (children of genesis). Reports the
//! victim's resident memory and disk growth, how far its tip lagged the honest node's, and
//! whether the honest peer stayed connected.
//!
//! `cargo bench -p quarry-node --bench hostile`

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quarry_chain::testing::{test_key, unit_params, Harness};
use quarry_chain::{Block, BlockHeader};
use quarry_network::protocol::{SyncRequest, SyncResponse, TopicKind, MAX_HEADERS};
use quarry_network::{service, Keypair, NetworkConfig, NetworkEvent};
use quarry_node::{Node, NodeConfig};

const BRANCHES: usize = 50;
const LOW_WORK_BLOCKS: usize = 1_000;
/// The honest chain's length before the attack: well over a branch's 2,000 blocks plus the
/// 144-block margin, so that every branch is low-work.
const HONEST_BLOCKS: usize = 2_500;

fn config() -> NodeConfig {
    NodeConfig {
        network: NetworkConfig {
            header_poll_seconds: 5,
            request_timeout_seconds: 5,
            gossip_heartbeat_millis: 200,
            ..NetworkConfig::loopback()
        },
        miner_threads: 1,
        ..NodeConfig::default()
    }
}

async fn start(dir: &Path) -> Node {
    Node::start(unit_params(), dir, config(), Keypair::generate_ed25519())
        .await
        .expect("node starts")
}

async fn listen_address(node: &Node) -> quarry_network::Multiaddr {
    loop {
        if let Ok(listening) = node.client().listen_addresses().await {
            if let Some(address) = listening.into_iter().next() {
                return address;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => disk_bytes(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The attacker's material: branches of headers off genesis, a block on top of each (its
/// gossip makes the victim ask for headers), and children of genesis.
struct Material {
    branches: Vec<Vec<BlockHeader>>,
    provokers: Vec<Block>,
    low_work_blocks: Vec<Block>,
}

fn material() -> Material {
    let mut harness = Harness::new();
    let genesis = harness.genesis();
    let mut branches = Vec::new();
    let mut provokers = Vec::new();
    for _ in 0..BRANCHES {
        let mut parent = genesis;
        let mut headers = Vec::with_capacity(MAX_HEADERS);
        for _ in 0..MAX_HEADERS {
            let block = harness.block_on(parent, Vec::new());
            harness.submit(block.clone()).expect("valid block");
            parent = block.block_hash();
            headers.push(block.header);
        }
        provokers.push(harness.block_on(parent, Vec::new()));
        branches.push(headers);
    }
    let low_work_blocks = (0..LOW_WORK_BLOCKS)
        .map(|_| harness.block_on(genesis, Vec::new()))
        .collect();
    Material {
        branches,
        provokers,
        low_work_blocks,
    }
}

async fn publish(client: &quarry_network::Client, block: &Block) {
    let data = quarry_chain::encode::encode(block);
    for _ in 0..100 {
        if client
            .publish(TopicKind::Blocks, data.clone())
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    let material = material();
    println!(
        "attack material: {} headers in {BRANCHES} branches, {LOW_WORK_BLOCKS} blocks, built in {:.1?}",
        BRANCHES * MAX_HEADERS,
        started.elapsed()
    );
    let victim_dir = tempfile::tempdir().expect("temporary directory");
    let honest_dir = tempfile::tempdir().expect("temporary directory");
    let victim = start(victim_dir.path()).await;
    let honest = start(honest_dir.path()).await;
    honest
        .generate(HONEST_BLOCKS, test_key(0))
        .await
        .expect("mined");
    victim
        .client()
        .dial(listen_address(&honest).await)
        .await
        .expect("dial");
    while victim.tip().hash != honest.tip().hash {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_before = resident_kib();
    let disk_before = disk_bytes(victim_dir.path());

    // The rogue answers every headers request with the next branch.
    let (rogue, events, event_loop) = service::new(
        config().network,
        Keypair::generate_ed25519(),
        unit_params().genesis_hash(),
    )
    .expect("rogue network");
    tokio::spawn(event_loop.run());
    let served = Arc::new(AtomicUsize::new(0));
    let branches = Arc::new(material.branches);
    {
        let (served, branches, responder) =
            (Arc::clone(&served), Arc::clone(&branches), rogue.clone());
        tokio::spawn(async move {
            let mut events = events;
            while let Some(event) = events.recv().await {
                if let NetworkEvent::Request {
                    request: SyncRequest::Headers { .. },
                    channel,
                    ..
                } = event
                {
                    let next = served.fetch_add(1, Ordering::Relaxed) % branches.len();
                    let _ =
                        responder.respond(channel, SyncResponse::Headers(branches[next].clone()));
                }
            }
        });
    }
    rogue
        .dial(listen_address(&victim).await)
        .await
        .expect("rogue dials");

    // The honest node mines one block every 500 ms during the attack; the victim's lag is
    // sampled meanwhile.
    let attack_started = Instant::now();
    let mut lags = Vec::new();
    let mut provokers = material.provokers.iter();
    let mut low_work = material.low_work_blocks.chunks(LOW_WORK_BLOCKS / BRANCHES);
    while served.load(Ordering::Relaxed) < BRANCHES {
        if attack_started.elapsed() > Duration::from_secs(600) {
            println!("stopped after 600 s");
            break;
        }
        match provokers.next() {
            Some(block) => publish(&rogue, block).await,
            None => provokers = material.provokers.iter(),
        }
        for block in low_work.next().unwrap_or_default() {
            publish(&rogue, block).await;
        }
        honest.generate(1, test_key(0)).await.expect("mined");
        tokio::time::sleep(Duration::from_millis(500)).await;
        lags.push(honest.tip().height.saturating_sub(victim.tip().height));
    }
    let elapsed = attack_started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = resident_kib();
    let disk_after = disk_bytes(victim_dir.path());
    let honest_id = honest.client().local_peer_id();
    let connected = victim
        .client()
        .peers()
        .await
        .map(|peers| peers.iter().any(|peer| peer.peer == honest_id))
        .unwrap_or(false);
    let banned = victim
        .client()
        .bans()
        .await
        .map(|bans| bans.iter().any(|ban| ban.peer == honest_id))
        .unwrap_or(false);
    let tips = victim
        .chain()
        .chain_tips()
        .map(|tips| tips.len())
        .unwrap_or(0);
    println!(
        "served {} headers and gossiped {LOW_WORK_BLOCKS} low-work blocks in {elapsed:.1?}",
        served.load(Ordering::Relaxed) * MAX_HEADERS
    );
    println!(
        "victim: resident memory {} -> {} MiB (process), disk {:.1} -> {:.1} MiB, chain tips {tips}",
        rss_before / 1024,
        rss_after / 1024,
        disk_before as f64 / 1_048_576.0,
        disk_after as f64 / 1_048_576.0
    );
    println!(
        "tip lag behind the honest miner: max {} blocks, mean {:.2}; honest peer connected: {connected}, banned: {banned}",
        lags.iter().max().copied().unwrap_or(0),
        lags.iter().map(|lag| f64::from(*lag)).sum::<f64>() / lags.len().max(1) as f64
    );
    rogue.shutdown();
    let _ = victim.shutdown().await;
    let _ = honest.shutdown().await;
}
