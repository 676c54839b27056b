//! Figures for the node's services: the address index building itself over a 10,000-block
//! chain with transactions and answering per-address queries, and JSON-RPC calls per second
//! over HTTP with one keep-alive client.
//!
//! `cargo bench -p quarry-node --bench rpc`

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use quarry_chain::testing::{test_key, unit_params, WorkloadBuilder};
use quarry_chain::{Address, Block, Chain, ChainReader, OutputKey};
use quarry_network::{Keypair, NetworkConfig};
use quarry_node::index::AddressIndex;
use quarry_node::rpc::{self, Credentials, RpcContext};
use quarry_node::{Node, NodeConfig};
use quarry_store::RocksStore;
use serde_json::{json, Value};

const INDEX_BLOCKS: usize = 10_000;
const MAX_SPENDS: usize = 8;
const CALLS: usize = 2_000;

fn index_bench() {
    let started = Instant::now();
    let mut builder = WorkloadBuilder::new(7);
    let blocks: Vec<Block> = (0..INDEX_BLOCKS)
        .map(|_| builder.extend(MAX_SPENDS))
        .collect();
    let transactions: usize = blocks.iter().map(|block| block.transactions.len()).sum();
    println!(
        "workload: {INDEX_BLOCKS} blocks, {transactions} transactions, built in {:.1?}",
        started.elapsed()
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Arc::new(RocksStore::open(&dir.path().join("chain")).expect("store"));
    let mut chain = Chain::open(unit_params(), Arc::clone(&store)).expect("chain");
    for block in blocks {
        chain
            .process_block(block, builder.harness.now)
            .expect("valid block");
    }
    let index = AddressIndex::open(&dir.path().join("index"), chain.params().genesis_hash())
        .expect("index");
    let started = Instant::now();
    let progress = index.catch_up(&store).expect("catch up");
    let elapsed = started.elapsed();
    println!(
        "index build: {} blocks in {elapsed:.2?} = {:.0} blocks/s, {:.0} transactions/s",
        progress.connected,
        f64::from(progress.connected) / elapsed.as_secs_f64(),
        transactions as f64 / elapsed.as_secs_f64()
    );

    let keys: Vec<OutputKey> = {
        let mut keys: Vec<OutputKey> = store
            .utxo_set()
            .expect("utxo set")
            .values()
            .map(|coin| coin.output.pubkey)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let started = Instant::now();
    let mut found = 0;
    for key in &keys {
        found += index.utxos(key).expect("utxos").len();
        found += index.history(key).expect("history").len();
    }
    let elapsed = started.elapsed();
    println!(
        "index queries: unspent outputs and history of {} keys, {found} records in {elapsed:.2?} = {:.0} records/s",
        keys.len(),
        found as f64 / elapsed.as_secs_f64()
    );
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

async fn rpc_bench() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = NodeConfig {
        network: NetworkConfig::loopback(),
        ..NodeConfig::default()
    };
    let node = Arc::new(
        Node::start(
            unit_params(),
            dir.path(),
            config,
            Keypair::generate_ed25519(),
        )
        .await
        .expect("node"),
    );
    let payout = test_key(1);
    node.generate(200, payout).await.expect("mined");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let context = Arc::new(RpcContext {
        node: Arc::clone(&node),
        miner_address: None,
        stop: stop.clone(),
        active: Default::default(),
    });
    let mut shutdown = stopped.clone();
    let server = tokio::spawn(rpc::serve_rpc(
        listener,
        context,
        Credentials::new("bench", "bench"),
        rpc::server::DEFAULT_SERVER_TIMEOUT,
        async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        },
    ));
    let tip = node.tip().hash.to_string();
    let miner = Address::new(payout, node.params()).to_string();
    let calls = [
        ("getblockcount", json!([])),
        ("getblock", json!([tip, 2])),
        ("getaddressutxos", json!([[miner]])),
    ];
    tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::new_with_defaults();
        let authorization = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("bench:bench")
        );
        for (method, params) in calls {
            let body = json!({"method": method, "params": params, "id": 1}).to_string();
            let mut latencies = Vec::with_capacity(CALLS);
            let started = Instant::now();
            for _ in 0..CALLS {
                let call = Instant::now();
                let text = agent
                    .post(&format!("http://{address}/"))
                    .header("Authorization", &authorization)
                    .send(body.as_str())
                    .expect("reply")
                    .body_mut()
                    .read_to_string()
                    .expect("body");
                let reply: Value = serde_json::from_str(&text).expect("JSON");
                assert!(reply["error"].is_null(), "{reply}");
                latencies.push(call.elapsed());
            }
            let elapsed = started.elapsed();
            latencies.sort();
            println!(
                "rpc {method:<16} {:>6.0} calls/s  p50 {:>7.2?}  p99 {:>7.2?}",
                CALLS as f64 / elapsed.as_secs_f64(),
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99)
            );
        }
    })
    .await
    .expect("client");
    stop.send_replace(true);
    server.await.expect("server task").expect("server");
    let node = Arc::try_unwrap(node).expect("the stopped server holds no node");
    node.shutdown().await.expect("shutdown");
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        println!("address_index_and_rpc: bench");
        return;
    }
    index_bench();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(rpc_bench());
}
