//! Simulated proof of work end to end: on a network with `pow = "simulated"` and a genesis
//! target no CPU could meet in a test (Bitcoin's difficulty 1, about 2^32 hashes a block), a
//! miner with a virtual hash rate finds blocks as a Poisson process, the blocks' hashes do
//! not meet their targets, and a peer validates and follows them.

use std::time::Duration;

use quarry_chain::testing::test_key;
use quarry_chain::{Address, BlockHash, ChainParams, CompactTarget, PowMode};
use quarry_rpc::testing::{eventually, Daemon};
use serde_json::json;

#[test]
fn a_simulated_miner_finds_blocks_no_hash_meets_and_a_peer_follows_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = quarry_rpc::testing::params().spec().clone();
    spec.name = "simnet".into();
    spec.pow = PowMode::Simulated;
    spec.genesis_bits = Some(0x1d00_ffff);
    spec.genesis_nonce = None;
    // Dated now: a chain far behind ASERT's schedule would ease to the limit, where hashes
    // meet targets by chance.
    spec.genesis_time = quarry_chain::clock::unix_now() as u32;
    let params = ChainParams::new(spec.clone()).unwrap();
    let file = dir.path().join("simnet.toml");
    std::fs::write(&file, toml::to_string(&spec).unwrap()).unwrap();
    let file = file.to_str().unwrap();
    let payout = Address::new(test_key(1), &params).to_string();

    let idle = Daemon::start_on("idle", file, &[]);
    let refused = idle
        .call("setgenerate", json!([true, 1, payout]))
        .unwrap_err();
    assert!(refused.message.contains("--max-hash-rate"), "{refused:?}");

    // 2^32 work at 2^32 × 20 virtual hashes per second: a block every 50 ms on average.
    let rate = (20u64 << 32).to_string();
    let miner = Daemon::start_on(
        "miner",
        file,
        &["--max-hash-rate", &rate, "--mining-seed", "1"],
    );
    miner.rpc("setgenerate", json!([true, 1, payout]));
    eventually("ten simulated blocks", Duration::from_secs(60), || {
        (miner.rpc("getblockcount", json!([])).as_u64()? >= 10).then_some(())
    });
    miner.rpc("setgenerate", json!([false]));
    let height = miner.rpc("getblockcount", json!([])).as_u64().unwrap();
    for h in 1..=height {
        let hash = miner.rpc("getblockhash", json!([h]));
        let header = miner.rpc("getblockheader", json!([hash]));
        let hash: BlockHash = hash.as_str().unwrap().parse().unwrap();
        let bits = u32::from_str_radix(header["bits"].as_str().unwrap(), 16).unwrap();
        let target = CompactTarget::from_consensus(bits).to_target().unwrap();
        assert!(
            !target.is_met_by(hash),
            "block {h} meets its target: it was hashed"
        );
    }
    let info = miner.rpc("getmininginfo", json!([]));
    assert!(info["hashespersec"].as_f64().unwrap() > 0.0, "{info}");

    // A peer validates the blocks and follows; blocks on demand come at once.
    let tip = miner.rpc("getbestblockhash", json!([]));
    let address = miner.rpc("getnetworkinfo", json!([]))["p2paddresses"][0].clone();
    idle.rpc("addnode", json!([address, "add"]));
    eventually("the peer to follow", Duration::from_secs(60), || {
        (idle.rpc("getbestblockhash", json!([])) == tip).then_some(())
    });
    let made = idle.rpc("generatetoaddress", json!([3, payout]));
    assert_eq!(made.as_array().map(Vec::len), Some(3));
    eventually("the miner to follow back", Duration::from_secs(60), || {
        (miner.rpc("getblockcount", json!([])).as_u64()? == height + 3).then_some(())
    });
}
