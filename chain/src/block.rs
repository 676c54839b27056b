//! Block headers (Bitcoin's 80-byte layout) and blocks.

use bincode::{Decode, Encode};

use crate::encode::{encode, encoded_len};
use crate::hash::{sha256d, BlockHash, MerkleRoot, Txid};
use crate::pow::{CompactTarget, Work};
use crate::transaction::Transaction;

/// Size of an encoded header.
pub const HEADER_BYTES: usize = 80;

/// A block header: version, previous block hash, merkle root, time, bits and nonce, encoded in
/// exactly Bitcoin's 80-byte layout and hashed with double SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Encode, Decode)]
pub struct BlockHeader {
    /// Block format version.
    pub version: i32,
    /// Hash of the parent block's header.
    pub prev_blockhash: BlockHash,
    /// Merkle root of the block's txids.
    pub merkle_root: MerkleRoot,
    /// Seconds since the Unix epoch, as claimed by the miner.
    pub time: u32,
    /// The target the hash must meet, in compact form.
    pub bits: CompactTarget,
    /// Varied by miners to search for a hash meeting the target.
    pub nonce: u32,
}

impl BlockHeader {
    /// The version new blocks carry.
    pub const CURRENT_VERSION: i32 = 1;

    /// The header's hash, which is the block's identity.
    pub fn block_hash(&self) -> BlockHash {
        BlockHash::from_byte_array(sha256d(&self.to_bytes()))
    }

    /// The work the header claims by its `bits` (none for bits that encode no valid target).
    /// Whether the hash meets them and the retarget rule asks for them is checked elsewhere.
    pub fn work(&self) -> Work {
        self.bits
            .to_target()
            .map_or(Work::ZERO, |target| target.to_work())
    }

    /// The 80 canonical bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_BYTES] {
        let mut bytes = [0u8; HEADER_BYTES];
        bytes.copy_from_slice(&encode(self));
        bytes
    }
}

/// A block: a header and its transactions, coinbase first.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions; the first must be the only coinbase.
    pub transactions: Vec<Transaction>,
}

impl Block {
    /// The block on `prev_blockhash` with `transactions` (the coinbase first), the header
    /// committing to their merkle root, at `time` and `bits`, nonce 0: what a miner searches.
    pub fn assemble(
        prev_blockhash: BlockHash,
        time: u32,
        bits: CompactTarget,
        transactions: Vec<Transaction>,
    ) -> Self {
        let (merkle_root, _) = merkle_root(transactions.iter().map(Transaction::txid).collect());
        Self {
            header: BlockHeader {
                version: BlockHeader::CURRENT_VERSION,
                prev_blockhash,
                merkle_root,
                time,
                bits,
                nonce: 0,
            },
            transactions,
        }
    }

    /// The block's hash (its header's).
    pub fn block_hash(&self) -> BlockHash {
        self.header.block_hash()
    }

    /// The merkle root over the block's txids and whether the tree is mutated (see
    /// [`merkle_root`]).
    pub fn compute_merkle_root(&self) -> (MerkleRoot, bool) {
        merkle_root(self.transactions.iter().map(Transaction::txid).collect())
    }

    /// The size of the canonical encoding in bytes.
    pub fn encoded_size(&self) -> usize {
        encoded_len(self)
    }
}

/// Bitcoin's merkle root over `txids`, duplicating the last hash of odd-length levels, and
/// whether the tree is "mutated": some level holds two equal adjacent hashes. Such a tree has
/// the same root as a different transaction list (CVE-2012-2459), so a mutated block is refused
/// as malformed rather than marked invalid. (The other merkle weakness, 64-byte transactions
/// passing as inner nodes, cannot arise: every transaction encodes to more than 64 bytes.)
pub fn merkle_root(txids: Vec<Txid>) -> (MerkleRoot, bool) {
    let mut level: Vec<[u8; 32]> = txids.into_iter().map(Txid::to_byte_array).collect();
    if level.is_empty() {
        return (MerkleRoot::ZERO, false);
    }
    let mut mutated = false;
    while level.len() > 1 {
        mutated |= level.chunks_exact(2).any(|pair| pair[0] == pair[1]);
        if level.len() % 2 == 1 {
            level.push(level[level.len() - 1]);
        }
        level = level
            .chunks_exact(2)
            .map(|pair| {
                let mut joined = [0u8; 64];
                joined[..32].copy_from_slice(&pair[0]);
                joined[32..].copy_from_slice(&pair[1]);
                sha256d(&joined)
            })
            .collect();
    }
    (MerkleRoot::from_byte_array(level[0]), mutated)
}
