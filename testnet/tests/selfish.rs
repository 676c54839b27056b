//! Selfish mining on real nodes: what does not depend on luck. Without hash power the
//! attacker earns nothing and orphans nothing; with 45% and every honest node hearing its
//! blocks first, it orphans honest blocks and earns main-chain blocks.

use quarry_testnet::cluster::quarryd_path;
use quarry_testnet::engine::selfish::{Retarget, SelfishSettings};
use quarry_testnet::engine::EngineKind;
use quarry_testnet::selfish_nodes::{run, NodesRun};

fn on_nodes(alpha: f64, gamma: f64, blocks: u32) -> quarry_testnet::engine::selfish::SelfishResult {
    let dir = tempfile::tempdir().unwrap();
    run(&NodesRun {
        settings: SelfishSettings {
            alpha,
            gamma,
            blocks,
            spacing: 1,
            retarget: Retarget::Off,
            seed: 0,
            engine: EngineKind::Nodes,
        },
        honest_nodes: 2,
        delay_ms: 50,
        hash_rate: 20_000,
        dir: dir.path().join("nodes"),
        nodes: quarry_testnet::cluster::NodeEngine::processes(&quarryd_path(None).unwrap()),
    })
    .unwrap()
}

#[test]
fn without_power_the_selfish_miner_earns_nothing_and_with_much_it_orphans_honest_blocks() {
    let none = on_nodes(0.0, 1.0, 8);
    assert_eq!(none.attacker_main_blocks, 0, "{none:#?}");
    assert_eq!(none.attacker_orphaned, 0);
    assert!(none.main_blocks >= 8);

    let strong = on_nodes(0.45, 1.0, 18);
    assert!(strong.attacker_main_blocks > 0, "{strong:#?}");
    assert!(strong.honest_orphaned > 0, "{strong:#?}");
    assert_eq!(strong.near_nodes, 2);
}
