//! Crash safety of the RocksDB store. A child process (this test binary running the ignored
//! `writer_child` test) feeds a workload of blocks with reorganisations to the chain actor;
//! the parent kills it with SIGKILL at random moments, or limits the size of the files it may
//! write, and checks after every reopen that the UTXO set equals a replay from genesis along
//! the stored best chain.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quarry_chain::encode::{decode, encode};
use quarry_chain::testing::assert_utxo_set_matches_replay;
use quarry_chain::testing::{unit_params, workload, Harness};
use quarry_store::RocksStore;
use std::collections::BTreeMap;

use quarry_chain::{
    actor, Block, BlockHash, BlockHeader, BlockUndo, Chain, ChainBatch, ChainError, ChainReader,
    ChainWriter, Coin, IndexEntry, MemoryStore, OutPoint, StoreError, UtxoReader,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DB_VAR: &str = "QUARRY_CRASH_DB";
const BLOCKS_VAR: &str = "QUARRY_CRASH_BLOCKS";
const STORE_FAILED: &str = "child: store failed:";
const STOPPED_CLEANLY: &str = "child: actor stopped cleanly";
const ALL_SUBMITTED: &str = "child: all blocks submitted";

fn write_blocks(path: &Path, blocks: &[Block]) {
    let mut file = std::fs::File::create(path).unwrap();
    for block in blocks {
        let bytes = encode(block);
        file.write_all(&(bytes.len() as u32).to_le_bytes()).unwrap();
        file.write_all(&bytes).unwrap();
    }
}

fn read_blocks(path: &Path) -> Vec<Block> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let mut blocks = Vec::new();
    let mut rest = bytes.as_slice();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let (block, tail) = tail.split_at(u32::from_le_bytes(*len) as usize);
        blocks.push(decode(block).unwrap());
        rest = tail;
    }
    blocks
}

/// The writer process: submits every block of the workload file to a chain actor over the
/// database, skipping what is already stored. A storage failure must stop the actor cleanly.
#[test]
#[ignore = "run as a child process by the crash tests"]
fn writer_child() {
    let db = std::env::var_os(DB_VAR).expect("database path");
    let blocks = read_blocks(Path::new(
        &std::env::var_os(BLOCKS_VAR).expect("blocks file"),
    ));
    let store = Arc::new(RocksStore::open(Path::new(&db)).unwrap());
    let chain = Chain::open(unit_params(), store).unwrap();
    let now = Harness::new().now;
    let service = actor::spawn(chain, Box::new(move || now)).unwrap();
    for block in blocks {
        match service.handle.submit_block(block.clone()) {
            Ok(_) => {}
            Err(ChainError::Store(error)) => {
                println!("{STORE_FAILED} {error}");
                assert!(matches!(
                    service.handle.submit_block(block),
                    Err(ChainError::Stopped)
                ));
                assert!(service.thread.join().unwrap().is_err());
                println!("{STOPPED_CLEANLY}");
                return;
            }
            Err(other) => panic!("a workload block was refused: {other}"),
        }
    }
    service.handle.shutdown();
    service.thread.join().unwrap().unwrap();
    println!("{ALL_SUBMITTED}");
}

/// A `writer_child` process; `file_size_limit_kib` runs it under `ulimit -f` with SIGXFSZ
/// ignored, so writes past the limit fail with an I/O error as on a full disk.
fn writer(db: &Path, blocks: &Path, file_size_limit_kib: Option<u32>) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut command = match file_size_limit_kib {
        None => Command::new(exe),
        Some(limit) => {
            let mut shell = Command::new("bash");
            shell
                .arg("-c")
                .arg(format!(
                    "trap '' XFSZ; ulimit -f {limit}; exec \"$0\" \"$@\""
                ))
                .arg(exe);
            shell
        }
    };
    command
        .args(["--ignored", "--exact", "writer_child", "--nocapture"])
        .env(DB_VAR, db)
        .env(BLOCKS_VAR, blocks);
    command
}

fn run_to_end(mut command: Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "writer failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The tip a node reaches after receiving `blocks` in order.
fn expected_tip(blocks: &[Block]) -> BlockHash {
    let mut chain = Chain::open(unit_params(), MemoryStore::new()).unwrap();
    for block in blocks {
        chain.process_block(block.clone(), u64::MAX / 2).unwrap();
    }
    chain.tip_hash()
}

/// Reopens the database, checks it against a replay from genesis, and returns its height.
fn reopen_and_check(db: &Path) -> Chain<RocksStore> {
    let chain = Chain::open(unit_params(), RocksStore::open(db).unwrap()).unwrap();
    assert_utxo_set_matches_replay(&chain);
    chain
}

#[test]
fn a_writer_killed_at_random_moments_reopens_to_a_consistent_state() {
    let work = tempfile::tempdir().unwrap();
    let blocks_file = work.path().join("blocks");
    let blocks = workload(1000, 3, true, 2026);
    write_blocks(&blocks_file, &blocks);
    let db = work.path().join("db");

    // One uninterrupted run measures how long the whole workload takes.
    let started = Instant::now();
    run_to_end(writer(&work.path().join("timing"), &blocks_file, None));
    let full_run = started.elapsed();

    // Twenty kills that land while the writer is storing blocks (kills that find it starting
    // up, or already finished, do not count), each followed by a reopen and a replay check.
    let mut rng = StdRng::seed_from_u64(20);
    let mut kills_mid_write = 0;
    let mut rounds = 0;
    let mut stored_height = 0;
    while kills_mid_write < 20 {
        rounds += 1;
        assert!(
            rounds <= 100,
            "only {kills_mid_write} kills in {rounds} rounds hit a write"
        );
        let mut child: Child = writer(&db, &blocks_file, None)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs_f64(
            rng.random_range(0.0..full_run.as_secs_f64()),
        ));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap();
        child.wait().unwrap();
        let height = reopen_and_check(&db).tip_height();
        if finished {
            // Start the next rounds from an empty store again.
            std::fs::remove_dir_all(&db).unwrap();
            stored_height = 0;
        } else if height != stored_height {
            kills_mid_write += 1;
            stored_height = height;
        }
    }
    // Nothing was lost: resuming reaches the workload's tip.
    run_to_end(writer(&db, &blocks_file, None));
    assert_eq!(reopen_and_check(&db).tip_hash(), expected_tip(&blocks));
}

#[test]
fn a_full_disk_stops_the_writer_cleanly_and_loses_nothing_stored() {
    let work = tempfile::tempdir().unwrap();
    let blocks_file = work.path().join("blocks");
    let blocks = workload(600, 3, true, 4);
    write_blocks(&blocks_file, &blocks);
    let db = work.path().join("db");

    let output = run_to_end(writer(&db, &blocks_file, Some(256)));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(STORE_FAILED) && stdout.contains(STOPPED_CLEANLY),
        "{stdout}"
    );
    let height = reopen_and_check(&db).tip_height();

    assert!(height > 0 && height < 500, "stopped at height {height}");

    // With space again, the same store takes the rest of the workload.
    run_to_end(writer(&db, &blocks_file, None));
    assert_eq!(reopen_and_check(&db).tip_hash(), expected_tip(&blocks));
}

/// A store whose commits start failing after a given number, like a disk that fills up.
#[derive(Debug)]
struct FailingStore {
    inner: MemoryStore,
    commits_left: usize,
}

impl UtxoReader for FailingStore {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        self.inner.coin(outpoint)
    }
}

impl ChainReader for FailingStore {
    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        self.inner.block(hash)
    }
    fn undo(&self, hash: &BlockHash) -> Result<Option<BlockUndo>, StoreError> {
        self.inner.undo(hash)
    }
    fn index_entries(&self) -> Result<Vec<(BlockHash, IndexEntry)>, StoreError> {
        self.inner.index_entries()
    }
    fn index_entry(&self, hash: &BlockHash) -> Result<Option<IndexEntry>, StoreError> {
        self.inner.index_entry(hash)
    }
    fn tip(&self) -> Result<Option<BlockHash>, StoreError> {
        self.inner.tip()
    }
    fn hash_at_height(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        self.inner.hash_at_height(height)
    }
    fn utxo_set(&self) -> Result<BTreeMap<OutPoint, Coin>, StoreError> {
        self.inner.utxo_set()
    }
}

impl ChainWriter for FailingStore {
    fn commit(&mut self, batch: ChainBatch) -> Result<(), StoreError> {
        if self.commits_left == 0 {
            return Err(StoreError::Corrupt {
                what: "simulated write failure".into(),
            });
        }
        self.commits_left -= 1;
        self.inner.commit(batch)
    }

    fn stored_headers(&self) -> Result<Vec<BlockHeader>, StoreError> {
        self.inner.stored_headers()
    }

    fn clear_chain_state(&mut self) -> Result<(), StoreError> {
        self.inner.clear_chain_state()
    }
}

#[test]
fn a_reorganisation_cut_at_any_commit_is_finished_on_reopen() {
    let mut builder = Harness::new();
    let genesis = builder.genesis();
    let first = builder.mine(Vec::new());
    let coin = Harness::coinbase_coin(&first);
    let mut main = vec![first];
    main.extend(builder.mine_empty(3));
    main.push(builder.mine(vec![builder.spend(&coin, 1, 40_000)]));
    let mut fork = Vec::new();
    let mut parent = genesis;
    for _ in 0..=main.len() {
        let block = builder.block_on(parent, Vec::new());
        parent = block.block_hash();
        let _ = builder.submit(block.clone());
        fork.push(block);
    }
    let best = builder.chain.tip_hash();
    assert_eq!(best, parent);
    let mut before_fork = Chain::open(unit_params(), MemoryStore::new()).unwrap();
    for block in &main {
        before_fork
            .process_block(block.clone(), u64::MAX / 2)
            .unwrap();
    }
    let on_disk = before_fork.store().clone();

    // Commits of the fork: its stored bodies, then the reorganisation's disconnects and connects.
    for allowed in 0..20 {
        let store = FailingStore {
            inner: on_disk.clone(),
            commits_left: allowed,
        };
        let mut chain = Chain::open(unit_params(), store).unwrap();
        let failed = fork
            .iter()
            .map(|block| chain.process_block(block.clone(), u64::MAX / 2))
            .find_map(Result::err);
        if let Some(error) = &failed {
            assert!(matches!(error, ChainError::Store(_)), "{error}");
        }
        let reopened = Chain::open(unit_params(), chain.store().inner.clone()).unwrap();
        assert_utxo_set_matches_replay(&reopened);
        if failed.is_none() || reopened.index().get(&best).is_some() {
            assert_eq!(reopened.tip_hash(), best, "cut after {allowed} commits");
        }
    }
}
