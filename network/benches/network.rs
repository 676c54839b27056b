//! Network benchmarks between in-process nodes on loopback (RocksDB stores, chain actors,
//! libp2p over TCP):
//!
//! 1. sync: 10,000 blocks with transactions synced from one node to a fresh one, as blocks/s,
//!    beside the rate at which the same fresh node connects them when submitted locally;
//! 2. gossip: latency of a new block to every node of a 16-node network, p50 and p99.
//!
//! Run with `cargo bench -p quarry-network --bench network`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quarry_chain::actor::{self, ChainService, Command};
use quarry_chain::testing::WorkloadBuilder;
use quarry_chain::{Block, BlockHash, Chain};
use quarry_network::{Keypair, NetworkConfig, NetworkService};
use quarry_store::RocksStore;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tempfile::TempDir;

const SYNC_BLOCKS: usize = 10_000;
const MAX_SPENDS: usize = 8;
const GOSSIP_NODES: usize = 16;
const GOSSIP_BLOCKS: usize = 40;

struct BenchNode {
    chain: ChainService<Arc<RocksStore>>,
    network: Option<NetworkService>,
    _dir: TempDir,
}

fn chain_node(now: u64) -> BenchNode {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Arc::new(RocksStore::open(dir.path()).expect("store"));
    let chain = Chain::open(quarry_chain::testing::unit_params(), store).expect("chain");
    let chain = actor::spawn(chain, Box::new(move || now)).expect("chain actor");
    BenchNode {
        chain,
        network: None,
        _dir: dir,
    }
}

fn networked_node(now: u64) -> BenchNode {
    let mut node = chain_node(now);
    let config = NetworkConfig {
        gossip_heartbeat_millis: 200,
        ..NetworkConfig::loopback()
    };
    let params = quarry_chain::testing::unit_params();
    node.network = Some(
        quarry_network::start(
            config,
            Keypair::generate_ed25519(),
            &params,
            node.chain.handle.clone(),
            node.chain.reader.clone(),
            None,
        )
        .expect("network"),
    );
    node
}

impl BenchNode {
    fn network(&self) -> &NetworkService {
        self.network.as_ref().expect("networked node")
    }

    async fn connect_to(&self, other: &BenchNode) {
        let address = loop {
            let addresses = other
                .network()
                .client
                .listen_addresses()
                .await
                .expect("addresses");
            if let Some(address) = addresses.into_iter().next() {
                break address;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        self.network().client.dial(address).await.expect("dial");
    }
}

/// Submits every block to the chain actor without waiting in between, then waits for the
/// last answer: the node's own connect rate, through the same path sync uses.
fn connect_locally(node: &BenchNode, blocks: &[Block]) -> Duration {
    let (sender, receiver) = std::sync::mpsc::channel();
    let started = Instant::now();
    for block in blocks {
        let sender = sender.clone();
        node.chain
            .handle
            .send(Command::SubmitBlock(
                Box::new(block.clone()),
                Box::new(move |result| {
                    let _ = sender.send(result.is_ok());
                }),
            ))
            .expect("chain actor running");
    }
    drop(sender);
    let accepted = receiver.iter().filter(|ok| *ok).count();
    let elapsed = started.elapsed();
    assert_eq!(accepted, blocks.len(), "every block connects");
    elapsed
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

async fn sync_bench(blocks: &[Block], now: u64) {
    let transactions: usize = blocks
        .iter()
        .map(|block| block.transactions.len() - 1)
        .sum();
    let mib = blocks.iter().map(Block::encoded_size).sum::<usize>() as f64 / 1_048_576.0;
    println!(
        "sync workload: {} blocks, {transactions} transactions besides coinbases, {mib:.1} MiB",
        blocks.len()
    );

    let source = networked_node(now);
    let local = tokio::task::block_in_place(|| connect_locally(&source, blocks));
    let local_rate = blocks.len() as f64 / local.as_secs_f64();
    println!(
        "local connect (fresh store, through the chain actor): {:.2} s = {local_rate:.0} blocks/s",
        local.as_secs_f64()
    );
    let target_tip = source.chain.reader.tip().hash;

    let joiner = networked_node(now);
    let started = Instant::now();
    joiner.connect_to(&source).await;
    let watch = joiner.chain.reader.tip_watch().clone();
    while watch.get().hash != target_tip {
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "sync did not finish"
        );
    }
    let synced = started.elapsed();
    let sync_rate = blocks.len() as f64 / synced.as_secs_f64();
    println!(
        "sync over loopback (fresh store, headers then bodies): {:.2} s = {sync_rate:.0} blocks/s \
         = {:.0}% of the local connect rate",
        synced.as_secs_f64(),
        100.0 * sync_rate / local_rate
    );
    for node in [joiner, source] {
        node.network().client.shutdown();
        node.chain.handle.shutdown();
    }
}

async fn gossip_bench(builder: &mut WorkloadBuilder) {
    let now = builder.harness.now;
    let nodes: Vec<BenchNode> = (0..GOSSIP_NODES).map(|_| networked_node(now)).collect();
    let mut rng = StdRng::seed_from_u64(16);
    for index in 1..GOSSIP_NODES {
        nodes[index].connect_to(&nodes[index - 1]).await;
        if index >= 2 {
            let other = rng.random_range(0..index - 1);
            nodes[index].connect_to(&nodes[other]).await;
        }
    }
    // Let gossipsub meshes form.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Each node records when it first sees each tip.
    let arrivals: Arc<Mutex<Vec<(usize, BlockHash, Instant)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(index, node)| {
            let watch = node.chain.reader.tip_watch().clone();
            let arrivals = Arc::clone(&arrivals);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut seen = watch.version();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some((version, tip)) =
                        watch.wait_for_change(seen, Duration::from_millis(50))
                    {
                        seen = version;
                        arrivals
                            .lock()
                            .expect("arrivals")
                            .push((index, tip.hash, Instant::now()));
                    }
                }
            })
        })
        .collect();

    let mut latencies = Vec::new();
    for _ in 0..GOSSIP_BLOCKS {
        let block = builder.extend(MAX_SPENDS);
        let hash = block.block_hash();
        let origin = rng.random_range(0..GOSSIP_NODES);
        let submitted = Instant::now();
        let handle = nodes[origin].chain.handle.clone();
        tokio::task::spawn_blocking(move || handle.submit_block(block))
            .await
            .expect("submit task")
            .expect("valid block");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reached = arrivals
                .lock()
                .expect("arrivals")
                .iter()
                .filter(|(index, tip, _)| *tip == hash && *index != origin)
                .count();
            if reached == GOSSIP_NODES - 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "block {hash} reached only {reached} nodes"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.extend(
            arrivals
                .lock()
                .expect("arrivals")
                .iter()
                .filter(|(index, tip, _)| *tip == hash && *index != origin)
                .map(|(_, _, at)| at.duration_since(submitted)),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for watcher in watchers {
        watcher.join().expect("watcher");
    }
    latencies.sort();
    println!(
        "gossip: {GOSSIP_BLOCKS} blocks to {} other nodes each ({} deliveries): p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms",
        GOSSIP_NODES - 1,
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().map_or(0.0, |max| max.as_secs_f64() * 1e3),
    );
    for node in nodes {
        node.network().client.shutdown();
        node.chain.handle.shutdown();
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        println!("network_sync_and_gossip: bench");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let mut builder = WorkloadBuilder::new(5);
    let blocks: Vec<Block> = (0..SYNC_BLOCKS)
        .map(|_| builder.extend(MAX_SPENDS))
        .collect();
    println!("workload built in {:.1?}", started.elapsed());
    let now = builder.harness.now;
    runtime.block_on(sync_bench(&blocks, now));
    // Gossip blocks continue the same chain on fresh nodes: start them from its genesis.
    let mut gossip_builder = WorkloadBuilder::new(6);
    runtime.block_on(gossip_bench(&mut gossip_builder));
}
