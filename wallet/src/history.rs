//! The wallet's history as a pure function of what the node reports (confirmed lines of the
//! address index, pending mempool deltas) and what the wallet file remembers (transactions sent
//! or seen before), so every status a user can see is tested without a node.

use std::collections::BTreeMap;

use quarry_chain::Txid;

/// Where a transaction stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    /// In a block of the best chain.
    Confirmed(u32),
    /// In the node's mempool.
    Unconfirmed,
    /// Replaced by a fee bump.
    Replaced(Txid),
    /// Out of the chain and mempool because another transaction spent one of its inputs
    /// (after a reorganisation, or a double spend).
    Conflicted,
    /// Out of the chain and mempool with its inputs still unspent (evicted or never relayed).
    Dropped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Confirmed(_) => f.write_str("confirmed"),
            Self::Unconfirmed => f.write_str("unconfirmed"),
            Self::Replaced(by) => write!(f, "replaced by {by}"),
            Self::Conflicted => f.write_str("conflicted"),
            Self::Dropped => f.write_str("dropped"),
        }
    }
}

/// One line of the history.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HistoryEntry {
    /// The transaction.
    pub txid: Txid,
    /// Where it stands.
    pub status: Status,
    /// What it did to the balance, in sats.
    pub net_sats: i64,
    /// Its block, when confirmed.
    pub block: Option<InBlock>,
}

/// Where a confirmed transaction is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InBlock {
    /// The block's height.
    pub height: u32,
    /// The block's timestamp (Unix seconds).
    pub time: u32,
}

/// One line of the node's address history: a confirmed transaction's effect on one address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ConfirmedLine {
    /// The transaction.
    pub txid: Txid,
    /// Confirmations of its block.
    pub confirmations: u32,
    /// Its block.
    pub block: InBlock,
    /// What it did to the address, in sats.
    pub net_sats: i64,
}

/// A transaction the wallet file remembers, sent by it or seen paying it.
#[derive(Clone, Copy, Debug)]
pub struct Remembered<'a> {
    /// The transaction.
    pub txid: Txid,
    /// Its bytes, hex.
    pub hex: &'a str,
    /// What it did to the balance, in sats.
    pub net_sats: i64,
    /// The fee bump that replaced it, if the wallet made one.
    pub replaced_by: Option<Txid>,
}

/// The transactions the node knows: `confirmed` address-history lines summed per transaction
/// (one line per address it touches), then the `pending` net sats of mempool transactions,
/// which are unconfirmed.
pub fn reported(
    confirmed: impl IntoIterator<Item = ConfirmedLine>,
    pending: impl IntoIterator<Item = (Txid, i64)>,
) -> BTreeMap<Txid, HistoryEntry> {
    let mut entries: BTreeMap<Txid, HistoryEntry> = BTreeMap::new();
    for line in confirmed {
        let entry = entries.entry(line.txid).or_insert(HistoryEntry {
            txid: line.txid,
            status: Status::Confirmed(line.confirmations),
            net_sats: 0,
            block: Some(line.block),
        });
        entry.net_sats += line.net_sats;
    }
    for (txid, net_sats) in pending {
        let entry = HistoryEntry {
            txid,
            status: Status::Unconfirmed,
            net_sats,
            block: None,
        };
        entries.insert(txid, entry);
    }
    entries
}

/// The history, newest first: pending, then confirmed by depth, then remembered transactions
/// the node no longer has: replaced (when the node has their replacement), conflicted (when
/// `inputs_spent` says another transaction spent one of their inputs) or dropped.
pub fn classify<E>(
    mut reported: BTreeMap<Txid, HistoryEntry>,
    remembered: &[Remembered<'_>],
    mut inputs_spent: impl FnMut(&str) -> Result<bool, E>,
) -> Result<Vec<HistoryEntry>, E> {
    for old in remembered {
        if reported.contains_key(&old.txid) {
            continue;
        }
        let status = match old.replaced_by {
            Some(by) if reported.contains_key(&by) => Status::Replaced(by),
            _ if inputs_spent(old.hex)? => Status::Conflicted,
            _ => Status::Dropped,
        };
        let entry = HistoryEntry {
            txid: old.txid,
            status,
            net_sats: old.net_sats,
            block: None,
        };
        reported.insert(old.txid, entry);
    }
    let mut history: Vec<HistoryEntry> = reported.into_values().collect();
    history.sort_by_key(|entry| match entry.status {
        Status::Unconfirmed => (0, 0),
        Status::Confirmed(confirmations) => (1, confirmations),
        _ => (2, 0),
    });
    Ok(history)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    fn txid(n: u8) -> Txid {
        Txid::from_byte_array([n; 32])
    }

    /// A line of transaction `n` at `confirmations` below a tip at height 10.
    fn line(n: u8, confirmations: u32, net_sats: i64) -> ConfirmedLine {
        ConfirmedLine {
            txid: txid(n),
            confirmations,
            block: InBlock {
                height: 11 - confirmations,
                time: 1_700_000_000,
            },
            net_sats,
        }
    }

    fn remembered(n: u8, net_sats: i64, replaced_by: Option<u8>) -> Remembered<'static> {
        Remembered {
            txid: txid(n),
            hex: if n.is_multiple_of(2) {
                "spent"
            } else {
                "unspent"
            },
            net_sats,
            replaced_by: replaced_by.map(txid),
        }
    }

    #[test]
    fn lines_of_one_transaction_add_up_and_the_mempool_marks_it_unconfirmed() {
        let reported = reported(
            [line(1, 3, 500), line(1, 3, -200), line(2, 1, 7)],
            [(txid(3), -40)],
        );
        let summary = |n| {
            let entry = &reported[&txid(n)];
            (
                entry.status,
                entry.net_sats,
                entry.block.map(|block| block.height),
            )
        };
        assert_eq!(summary(1), (Status::Confirmed(3), 300, Some(8)));
        assert_eq!(summary(2), (Status::Confirmed(1), 7, Some(10)));
        assert_eq!(summary(3), (Status::Unconfirmed, -40, None));
    }

    #[test]
    fn remembered_transactions_the_node_lost_are_replaced_conflicted_or_dropped() {
        let reported = reported([line(1, 6, 100), line(9, 2, -50)], [(txid(3), -10)]);
        let remembered = [
            remembered(1, 100, None),     // still confirmed: unchanged
            remembered(4, -60, Some(9)),  // bumped, and the bump is confirmed
            remembered(6, -70, Some(42)), // bumped, the bump unknown, an input spent
            remembered(8, -80, None),     // an input spent by someone else
            remembered(5, -90, None),     // inputs unspent: dropped
        ];
        let mut asked = Vec::new();
        let history = classify(reported, &remembered, |hex| {
            asked.push(hex.to_owned());
            Ok::<_, Infallible>(hex == "spent")
        })
        .unwrap();
        let status = |n| history.iter().find(|e| e.txid == txid(n)).unwrap().status;
        assert_eq!(status(1), Status::Confirmed(6));
        assert_eq!(status(4), Status::Replaced(txid(9)));
        assert_eq!(status(6), Status::Conflicted);
        assert_eq!(status(8), Status::Conflicted);
        assert_eq!(status(5), Status::Dropped);
        assert_eq!(
            asked.len(),
            3,
            "only transactions the node lost are looked up"
        );
        let order: Vec<Status> = history.iter().map(|entry| entry.status).collect();
        assert_eq!(order[0], Status::Unconfirmed);
        assert_eq!(order[1], Status::Confirmed(2));
        assert_eq!(order[2], Status::Confirmed(6));
        assert!(order[3..]
            .iter()
            .all(|status| !matches!(status, Status::Unconfirmed | Status::Confirmed(_))));
    }

    #[test]
    fn a_failed_lookup_is_the_error_of_the_history() {
        let error = classify(BTreeMap::new(), &[remembered(2, 1, None)], |_| {
            Err("node down")
        });
        assert_eq!(error.unwrap_err(), "node down");
    }
}
