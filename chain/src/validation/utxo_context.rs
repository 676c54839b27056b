//! Rules that need the UTXO set: inputs exist and are mature, amounts balance, the coinbase
//! claims no more than subsidy plus fees, and signatures verify (last, on all cores).

use rayon::prelude::*;

use crate::amount::Amount;
use crate::block::Block;
use crate::error::{BlockError, StoreError, TxError};
use crate::hash::{BlockHash, Txid};
use crate::sighash::{verify, SighashCache};
use crate::transaction::{OutPoint, Transaction, TxOut};
use crate::utxo::{BlockUndo, Coin, CoinView, UtxoDiff, UtxoReader};

/// Why connecting a block failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The block breaks a rule.
    Invalid(BlockError),
    /// The UTXO set could not be read.
    Store(StoreError),
}

impl From<StoreError> for ConnectError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// The effect of connecting a block.
#[derive(Debug)]
pub struct ConnectedBlock {
    /// Changes to apply to the UTXO set.
    pub diff: UtxoDiff,
    /// Undo data for disconnecting the block later.
    pub undo: BlockUndo,
    /// Total fees of the block's transactions.
    pub fees: Amount,
}

/// Everything a block needs from the chain to be connected on top of its parent.
#[derive(Clone, Copy, Debug)]
pub struct ConnectContext {
    /// The block's height.
    pub height: u32,
    /// The subsidy at that height.
    pub subsidy: Amount,
    /// Coinbase maturity depth.
    pub coinbase_maturity: u32,
    /// The network's genesis hash, committed to by every signature.
    pub genesis: BlockHash,
}

/// Validates `block` (already checked in isolation, with `txids`) against the UTXO set in
/// `utxos` and returns its effect. Signatures are checked last, in parallel.
pub fn connect_block<R: UtxoReader + ?Sized>(
    block: &Block,
    txids: &[Txid],
    context: &ConnectContext,
    utxos: &R,
) -> Result<ConnectedBlock, ConnectError> {
    let mut view = CoinView::new(utxos);
    let mut undo = BlockUndo::default();
    let mut fees = Amount::ZERO;
    let mut signature_jobs = Vec::with_capacity(block.transactions.len().saturating_sub(1));
    for (index, (tx, txid)) in block.transactions.iter().zip(txids).enumerate() {
        let invalid = |source| {
            ConnectError::Invalid(BlockError::Transaction {
                index,
                txid: *txid,
                source: Box::new(source),
            })
        };
        if index > 0 {
            let mut spent = Vec::with_capacity(tx.inputs.len());
            for (input_index, input) in tx.inputs.iter().enumerate() {
                let coin = view.spend(&input.prevout)?.ok_or_else(|| {
                    invalid(TxError::MissingOrSpent {
                        index: input_index,
                        outpoint: input.prevout,
                    })
                })?;
                spent.push(coin);
            }
            let fee = check_tx_inputs(tx, &spent, context.height, context.coinbase_maturity)
                .map_err(invalid)?;
            fees = fees
                .checked_add(fee)
                .ok_or(ConnectError::Invalid(BlockError::FeesOverflow))?;
            signature_jobs.push((index, spent.iter().map(|coin| coin.output).collect()));
            undo.spent.extend(spent);
        }
        for (vout, output) in tx.outputs.iter().enumerate() {
            let coin = Coin {
                output: *output,
                height: context.height,
                is_coinbase: index == 0,
            };
            view.add(outpoint(*txid, vout), coin);
        }
    }
    let coinbase = block
        .transactions
        .first()
        .ok_or(ConnectError::Invalid(BlockError::NoTransactions))?;
    check_coinbase_value(coinbase, context.subsidy, fees).map_err(ConnectError::Invalid)?;
    let failure =
        signature_jobs
            .par_iter()
            .find_map_first(|(index, spent): &(usize, Vec<TxOut>)| {
                verify_tx_signatures(&block.transactions[*index], spent, context.genesis)
                    .err()
                    .map(|source| BlockError::Transaction {
                        index: *index,
                        txid: txids[*index],
                        source: Box::new(source),
                    })
            });
    if let Some(error) = failure {
        return Err(ConnectError::Invalid(error));
    }
    Ok(ConnectedBlock {
        diff: view.into_changes(),
        undo,
        fees,
    })
}

/// The UTXO changes that undo `block`: its outputs removed and the coins its inputs spent
/// restored, walking transactions backwards so in-block spends cancel out.
pub fn disconnect_block(block: &Block, undo: &BlockUndo) -> Result<UtxoDiff, StoreError> {
    let spending_inputs: usize = block
        .transactions
        .iter()
        .skip(1)
        .map(|tx| tx.inputs.len())
        .sum();
    if spending_inputs != undo.spent.len() {
        return Err(StoreError::Corrupt {
            what: format!(
                "undo data of block {} holds {} coins for {spending_inputs} inputs",
                block.block_hash(),
                undo.spent.len()
            ),
        });
    }
    let mut diff = UtxoDiff::new();
    let mut restored = undo.spent.iter().rev();
    for (index, tx) in block.transactions.iter().enumerate().rev() {
        let txid = tx.txid();
        for vout in 0..tx.outputs.len() {
            diff.insert(outpoint(txid, vout), None);
        }
        if index > 0 {
            for input in tx.inputs.iter().rev() {
                if let Some(coin) = restored.next() {
                    diff.insert(input.prevout, Some(*coin));
                }
            }
        }
    }
    Ok(diff)
}

/// Rules of a transaction's inputs against the coins they spend (`spent[i]` for input `i`):
/// coinbase outputs are mature, and inputs cover outputs. Returns the fee.
pub fn check_tx_inputs(
    tx: &Transaction,
    spent: &[Coin],
    spend_height: u32,
    coinbase_maturity: u32,
) -> Result<Amount, TxError> {
    for (index, (input, coin)) in tx.inputs.iter().zip(spent).enumerate() {
        if coin.is_coinbase && spend_height.saturating_sub(coin.height) < coinbase_maturity {
            return Err(TxError::ImmatureCoinbase {
                index,
                outpoint: input.prevout,
                coin_height: coin.height,
                spend_height,
                maturity: coinbase_maturity,
            });
        }
    }
    let inputs = Amount::checked_sum(spent.iter().map(|coin| coin.output.value))
        .ok_or(TxError::InputsOverflow)?;
    let outputs = tx.total_output().ok_or(TxError::OutputsOverflow)?;
    inputs
        .checked_sub(outputs)
        .ok_or(TxError::OutputsExceedInputs { inputs, outputs })
}

/// Every input carries a valid Schnorr signature by the key of the output it spends.
pub fn verify_tx_signatures(
    tx: &Transaction,
    spent: &[TxOut],
    genesis: BlockHash,
) -> Result<(), TxError> {
    let cache = SighashCache::new(tx, spent).ok_or(TxError::NoInputs)?;
    for (index, (input, spent_output)) in tx.inputs.iter().zip(spent).enumerate() {
        let sighash = cache.sighash(genesis, index as u32);
        if !verify(&sighash, &input.witness, &spent_output.pubkey) {
            return Err(TxError::BadSignature {
                index,
                outpoint: input.prevout,
            });
        }
    }
    Ok(())
}

/// The coinbase pays out at most the subsidy plus the block's fees.
pub fn check_coinbase_value(
    coinbase: &Transaction,
    subsidy: Amount,
    fees: Amount,
) -> Result<(), BlockError> {
    let paid = coinbase
        .total_output()
        .unwrap_or(Amount::from_sat(u64::MAX));
    let allowed = subsidy.checked_add(fees).ok_or(BlockError::FeesOverflow)?;
    if paid > allowed {
        return Err(BlockError::CoinbaseTooLarge {
            paid,
            subsidy,
            fees,
        });
    }
    Ok(())
}

fn outpoint(txid: Txid, vout: usize) -> OutPoint {
    OutPoint {
        txid,
        vout: vout as u32,
    }
}
