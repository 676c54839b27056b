//! The chain on RocksDB: the same behaviour as in memory, state that survives reopening, and
//! clear errors for databases it must not use.

use quarry_chain::testing::{assemble_block, Spendable};
use quarry_chain::testing::{unit_params, Harness};
use quarry_chain::{Block, Chain, ChainError, ChainParams, ChainReader, StoreError};
use quarry_store::RocksStore;

fn open(dir: &std::path::Path, params: ChainParams) -> Result<Chain<RocksStore>, ChainError> {
    Chain::open(params, RocksStore::open(dir)?)
}

/// Builds blocks with an in-memory harness: a main branch with spends, and a longer fork.
fn blocks_with_a_reorg() -> (Vec<Block>, Vec<Block>) {
    let mut builder = Harness::new();
    let genesis = builder.genesis();
    let first = builder.mine(Vec::new());
    let mut main = vec![first.clone()];
    main.extend(builder.mine_empty(3));
    let coin: Spendable = Harness::coinbase_coin(&first);
    main.push(builder.mine(vec![builder.spend(&coin, 1, 10_000)]));
    main.extend(builder.mine_empty(2));
    // A fork from height 3, two blocks longer than the main branch.
    let mut fork: Vec<Block> = Vec::new();
    let fork_parent = main[2].block_hash();
    for _ in 0..6 {
        let parent = fork.last().map_or(fork_parent, Block::block_hash);
        let template = builder.template_on(parent);
        let block = assemble_block(&template, Vec::new()).unwrap();
        let _ = builder.submit(block.clone());
        fork.push(block);
    }
    let _ = genesis;
    (main, fork)
}

#[test]
fn the_chain_on_rocksdb_reorganises_and_reopens_to_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let (main, fork) = blocks_with_a_reorg();
    let now = u64::MAX / 2;
    {
        let mut chain = open(dir.path(), unit_params()).unwrap();
        for block in &main {
            chain.process_block(block.clone(), now).unwrap();
        }
        assert_eq!(chain.tip_hash(), main.last().unwrap().block_hash());
    }
    let mut chain = open(dir.path(), unit_params()).unwrap();
    assert_eq!(chain.tip_hash(), main.last().unwrap().block_hash());
    for block in &fork {
        chain.process_block(block.clone(), now).unwrap();
    }
    assert_eq!(chain.tip_hash(), fork.last().unwrap().block_hash());
    let utxos = chain.store().utxo_set().unwrap();
    drop(chain);

    let reopened = open(dir.path(), unit_params()).unwrap();
    assert_eq!(reopened.tip_hash(), fork.last().unwrap().block_hash());
    assert_eq!(reopened.tip_height(), 9);
    assert_eq!(reopened.store().utxo_set().unwrap(), utxos);

    // The same blocks in memory give the same UTXO set.
    let mut memory = Harness::new();
    for block in main.iter().chain(&fork) {
        let _ = memory.chain.process_block(block.clone(), now);
    }
    assert_eq!(memory.chain.store().utxo_set().unwrap(), utxos);
    for height in 0..=9 {
        assert_eq!(
            reopened.store().hash_at_height(height).unwrap(),
            memory.chain.hash_at_height(height)
        );
    }
}

#[test]
fn a_database_of_another_format_version_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    drop(RocksStore::open(dir.path()).unwrap());
    {
        let mut options = rocksdb::Options::default();
        options.create_missing_column_families(true);
        let names = rocksdb::DB::list_cf(&options, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&options, dir.path(), &names).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        db.put_cf(meta, b"format_version", 99u32.to_le_bytes())
            .unwrap();
    }
    let error = RocksStore::open(dir.path()).unwrap_err();
    assert!(matches!(
        error,
        StoreError::FormatVersion {
            found: 99,
            expected: 1
        }
    ));
    let message = error.to_string();
    assert!(
        message.contains("version 99") && message.contains("version 1"),
        "{message}"
    );
}

#[test]
fn a_database_of_another_network_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), unit_params()).unwrap());
    let error = open(dir.path(), ChainParams::regtest()).unwrap_err();
    assert!(
        matches!(&error, ChainError::OtherNetwork { network, found, .. }
            if network == "regtest" && *found == unit_params().genesis_hash()),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("another network"), "{message}");
    assert!(!message.contains("corrupt"), "{message}");
}

#[test]
fn a_second_opener_of_a_database_in_use_gets_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = RocksStore::open(dir.path()).unwrap();
    let error = RocksStore::open(dir.path()).unwrap_err();
    assert!(error.to_string().contains("lock"), "{error}");
}

#[test]
fn corrupt_records_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), unit_params()).unwrap());
    {
        let mut options = rocksdb::Options::default();
        options.create_missing_column_families(true);
        let names = rocksdb::DB::list_cf(&options, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&options, dir.path(), &names).unwrap();
        let index = db.cf_handle("block_index").unwrap();
        db.put_cf(index, [7u8; 32], b"not an index entry").unwrap();
    }
    let error = open(dir.path(), unit_params()).unwrap_err();
    assert!(
        matches!(error, ChainError::Store(StoreError::Corrupt { .. })),
        "{error}"
    );
}

/// Bytes of disk the files under `dir` occupy (allocated blocks, not their lengths: RocksDB
/// reserves its log files with fallocate).
fn allocated_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let metadata = entry.unwrap().metadata().unwrap();
            if metadata.is_dir() {
                0
            } else {
                metadata.blocks() * 512
            }
        })
        .sum()
}

#[test]
fn a_fresh_store_reserves_little_disk() {
    // RocksDB reserved each new write-ahead log at 1.1 × its 64 MiB write buffer: 70 MiB per
    // store before its first block, which bounded how many nodes a machine's testnet held.
    let dir = tempfile::tempdir().unwrap();
    let mut chain = open(dir.path(), unit_params()).unwrap();
    let (main, _) = blocks_with_a_reorg();
    for block in &main {
        chain.process_block(block.clone(), u64::MAX / 2).unwrap();
    }
    let allocated = allocated_bytes(dir.path());
    assert!(
        allocated < 24 << 20,
        "a store of {} blocks occupies {allocated} bytes",
        main.len()
    );
}
