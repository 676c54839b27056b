//! Rules checked on a block or transaction alone.

use std::collections::HashSet;

use rayon::prelude::*;

use crate::block::{Block, BlockHeader};
use crate::encode::MAX_BLOCK_BYTES;
use crate::error::{BlockError, TxError};
use crate::hash::Txid;
use crate::pow::{PowCheck, PowMode};
use crate::transaction::{Transaction, COINBASE_PREFIX_BYTES, MAX_WITNESS_BYTES, SIGNATURE_BYTES};

/// All context-free block rules, cheapest first. Returns the txids, computed once.
pub fn check_block(block: &Block, pow: PowCheck) -> Result<Vec<Txid>, BlockError> {
    check_proof_of_work(&block.header, pow)?;
    check_block_size(block)?;
    let txids: Vec<Txid> = block
        .transactions
        .par_iter()
        .map(Transaction::txid)
        .collect();
    check_merkle_root(block, &txids)?;
    check_coinbase_position(block, &txids)?;
    let failure = block
        .transactions
        .par_iter()
        .enumerate()
        .find_map_first(|(index, tx)| {
            check_transaction(tx)
                .err()
                .map(|source| BlockError::Transaction {
                    index,
                    txid: txids[index],
                    source: Box::new(source),
                })
        });
    failure.map_or(Ok(txids), Err)
}

/// The header's `bits` decode to a valid target no easier than the network's limit, and the
/// header hash meets that target (with real proof of work).
pub fn check_proof_of_work(header: &BlockHeader, pow: PowCheck) -> Result<(), BlockError> {
    let bits = header.bits;
    let target = bits
        .to_target()
        .filter(|target| *target <= pow.limit)
        .ok_or(BlockError::BadTarget { bits })?;
    let hash = header.block_hash();
    if pow.mode == PowMode::Real && !target.is_met_by(hash) {
        return Err(BlockError::InsufficientProofOfWork { hash, bits });
    }
    Ok(())
}

/// The block encodes to at most [`MAX_BLOCK_BYTES`] and has at least one transaction.
pub fn check_block_size(block: &Block) -> Result<(), BlockError> {
    if block.transactions.is_empty() {
        return Err(BlockError::NoTransactions);
    }
    let size = block.encoded_size();
    if size > MAX_BLOCK_BYTES {
        return Err(BlockError::TooLarge {
            size,
            max: MAX_BLOCK_BYTES,
        });
    }
    Ok(())
}

/// The header's merkle root is the root of the txids, and the tree is not mutated
/// (CVE-2012-2459).
pub fn check_merkle_root(block: &Block, txids: &[Txid]) -> Result<(), BlockError> {
    let (computed, mutated) = crate::block::merkle_root(txids.to_vec());
    if computed != block.header.merkle_root {
        return Err(BlockError::BadMerkleRoot {
            header: block.header.merkle_root,
            computed,
        });
    }
    if mutated {
        return Err(BlockError::MutatedMerkleTree);
    }
    Ok(())
}

/// The first transaction is a coinbase and no other is.
pub fn check_coinbase_position(block: &Block, txids: &[Txid]) -> Result<(), BlockError> {
    let first = block
        .transactions
        .first()
        .ok_or(BlockError::NoTransactions)?;
    if !first.is_coinbase() {
        return Err(BlockError::FirstNotCoinbase { txid: first.txid() });
    }
    match block
        .transactions
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, tx)| tx.is_coinbase())
    {
        Some((index, tx)) => Err(BlockError::ExtraCoinbase {
            index,
            txid: txids.get(index).copied().unwrap_or_else(|| tx.txid()),
        }),
        None => Ok(()),
    }
}

/// Rules of a transaction alone: inputs and outputs present, size, each output and their sum
/// within the money supply, no outpoint spent twice, and well-formed witnesses (coinbase data of
/// 12 to 100 bytes; otherwise a 64-byte signature and a non-null prevout).
pub fn check_transaction(tx: &Transaction) -> Result<(), TxError> {
    if tx.inputs.is_empty() {
        return Err(TxError::NoInputs);
    }
    if tx.outputs.is_empty() {
        return Err(TxError::NoOutputs);
    }
    let size = tx.encoded_size();
    if size > MAX_BLOCK_BYTES {
        return Err(TxError::TooLarge {
            size,
            max: MAX_BLOCK_BYTES,
        });
    }
    if let Some((index, output)) = tx
        .outputs
        .iter()
        .enumerate()
        .find(|(_, output)| !output.value.is_within_money_range())
    {
        return Err(TxError::OutputTooLarge {
            index,
            value: output.value,
        });
    }
    tx.total_output().ok_or(TxError::OutputsOverflow)?;
    if tx.is_coinbase() {
        let len = tx.inputs[0].witness.len();
        if !(COINBASE_PREFIX_BYTES..=MAX_WITNESS_BYTES).contains(&len) {
            return Err(TxError::BadCoinbaseWitness { len });
        }
        return Ok(());
    }
    let mut seen = HashSet::with_capacity(tx.inputs.len());
    for (index, input) in tx.inputs.iter().enumerate() {
        if input.prevout.is_null() {
            return Err(TxError::NullPrevout { index });
        }
        if !seen.insert(input.prevout) {
            return Err(TxError::DuplicateInput {
                index,
                outpoint: input.prevout,
            });
        }
        if input.witness.len() != SIGNATURE_BYTES {
            return Err(TxError::BadWitnessLength {
                index,
                len: input.witness.len(),
            });
        }
    }
    Ok(())
}
