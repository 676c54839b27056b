//! Unspent transaction outputs ("coins"), undo data, and a copy-on-write view over a store.

use std::collections::HashMap;

use bincode::{Decode, Encode};

use crate::error::StoreError;
use crate::transaction::{OutPoint, TxOut};

/// An unspent output with the facts validation needs about where it came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Coin {
    /// The output.
    pub output: TxOut,
    /// Height of the block that created it.
    pub height: u32,
    /// Whether a coinbase created it (and so it must mature before being spent).
    pub is_coinbase: bool,
}

/// What is needed to disconnect a block: the coins its inputs spent, in input order
/// (transaction by transaction, coinbase excluded).
#[derive(Clone, PartialEq, Eq, Debug, Default, Encode, Decode)]
pub struct BlockUndo {
    /// The spent coins.
    pub spent: Vec<Coin>,
}

/// Read access to a UTXO set.
pub trait UtxoReader {
    /// The unspent coin at `outpoint`, if any.
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError>;
}

/// Changes to a UTXO set: `Some` adds or replaces a coin, `None` removes it.
pub type UtxoDiff = HashMap<OutPoint, Option<Coin>>;

/// A view of a UTXO set with pending changes layered on top.
#[derive(Debug)]
pub struct CoinView<'a, R: ?Sized> {
    base: &'a R,
    changes: UtxoDiff,
}

impl<'a, R: UtxoReader + ?Sized> CoinView<'a, R> {
    /// A view with no changes yet.
    pub fn new(base: &'a R) -> Self {
        Self {
            base,
            changes: UtxoDiff::new(),
        }
    }

    /// Removes and returns the coin at `outpoint`, or `None` if there is none (never created or
    /// already spent).
    pub fn spend(&mut self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        let coin = match self.changes.get(outpoint) {
            Some(change) => *change,
            None => self.base.coin(outpoint)?,
        };
        if coin.is_some() {
            self.changes.insert(*outpoint, None);
        }
        Ok(coin)
    }

    /// Adds (or restores) a coin.
    pub fn add(&mut self, outpoint: OutPoint, coin: Coin) {
        self.changes.insert(outpoint, Some(coin));
    }

    /// Removes a coin without reading it.
    pub fn remove(&mut self, outpoint: OutPoint) {
        self.changes.insert(outpoint, None);
    }

    /// The pending changes.
    pub fn into_changes(self) -> UtxoDiff {
        self.changes
    }
}
