//! The chain actor over RocksDB: commands with answers, events in order, the tip watch,
//! concurrent reads, shutdown, and reindexing from stored bodies.

use std::sync::Arc;
use std::time::Duration;

use quarry_chain::actor::{self, Clock};
use quarry_chain::testing::assert_utxo_set_matches_replay;
use quarry_chain::testing::{unit_params, workload, Harness};
use quarry_chain::{
    Acceptance, Block, Chain, ChainError, ChainEvent, ChainReader, ChainService, TipStatus,
};
use quarry_store::RocksStore;

fn fixed_clock() -> Clock {
    let now = Harness::new().now;
    Box::new(move || now)
}

fn start(dir: &std::path::Path) -> ChainService<Arc<RocksStore>> {
    let store = Arc::new(RocksStore::open(dir).unwrap());
    let chain = Chain::open(unit_params(), store).unwrap();
    actor::spawn(chain, fixed_clock()).unwrap()
}

#[test]
fn blocks_submitted_to_the_actor_connect_and_are_announced_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let service = start(dir.path());
    let events = service.handle.subscribe().unwrap();
    let watch = service.reader.tip_watch().clone();
    let seen = watch.version();

    let mut builder = Harness::new();
    let genesis = builder.genesis();
    let main: Vec<Block> = builder.mine_empty(3);
    for block in &main {
        assert_eq!(
            service.handle.submit_block(block.clone()).unwrap(),
            Acceptance::Accepted
        );
    }
    let (_, tip) = watch
        .wait_for_change(seen, Duration::from_secs(5))
        .expect("the tip changed");
    assert_eq!(service.reader.tip().hash, main[2].block_hash());
    assert!(tip.height >= 1);
    assert_eq!(service.reader.tip().next.height, 4);

    // A longer branch from genesis: three disconnects, then four connects.
    let mut fork = Vec::new();
    let mut parent = genesis;
    for _ in 0..4 {
        let block = builder.block_on(parent, Vec::new());
        parent = block.block_hash();
        let _ = builder.submit(block.clone());
        fork.push(block);
    }
    for block in &fork {
        service.handle.submit_block(block.clone()).unwrap();
    }
    let received: Vec<ChainEvent> = events.try_iter().collect();
    let expected: Vec<ChainEvent> = (main.iter().enumerate())
        .map(|(i, block)| ChainEvent::Connected {
            hash: block.block_hash(),
            height: i as u32 + 1,
        })
        .chain(
            main.iter()
                .enumerate()
                .rev()
                .map(|(i, block)| ChainEvent::Disconnected {
                    hash: block.block_hash(),
                    height: i as u32 + 1,
                }),
        )
        .chain(
            fork.iter()
                .enumerate()
                .map(|(i, block)| ChainEvent::Connected {
                    hash: block.block_hash(),
                    height: i as u32 + 1,
                }),
        )
        .collect();
    assert_eq!(received, expected);
    assert_eq!(service.reader.tip().hash, parent);
    assert_eq!(
        service.reader.store().hash_at_height(4).unwrap(),
        Some(parent)
    );

    // Operator commands go through the same actor.
    service
        .handle
        .invalidate_block(fork[2].block_hash())
        .unwrap();
    assert_eq!(service.reader.tip().hash, main[2].block_hash());
    let tips = service.handle.chain_tips().unwrap();
    assert!(tips
        .iter()
        .any(|tip| tip.hash == parent && tip.status == TipStatus::Invalid));
    service
        .handle
        .reconsider_block(fork[2].block_hash())
        .unwrap();
    assert_eq!(service.reader.tip().hash, parent);

    service.handle.shutdown();
    assert!(service.thread.join().unwrap().is_ok());
    assert!(matches!(
        service.handle.submit_block(main[0].clone()),
        Err(ChainError::Stopped)
    ));
}

#[test]
fn readers_query_the_store_while_the_actor_writes() {
    let dir = tempfile::tempdir().unwrap();
    let service = start(dir.path());
    let blocks = workload(120, 3, true, 7);
    let reader = service.reader.clone();
    let reading = std::thread::spawn(move || {
        let mut reads = 0u64;
        while reader.tip().height < 40 {
            let tip = reader.tip();
            // Every height up to a published tip is in the height index.
            if let Some(hash) = reader.store().hash_at_height(tip.height / 2).unwrap() {
                assert!(reader.store().index_entry(&hash).unwrap().is_some());
            }
            reads += 1;
        }
        reads
    });
    for block in blocks {
        service.handle.submit_block(block).unwrap();
    }
    assert!(reading.join().unwrap() > 0);
    service.handle.shutdown();
    service.thread.join().unwrap().unwrap();
}

#[test]
fn reindex_rebuilds_the_index_and_utxo_set_from_stored_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = workload(150, 3, true, 11);
    let now = Harness::new().now;
    let (tip, utxos) = {
        let mut chain = Chain::open(unit_params(), RocksStore::open(dir.path()).unwrap()).unwrap();
        for block in &blocks {
            chain.process_block(block.clone(), now).unwrap();
        }
        (chain.tip_hash(), chain.store().utxo_set().unwrap())
    };
    let mut reports = Vec::new();
    let chain = Chain::reindex(
        unit_params(),
        RocksStore::open(dir.path()).unwrap(),
        now,
        |done, total| reports.push((done, total)),
    )
    .unwrap();
    assert_eq!(chain.tip_hash(), tip);
    assert_eq!(chain.store().utxo_set().unwrap(), utxos);
    assert_utxo_set_matches_replay(&chain);
    // Every stored body (genesis and both sides of every fork) was validated again.
    assert_eq!(reports.last(), Some(&(blocks.len() + 1, blocks.len() + 1)));
    assert_eq!(chain.index().len(), blocks.len() + 1);
}
