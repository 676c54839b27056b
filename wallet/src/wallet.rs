//! The wallet at work: its coins, balance and history as the node's address index reports
//! them, and payments — coin selection, fee, change, signing, broadcast — and fee bumps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use quarry_chain::encode::{decode, encode};
use quarry_chain::sighash::sign_transaction;
use quarry_chain::{
    Address, Amount, ChainParams, OutPoint, OutputKey, Transaction, TxIn, TxOut, Txid,
};
use quarry_mempool::FeeRate;
use quarry_node::cli::{CallError, Endpoint};
use serde_json::{json, Value};

use crate::error::WalletError;
use crate::file::{SeenTransaction, SentTransaction, WalletFile};
use crate::seed::Seed;

/// Payments and change below this are not made: they would cost more to spend than they hold.
pub const DUST: Amount = Amount::from_sat(1_000);

/// Bytes of a signature in an input's witness.
const SIGNATURE_BYTES: usize = 64;

/// A confirmed unspent output of the wallet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Coin {
    /// Where it is.
    pub outpoint: OutPoint,
    /// The output.
    pub output: TxOut,
    /// Height of its block.
    pub height: u32,
    /// Confirmations.
    pub confirmations: u32,
    /// Whether a coinbase created it.
    pub coinbase: bool,
    /// Whether it may be spent in the next block (coinbases must mature).
    pub mature: bool,
}

/// The wallet's balance.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Balance {
    /// Confirmed, mature, and not being spent by a pending transaction.
    pub confirmed: Amount,
    /// Paid to the wallet by pending transactions (change included).
    pub unconfirmed: Amount,
    /// Coinbase outputs still maturing.
    pub immature: Amount,
}

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
}

/// A payment ready to sign.
#[derive(Clone, Debug)]
pub struct Payment {
    /// The transaction, unsigned.
    pub tx: Transaction,
    /// The coins it spends, in input order.
    pub coins: Vec<Coin>,
    /// The amount paid.
    pub amount: Amount,
    /// The fee.
    pub fee: Amount,
    /// Change back to the wallet, and its output index.
    pub change: Option<(Amount, u32)>,
    /// The transaction's size once signed.
    pub size: usize,
}

/// What the mempool holds for the wallet.
#[derive(Debug, Default)]
struct Pending {
    /// Confirmed coins being spent.
    spent: BTreeSet<OutPoint>,
    /// Outputs paid to the wallet.
    incoming: Amount,
    /// Net effect per transaction, in sats.
    net: BTreeMap<Txid, i64>,
}

/// A wallet file bound to its network and a node.
#[derive(Debug)]
pub struct Wallet {
    /// Where the file is.
    pub path: PathBuf,
    /// The network.
    pub params: ChainParams,
    /// The file's contents.
    pub file: WalletFile,
    /// The node, when one is configured (commands on the file alone need none).
    node: Option<Endpoint>,
}

fn sats(amount: Amount) -> i64 {
    i64::try_from(amount.to_sat()).unwrap_or(i64::MAX)
}

fn amount_of(value: &Value) -> Option<Amount> {
    let coins = value.as_f64()?;
    (coins >= 0.0).then(|| Amount::from_sat((coins * Amount::SATS_PER_COIN as f64).round() as u64))
}

fn signed_sats_of(value: &Value) -> Option<i64> {
    Some((value.as_f64()? * Amount::SATS_PER_COIN as f64).round() as i64)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl Wallet {
    /// Opens the wallet at `path` for the network of `params`, talking to `node`.
    pub fn open(
        path: PathBuf,
        params: ChainParams,
        node: Option<Endpoint>,
    ) -> Result<Self, WalletError> {
        let file = WalletFile::load(&path, &params)?;
        Ok(Self {
            path,
            params,
            file,
            node,
        })
    }

    /// Writes a new wallet file (refusing to overwrite one) and opens it.
    pub fn create(
        path: PathBuf,
        params: ChainParams,
        node: Option<Endpoint>,
        seed: &Seed,
        passphrase: &str,
    ) -> Result<Self, WalletError> {
        if path.exists() {
            return Err(WalletError::WalletExists { path });
        }
        let file = WalletFile::new(seed, passphrase, &params)?;
        file.save(&path)?;
        Ok(Self {
            path,
            params,
            file,
            node,
        })
    }

    /// Saves the file.
    pub fn save(&self) -> Result<(), WalletError> {
        self.file.save(&self.path)
    }

    fn call(&self, method: &'static str, params: Value) -> Result<Value, WalletError> {
        let node = self.node.as_ref().ok_or_else(|| WalletError::Node {
            address: "(none)".into(),
            reason: "no node to ask: is quarryd running on this network (its cookie is missing)?"
                .into(),
        })?;
        node.call(method, params).map_err(|error| {
            let reason = match error {
                CallError::Connect(error) => format!(
                    "cannot connect ({error}); is quarryd running, and are --network and --rpc-connect right?"
                ),
                other => other.to_string(),
            };
            WalletError::Node {
                address: node.address.to_string(),
                reason,
            }
        })
    }

    fn bad_reply(method: &'static str, detail: impl Into<String>) -> WalletError {
        WalletError::BadReply {
            method,
            detail: detail.into(),
        }
    }

    fn watched(&self) -> Value {
        let addresses: Vec<String> = self
            .file
            .keys
            .iter()
            .map(|key| Address::new(*key, &self.params).to_string())
            .collect();
        json!([{ "addresses": addresses }])
    }

    fn key_of(&self, text: &str) -> Option<OutputKey> {
        Address::parse(text, &self.params)
            .ok()
            .map(|address| address.key())
    }

    /// The wallet's confirmed unspent outputs, largest first.
    pub fn coins(&self) -> Result<Vec<Coin>, WalletError> {
        let reply = self.call("getaddressutxos", self.watched())?;
        let list = reply
            .as_array()
            .ok_or_else(|| Self::bad_reply("getaddressutxos", "not a list"))?;
        let mut coins = list
            .iter()
            .map(|item| {
                let parse = || -> Option<Coin> {
                    Some(Coin {
                        outpoint: OutPoint {
                            txid: item["txid"].as_str()?.parse().ok()?,
                            vout: u32::try_from(item["vout"].as_u64()?).ok()?,
                        },
                        output: TxOut {
                            value: amount_of(&item["amount"])?,
                            pubkey: self.key_of(item["address"].as_str()?)?,
                        },
                        height: u32::try_from(item["height"].as_u64()?).ok()?,
                        confirmations: u32::try_from(item["confirmations"].as_u64()?).ok()?,
                        coinbase: item["coinbase"].as_bool()?,
                        mature: item["mature"].as_bool()?,
                    })
                };
                parse().ok_or_else(|| Self::bad_reply("getaddressutxos", item.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        coins.sort_by(|a, b| {
            b.output
                .value
                .cmp(&a.output.value)
                .then(a.outpoint.cmp(&b.outpoint))
        });
        Ok(coins)
    }

    fn pending(&self) -> Result<Pending, WalletError> {
        let reply = self.call("getaddressmempool", self.watched())?;
        let list = reply
            .as_array()
            .ok_or_else(|| Self::bad_reply("getaddressmempool", "not a list"))?;
        let mut pending = Pending::default();
        for item in list {
            let bad = || Self::bad_reply("getaddressmempool", item.to_string());
            let txid: Txid = item["txid"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .ok_or_else(bad)?;
            let delta = signed_sats_of(&item["amount"]).ok_or_else(bad)?;
            *pending.net.entry(txid).or_default() += delta;
            if let Some(prevtxid) = item["prevtxid"].as_str() {
                pending.spent.insert(OutPoint {
                    txid: prevtxid.parse().map_err(|_| bad())?,
                    vout: item["prevout"]
                        .as_u64()
                        .and_then(|v| u32::try_from(v).ok())
                        .ok_or_else(bad)?,
                });
            } else {
                let value = amount_of(&item["amount"]).ok_or_else(bad)?;
                pending.incoming = pending.incoming.checked_add(value).ok_or_else(bad)?;
            }
        }
        Ok(pending)
    }

    /// Confirmed, unconfirmed and immature balance.
    pub fn balance(&self) -> Result<Balance, WalletError> {
        let coins = self.coins()?;
        let pending = self.pending()?;
        let mut balance = Balance {
            unconfirmed: pending.incoming,
            ..Balance::default()
        };
        for coin in coins {
            let value = coin.output.value;
            if !coin.mature {
                balance.immature = balance
                    .immature
                    .checked_add(value)
                    .unwrap_or(Amount::MAX_MONEY);
            } else if !pending.spent.contains(&coin.outpoint) {
                balance.confirmed = balance
                    .confirmed
                    .checked_add(value)
                    .unwrap_or(Amount::MAX_MONEY);
            }
        }
        Ok(balance)
    }

    /// Coins that can be spent now: confirmed, mature, not being spent.
    fn spendable(&self) -> Result<(Vec<Coin>, Amount), WalletError> {
        let pending = self.pending()?;
        let coins = self.coins()?;
        let immature = Amount::checked_sum(
            coins
                .iter()
                .filter(|coin| !coin.mature)
                .map(|coin| coin.output.value),
        )
        .unwrap_or(Amount::MAX_MONEY);
        let spendable = coins
            .into_iter()
            .filter(|coin| coin.mature && !pending.spent.contains(&coin.outpoint))
            .collect();
        Ok((spendable, immature))
    }

    /// Plans a payment of `amount` to `to` at `fee_rate` from the coins spendable now, with
    /// change to a fresh address of the wallet (see [`select_coins`]).
    pub fn plan_payment(
        &mut self,
        to: &Address,
        amount: Amount,
        fee_rate: FeeRate,
    ) -> Result<Payment, WalletError> {
        let (coins, immature) = self.spendable()?;
        select_coins(
            &coins,
            immature,
            to,
            amount,
            fee_rate,
            self.next_change_key(),
        )
    }

    /// The key change goes to: the next unused address (handed out when the payment is sent).
    fn next_change_key(&self) -> OutputKey {
        self.file
            .keys
            .get(self.file.issued as usize)
            .or(self.file.keys.last())
            .copied()
            .expect("a loaded wallet holds at least one key (checked by WalletFile::load)")
    }

    /// Signs `payment` with keys from `seed`, sends it through the node and records it.
    pub fn send(&mut self, payment: &Payment, seed: &Seed) -> Result<Txid, WalletError> {
        let tx = self.sign_payment(payment, seed)?;
        let spent: Vec<TxOut> = payment.coins.iter().map(|coin| coin.output).collect();
        let txid = self.broadcast(&tx)?;
        if payment.change.is_some() && self.file.issue().is_none() {
            self.file.extend_pool(seed);
            self.file.issue();
        }
        let paid_to_self = tx
            .outputs
            .first()
            .filter(|output| self.file.index_of(&output.pubkey).is_some())
            .map_or(0, |output| sats(output.value));
        self.file.sent.push(SentTransaction {
            txid,
            hex: hex::encode(encode(&tx)),
            spent: spent.into_iter().map(Into::into).collect(),
            change_vout: payment.change.map(|(_, vout)| vout),
            fee_sats: payment.fee.to_sat(),
            // Change comes back: the balance loses the payment (unless paid to itself) and the fee.
            net_sats: -sats(payment.amount) - sats(payment.fee) + paid_to_self,
            time: unix_now(),
            replaced_by: None,
        });
        self.save()?;
        Ok(txid)
    }

    /// The payment's transaction signed with keys from `seed`, not sent (for callers that
    /// relay it themselves, such as the attack scenarios of quarry-testnet).
    pub fn sign_payment(&self, payment: &Payment, seed: &Seed) -> Result<Transaction, WalletError> {
        let mut tx = payment.tx.clone();
        let spent: Vec<TxOut> = payment.coins.iter().map(|coin| coin.output).collect();
        self.sign(&mut tx, &spent, seed)?;
        Ok(tx)
    }

    fn sign(&self, tx: &mut Transaction, spent: &[TxOut], seed: &Seed) -> Result<(), WalletError> {
        let keypairs = spent
            .iter()
            .map(|output| {
                let index = self.file.index_of(&output.pubkey).ok_or_else(|| {
                    WalletError::Passphrase("a coin to spend is not this wallet's".into())
                })?;
                Ok(seed.keypair(index))
            })
            .collect::<Result<Vec<_>, WalletError>>()?;
        let keypairs: Vec<&secp256k1::Keypair> = keypairs.iter().collect();
        let aux: [u8; 32] = rand::random();
        sign_transaction(tx, spent, &keypairs, self.params.genesis_hash(), &aux)
            .ok_or_else(|| WalletError::Passphrase("cannot sign: inputs and keys differ".into()))
    }

    fn broadcast(&self, tx: &Transaction) -> Result<Txid, WalletError> {
        let reply = self.call("sendrawtransaction", json!([hex::encode(encode(tx))]))?;
        reply
            .as_str()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| Self::bad_reply("sendrawtransaction", reply.to_string()))
    }

    /// The history, newest first: pending, then confirmed by height, then transactions the
    /// wallet knows that left the chain (conflicted, replaced, dropped). Transactions seen for
    /// the first time are remembered in the file.
    pub fn history(&mut self) -> Result<Vec<HistoryEntry>, WalletError> {
        let mut entries: BTreeMap<Txid, (Status, i64)> = BTreeMap::new();
        let reply = self.call("getaddresshistory", self.watched())?;
        for item in reply
            .as_array()
            .ok_or_else(|| Self::bad_reply("getaddresshistory", "not a list"))?
        {
            let bad = || Self::bad_reply("getaddresshistory", item.to_string());
            let txid: Txid = item["txid"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .ok_or_else(bad)?;
            let confirmations = item["confirmations"]
                .as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .ok_or_else(bad)?;
            let net = signed_sats_of(&item["received"]).ok_or_else(bad)?
                - signed_sats_of(&item["sent"]).ok_or_else(bad)?;
            let entry = entries
                .entry(txid)
                .or_insert((Status::Confirmed(confirmations), 0));
            entry.1 += net;
        }
        for (txid, net) in self.pending()?.net {
            entries.insert(txid, (Status::Unconfirmed, net));
        }
        let mut changed = false;
        for (txid, (_, net)) in &entries {
            let known = self.file.sent.iter().any(|sent| sent.txid == *txid)
                || self.file.seen.iter().any(|seen| seen.txid == *txid);
            if !known {
                let hex = self.call("getrawtransaction", json!([txid.to_string()]))?;
                let hex = hex
                    .as_str()
                    .ok_or_else(|| Self::bad_reply("getrawtransaction", hex.to_string()))?;
                self.file.seen.push(SeenTransaction {
                    txid: *txid,
                    hex: hex.to_owned(),
                    net_sats: *net,
                });
                changed = true;
            }
        }
        let remembered: Vec<(Txid, String, i64, Option<Txid>)> = self
            .file
            .sent
            .iter()
            .map(|sent| (sent.txid, sent.hex.clone(), sent.net_sats, sent.replaced_by))
            .chain(
                self.file
                    .seen
                    .iter()
                    .map(|seen| (seen.txid, seen.hex.clone(), seen.net_sats, None)),
            )
            .collect();
        for (txid, hex, net, replaced_by) in remembered {
            if entries.contains_key(&txid) {
                continue;
            }
            let status = match replaced_by {
                Some(by) if entries.contains_key(&by) => Status::Replaced(by),
                _ if self.inputs_spent_elsewhere(&hex)? => Status::Conflicted,
                _ => Status::Dropped,
            };
            entries.insert(txid, (status, net));
        }
        if changed {
            self.save()?;
        }
        let mut history: Vec<HistoryEntry> = entries
            .into_iter()
            .map(|(txid, (status, net_sats))| HistoryEntry {
                txid,
                status,
                net_sats,
            })
            .collect();
        history.sort_by_key(|entry| match entry.status {
            Status::Unconfirmed => (0, 0),
            Status::Confirmed(confirmations) => (1, confirmations),
            _ => (2, 0),
        });
        Ok(history)
    }

    /// Whether any input of the transaction `hex` is no longer unspent on the node's chain.
    fn inputs_spent_elsewhere(&self, hex: &str) -> Result<bool, WalletError> {
        let bytes = hex::decode(hex).map_err(|error| WalletError::Corrupt {
            path: self.path.clone(),
            reason: format!("a remembered transaction is not hex: {error}"),
        })?;
        let tx: Transaction = decode(&bytes).map_err(|error| WalletError::Corrupt {
            path: self.path.clone(),
            reason: format!("a remembered transaction does not decode: {error}"),
        })?;
        for input in tx.inputs.iter().filter(|_| !tx.is_coinbase()) {
            let out = self.call(
                "gettxout",
                json!([input.prevout.txid.to_string(), input.prevout.vout, false]),
            )?;
            if out.is_null() {
                return Ok(true);
            }
        }
        Ok(tx.is_coinbase())
    }

    /// Replaces the unconfirmed transaction `txid` by one paying `fee_rate` (at least the old
    /// fee plus the node's minimum relay fee for its size), the extra fee taken from its change.
    pub fn bump_fee(
        &mut self,
        txid: Txid,
        fee_rate: FeeRate,
        seed: &Seed,
    ) -> Result<(Txid, Amount, Amount), WalletError> {
        let cannot = |reason: &str| WalletError::CannotBump {
            txid,
            reason: reason.to_owned(),
        };
        let record = self
            .file
            .sent
            .iter()
            .find(|sent| sent.txid == txid)
            .cloned()
            .ok_or_else(|| cannot("this wallet did not send it"))?;
        if let Some(by) = record.replaced_by {
            return Err(cannot(&format!("it was already replaced by {by}")));
        }
        let in_pool = self.call("getrawmempool", json!([]))?;
        if !in_pool
            .as_array()
            .is_some_and(|txids| txids.iter().any(|t| t.as_str() == Some(&txid.to_string())))
        {
            return Err(cannot(
                "it is not in the node's mempool (confirmed, conflicted or dropped)",
            ));
        }
        let change_vout = record
            .change_vout
            .ok_or_else(|| cannot("it has no change output to take a higher fee from"))?;
        let bytes =
            hex::decode(&record.hex).map_err(|_| cannot("its recorded bytes are damaged"))?;
        let mut tx: Transaction =
            decode(&bytes).map_err(|_| cannot("its recorded bytes are damaged"))?;
        let size = tx.encoded_size();
        let old_fee = Amount::from_sat(record.fee_sats);
        let relay_increment = FeeRate::from_sat_per_kb(1_000).fee_for(size);
        let new_fee = fee_rate.fee_for(size).max(
            old_fee
                .checked_add(relay_increment)
                .unwrap_or(Amount::MAX_MONEY),
        );
        let extra = new_fee.checked_sub(old_fee).unwrap_or(Amount::ZERO);
        let change = tx
            .outputs
            .get_mut(change_vout as usize)
            .ok_or_else(|| cannot("its change output is missing"))?;
        change.value = change
            .value
            .checked_sub(extra)
            .filter(|left| *left >= DUST)
            .ok_or_else(|| cannot(&format!("its change cannot pay {extra} more")))?;
        for input in &mut tx.inputs {
            input.witness.clear();
        }
        let spent: Vec<TxOut> = record.spent.iter().copied().map(Into::into).collect();
        self.sign(&mut tx, &spent, seed)?;
        let new_txid = self.broadcast(&tx).map_err(|error| match error {
            WalletError::Node { reason, .. } if reason.contains("txn-mempool-conflict") => cannot(
                "the node keeps the first transaction it saw; replacements need quarryd's \
                 [mempool] replacement = \"replace-by-fee\"",
            ),
            other => other,
        })?;
        if let Some(old) = self.file.sent.iter_mut().find(|sent| sent.txid == txid) {
            old.replaced_by = Some(new_txid);
        }
        self.file.sent.push(SentTransaction {
            txid: new_txid,
            hex: hex::encode(encode(&tx)),
            fee_sats: new_fee.to_sat(),
            net_sats: record.net_sats - sats(extra),
            time: unix_now(),
            replaced_by: None,
            ..record
        });
        self.save()?;
        Ok((new_txid, old_fee, new_fee))
    }
}

/// Chooses among `coins` (largest first, as given) until they cover `amount` to `to` and the
/// fee at `fee_rate`; change of at least [`DUST`] goes to `change_key`, less goes to the fee.
/// `immature` is only mentioned when the funds fall short.
pub fn select_coins(
    coins: &[Coin],
    immature: Amount,
    to: &Address,
    amount: Amount,
    fee_rate: FeeRate,
    change_key: OutputKey,
) -> Result<Payment, WalletError> {
    if amount < DUST {
        return Err(WalletError::Dust {
            amount,
            minimum: DUST,
        });
    }
    let mut chosen: Vec<Coin> = Vec::new();
    let mut total = Amount::ZERO;
    let mut fee = Amount::ZERO;
    for coin in coins.iter().copied() {
        chosen.push(coin);
        total = total
            .checked_add(coin.output.value)
            .unwrap_or(Amount::MAX_MONEY);
        let with_change = unsigned(&chosen, &[pay(to, amount), pay_key(change_key, DUST)]);
        fee = fee_rate.fee_for(signed_size(&with_change));
        let Some(change) = amount
            .checked_add(fee)
            .and_then(|needed| total.checked_sub(needed))
        else {
            continue;
        };
        if change >= DUST {
            let tx = unsigned(&chosen, &[pay(to, amount), pay_key(change_key, change)]);
            return Ok(Payment {
                size: signed_size(&tx),
                tx,
                coins: chosen,
                amount,
                fee,
                change: Some((change, 1)),
            });
        }
        // Without a change output the whole remainder is the fee.
        let tx = unsigned(&chosen, &[pay(to, amount)]);
        let size = signed_size(&tx);
        if total
            .checked_sub(amount)
            .is_some_and(|rest| rest >= fee_rate.fee_for(size))
        {
            return Ok(Payment {
                fee: total.checked_sub(amount).unwrap_or(Amount::ZERO),
                size,
                tx,
                coins: chosen,
                amount,
                change: None,
            });
        }
    }
    let spendable = Amount::checked_sum(coins.iter().map(|coin| coin.output.value))
        .unwrap_or(Amount::MAX_MONEY);
    Err(WalletError::InsufficientFunds {
        amount,
        fee,
        needed: amount.checked_add(fee).unwrap_or(Amount::MAX_MONEY),
        spendable,
        immature: if immature > Amount::ZERO {
            format!(" ({immature} more once coinbase outputs mature)")
        } else {
            String::new()
        },
    })
}

fn pay(to: &Address, value: Amount) -> TxOut {
    pay_key(to.key(), value)
}

fn pay_key(key: OutputKey, value: Amount) -> TxOut {
    TxOut { value, pubkey: key }
}

/// The transaction spending `coins` into `outputs`, with placeholder signatures of the real size.
fn unsigned(coins: &[Coin], outputs: &[TxOut]) -> Transaction {
    Transaction {
        version: Transaction::CURRENT_VERSION,
        inputs: coins
            .iter()
            .map(|coin| TxIn {
                prevout: coin.outpoint,
                witness: vec![0; SIGNATURE_BYTES],
            })
            .collect(),
        outputs: outputs.to_vec(),
    }
}

fn signed_size(tx: &Transaction) -> usize {
    tx.encoded_size()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_chain::testing::test_key;

    fn coin(n: u8, sats: u64) -> Coin {
        Coin {
            outpoint: OutPoint {
                txid: Txid::from_byte_array([n; 32]),
                vout: 0,
            },
            output: TxOut {
                value: Amount::from_sat(sats),
                pubkey: test_key(1),
            },
            height: 1,
            confirmations: 10,
            coinbase: false,
            mature: true,
        }
    }

    fn to() -> Address {
        Address::new(test_key(2), &ChainParams::regtest())
    }

    const RATE: FeeRate = FeeRate::from_sat_per_kb(2_000);

    #[test]
    fn the_largest_coins_pay_and_the_rest_comes_back_as_change() {
        let coins = [coin(1, 5_000_000), coin(2, 3_000_000), coin(3, 1_000_000)];
        let payment = select_coins(
            &coins,
            Amount::ZERO,
            &to(),
            Amount::from_sat(6_000_000),
            RATE,
            test_key(3),
        )
        .unwrap();
        assert_eq!(payment.coins.len(), 2);
        assert_eq!(payment.fee, RATE.fee_for(payment.size));
        let (change, vout) = payment.change.unwrap();
        assert_eq!(vout, 1);
        assert_eq!(payment.tx.outputs[1].pubkey, test_key(3));
        // Inputs = payment + change + fee, to the sat.
        assert_eq!(
            change.to_sat() + 6_000_000 + payment.fee.to_sat(),
            8_000_000
        );
        assert_eq!(payment.size, payment.tx.encoded_size());
    }

    #[test]
    fn change_below_dust_goes_to_the_fee() {
        let coins = [coin(1, 1_000_500)];
        let payment = select_coins(
            &coins,
            Amount::ZERO,
            &to(),
            Amount::from_sat(1_000_000),
            RATE,
            test_key(3),
        )
        .unwrap();
        assert!(payment.change.is_none());
        assert_eq!(payment.tx.outputs.len(), 1);
        assert_eq!(payment.fee, Amount::from_sat(500));
        assert!(payment.fee >= RATE.fee_for(payment.size));
    }

    #[test]
    fn shortfalls_and_dust_payments_are_refused() {
        let coins = [coin(1, 1_000_000)];
        let error = select_coins(
            &coins,
            Amount::from_sat(5_000_000_000),
            &to(),
            Amount::from_sat(1_000_000),
            RATE,
            test_key(3),
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, WalletError::InsufficientFunds { .. }));
        assert!(message.contains("0.01000000 spendable now"), "{message}");
        assert!(
            message.contains("50.00000000 more once coinbase outputs mature"),
            "{message}"
        );
        assert!(matches!(
            select_coins(
                &coins,
                Amount::ZERO,
                &to(),
                Amount::from_sat(999),
                RATE,
                test_key(3)
            ),
            Err(WalletError::Dust { .. })
        ));
        assert!(matches!(
            select_coins(
                &[],
                Amount::ZERO,
                &to(),
                Amount::from_sat(5_000),
                RATE,
                test_key(3)
            ),
            Err(WalletError::InsufficientFunds { .. })
        ));
    }
}
