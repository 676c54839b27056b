//! Replay checks: the UTXO set a chain holds against the one its best chain produces when
//! connected again, block by block, from genesis.

use std::collections::BTreeMap;

use crate::chain::{Acceptance, Chain};
use crate::store::{ChainReader, ChainWriter, MemoryStore};
use crate::transaction::OutPoint;
use crate::utxo::Coin;

/// The UTXO set obtained by connecting the best chain's blocks, as stored, in order, to a
/// fresh in-memory chain; checks the replay reaches the same tip.
pub fn replayed_utxo_set<S: ChainReader + ChainWriter>(
    chain: &Chain<S>,
) -> BTreeMap<OutPoint, Coin> {
    let mut replay = Chain::open(chain.params().clone(), MemoryStore::new()).unwrap();
    for height in 1..=chain.tip_height() {
        let hash = chain.store().hash_at_height(height).unwrap().unwrap();
        assert_eq!(chain.hash_at_height(height), Some(hash));
        let block = chain.store().block(&hash).unwrap().unwrap();
        assert_eq!(
            replay.process_block(block, u64::MAX / 2).unwrap(),
            Acceptance::Accepted
        );
    }
    assert_eq!(replay.tip_hash(), chain.tip_hash());
    replay.store().utxo_set().unwrap()
}

/// Asserts the chain's UTXO set equals the replay of its best chain from genesis.
pub fn assert_utxo_set_matches_replay<S: ChainReader + ChainWriter>(chain: &Chain<S>) {
    assert_eq!(chain.store().utxo_set().unwrap(), replayed_utxo_set(chain));
}
