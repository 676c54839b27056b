//! Reindexing through the store traits alone: an in-memory store, holding a workload with
//! reorganisations, is reindexed from its block bodies to the same tip and UTXO set.

use quarry_chain::testing::{assert_utxo_set_matches_replay, unit_params, workload, Harness};
use quarry_chain::{Chain, ChainReader, ChainWriter, MemoryStore};

#[test]
fn a_memory_store_reindexes_to_the_same_tip_and_utxo_set() {
    let blocks = workload(120, 3, true, 5);
    let now = Harness::new().now;
    let mut chain = Chain::open(unit_params(), MemoryStore::new()).unwrap();
    for block in &blocks {
        chain.process_block(block.clone(), now).unwrap();
    }
    let tip = chain.tip_hash();
    let utxos = chain.store().utxo_set().unwrap();
    let store = chain.store().clone();
    assert_eq!(store.stored_headers().unwrap().len(), blocks.len() + 1);

    let mut reports = Vec::new();
    let reindexed = Chain::reindex(unit_params(), store, now, |done, total| {
        reports.push((done, total))
    })
    .unwrap();
    assert_eq!(reindexed.tip_hash(), tip);
    assert_eq!(reindexed.store().utxo_set().unwrap(), utxos);
    assert_utxo_set_matches_replay(&reindexed);
    assert_eq!(reports.last(), Some(&(blocks.len() + 1, blocks.len() + 1)));
    assert_eq!(reindexed.index().len(), blocks.len() + 1);
}

#[test]
fn clearing_the_chain_state_keeps_only_the_block_bodies() {
    let blocks = workload(30, 2, false, 9);
    let now = Harness::new().now;
    let mut chain = Chain::open(unit_params(), MemoryStore::new()).unwrap();
    for block in &blocks {
        chain.process_block(block.clone(), now).unwrap();
    }
    let mut store = chain.store().clone();
    store.clear_chain_state().unwrap();
    assert_eq!(store.tip().unwrap(), None);
    assert!(store.utxo_set().unwrap().is_empty());
    assert!(store.index_entries().unwrap().is_empty());
    assert_eq!(store.hash_at_height(1).unwrap(), None);
    for block in &blocks {
        assert!(store.block(&block.block_hash()).unwrap().is_some());
    }
}
