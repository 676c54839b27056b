//! Answers to sync requests and block locators, read from the chain store. These run on
//! blocking threads: the store is RocksDB.

use quarry_chain::{Block, BlockHash, BlockHeader, BlockStatus, ChainReader, StoreError};

use crate::protocol::{MAX_HEADERS, MAX_LOCATOR_HASHES, RESPONSE_SOFT_LIMIT};

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

/// The best chain's tip height in `store`.
fn tip_height<S: ChainReader>(store: &S) -> Result<u32, StoreError> {
    let tip = store
        .tip()?
        .ok_or_else(|| corrupt("no tip recorded".into()))?;
    Ok(store
        .index_entry(&tip)?
        .ok_or_else(|| corrupt(format!("tip {tip} has no index entry")))?
        .height)
}

/// A block locator of the best chain: the ten latest blocks, then exponentially sparser ones,
/// always ending with the genesis block (as Bitcoin Core's `GetLocator`).
pub fn locator<S: ChainReader>(store: &S) -> Result<Vec<BlockHash>, StoreError> {
    let mut height = i64::from(tip_height(store)?);
    let mut step = 1;
    let mut hashes = Vec::new();
    while height > 0 && hashes.len() < MAX_LOCATOR_HASHES - 1 {
        let at = u32::try_from(height).expect("height is positive and came from a u32");
        if let Some(hash) = store.hash_at_height(at)? {
            hashes.push(hash);
        }
        if hashes.len() >= 10 {
            step *= 2;
        }
        height -= step;
    }
    let genesis = store
        .hash_at_height(0)?
        .ok_or_else(|| corrupt("no genesis block on the best chain".into()))?;
    hashes.push(genesis);
    Ok(hashes)
}

/// Headers of the best chain after the first `locator` hash on it (after genesis if none is),
/// at most [`MAX_HEADERS`].
pub fn headers_after<S: ChainReader>(
    store: &S,
    locator: &[BlockHash],
) -> Result<Vec<BlockHeader>, StoreError> {
    let mut fork = 0;
    for hash in locator {
        if let Some(entry) = store.index_entry(hash)? {
            if store.hash_at_height(entry.height)? == Some(*hash) {
                fork = entry.height;
                break;
            }
        }
    }
    let mut headers = Vec::new();
    let mut height = fork;
    while headers.len() < MAX_HEADERS {
        height += 1;
        let Some(hash) = store.hash_at_height(height)? else {
            break;
        };
        let entry = store
            .index_entry(&hash)?
            .ok_or_else(|| corrupt(format!("best-chain block {hash} has no index entry")))?;
        headers.push(entry.header);
    }
    Ok(headers)
}

/// The bodies of `hashes`, in order, stopping at the first one not stored or not validated, or
/// once the response reaches [`RESPONSE_SOFT_LIMIT`] bytes. Only blocks that connected (every
/// rule checked) and are not since found invalid are served, as Bitcoin Core's
/// `BlockRequestAllowed`: a node never passes on a block it has not validated.
pub fn blocks<S: ChainReader>(store: &S, hashes: &[BlockHash]) -> Result<Vec<Block>, StoreError> {
    let mut blocks = Vec::new();
    let mut bytes = 0;
    for hash in hashes {
        if bytes >= RESPONSE_SOFT_LIMIT {
            break;
        }
        let validated = store
            .index_entry(hash)?
            .is_some_and(|entry| entry.status == BlockStatus::Valid);
        if !validated {
            break;
        }
        let Some(block) = store.block(hash)? else {
            break;
        };
        bytes += block.encoded_size();
        blocks.push(block);
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use quarry_chain::testing::Harness;

    use super::*;

    #[test]
    fn locator_is_dense_near_the_tip_and_ends_at_genesis() {
        let mut harness = Harness::new();
        let blocks = harness.mine_empty(100);
        let store = harness.chain.store();
        let locator = locator(store).unwrap();
        let expected_heights: Vec<u32> = vec![
            100, 99, 98, 97, 96, 95, 94, 93, 92, 91, 89, 85, 77, 61, 29, 0,
        ];
        let heights: Vec<u32> = locator
            .iter()
            .map(|hash| store.index_entry(hash).unwrap().unwrap().height)
            .collect();
        assert_eq!(heights, expected_heights);
        assert_eq!(locator[0], blocks[99].block_hash());
    }

    #[test]
    fn headers_follow_the_fork_point_and_blocks_stop_at_unknown() {
        let mut harness = Harness::new();
        let blocks = harness.mine_empty(30);
        let store = harness.chain.store();
        // A locator whose first hash is unknown, the second on the chain at height 10.
        let locator = [BlockHash::ZERO, blocks[9].block_hash()];
        let headers = headers_after(store, &locator).unwrap();
        assert_eq!(headers.len(), 20);
        assert_eq!(headers[0], blocks[10].header);
        assert_eq!(headers[19], blocks[29].header);
        // Nothing known: everything after genesis.
        assert_eq!(headers_after(store, &[BlockHash::ZERO]).unwrap().len(), 30);
        // Up to date: nothing.
        assert!(headers_after(store, &[blocks[29].block_hash()])
            .unwrap()
            .is_empty());

        let wanted = [
            blocks[3].block_hash(),
            BlockHash::ZERO,
            blocks[4].block_hash(),
        ];
        assert_eq!(
            super::blocks(store, &wanted).unwrap(),
            vec![blocks[3].clone()]
        );
    }

    #[test]
    fn blocks_never_validated_or_found_invalid_are_not_served() {
        let mut harness = Harness::new();
        let genesis = harness.genesis();
        let main = harness.mine_empty(2);
        // A side block with less work than the tip: stored, never connected.
        let side = harness.block_on(genesis, Vec::new());
        harness.submit(side.clone()).unwrap();
        let store = harness.chain.store();
        assert!(store.block(&side.block_hash()).unwrap().is_some());
        assert!(super::blocks(store, &[side.block_hash()])
            .unwrap()
            .is_empty());
        assert_eq!(
            super::blocks(store, &[main[0].block_hash()]).unwrap().len(),
            1
        );
        harness
            .chain
            .invalidate_block(main[1].block_hash())
            .unwrap();
        let store = harness.chain.store();
        assert_eq!(
            super::blocks(store, &[main[0].block_hash(), main[1].block_hash()]).unwrap(),
            vec![main[0].clone()]
        );
    }

    #[test]
    fn headers_are_capped() {
        let mut harness = Harness::new();
        harness.mine_empty(MAX_HEADERS + 5);
        let headers = headers_after(harness.chain.store(), &[]).unwrap();
        assert_eq!(headers.len(), MAX_HEADERS);
    }
}
