//! The wallet at work with its node: coins, balance and history as the node's address index
//! reports them, payments planned (see [`crate::payment`]), signed and broadcast, fee bumps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::history::{self, ConfirmedLine, HistoryEntry, InBlock, Remembered};
use quarry_chain::clock::unix_now;
use quarry_chain::encode::{decode, encode};
use quarry_chain::sighash::sign_transaction;
use quarry_chain::FeeRate;
use quarry_chain::{Address, Amount, ChainParams, OutPoint, OutputKey, Transaction, TxOut, Txid};
use quarry_rpc::types::{AddressHistoryEntry, AddressMempoolDelta, AddressUtxo};
use quarry_rpc::{CallError, Endpoint};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{json, Value};

use crate::error::WalletError;
use crate::file::{SeenTransaction, SentTransaction, WalletFile};
use crate::payment::{select_coins, select_coins_fee_included, sweep, Coin, Payment, Spend, DUST};
use crate::seed::Seed;

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

    fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, WalletError> {
        let node = self.node.as_ref().ok_or_else(|| WalletError::Node {
            address: "(none)".into(),
            reason: "no node to ask: is quarryd running on this network (its cookie is missing)?"
                .into(),
        })?;
        node.call_as(method, params).map_err(|error| {
            let reason = match error {
                CallError::Reply(detail) => return Self::bad_reply(method, detail),
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
        let utxos: Vec<AddressUtxo> = self.call("getaddressutxos", self.watched())?;
        let mut coins = utxos
            .into_iter()
            .map(|utxo| {
                let pubkey = self.key_of(&utxo.address).ok_or_else(|| {
                    Self::bad_reply(
                        "getaddressutxos",
                        format!("{} is not this wallet's address", utxo.address),
                    )
                })?;
                Ok(Coin {
                    outpoint: OutPoint {
                        txid: utxo.txid,
                        vout: utxo.vout,
                    },
                    output: TxOut {
                        value: utxo.amount,
                        pubkey,
                    },
                    height: utxo.height,
                    confirmations: utxo.confirmations,
                    coinbase: utxo.coinbase,
                    mature: utxo.mature,
                })
            })
            .collect::<Result<Vec<_>, WalletError>>()?;
        coins.sort_by(|a, b| {
            b.output
                .value
                .cmp(&a.output.value)
                .then(a.outpoint.cmp(&b.outpoint))
        });
        Ok(coins)
    }

    fn pending(&self) -> Result<Pending, WalletError> {
        let deltas: Vec<AddressMempoolDelta> = self.call("getaddressmempool", self.watched())?;
        let mut pending = Pending::default();
        for delta in deltas {
            let bad = || Self::bad_reply("getaddressmempool", format!("{delta:?}"));
            *pending.net.entry(delta.txid).or_default() += delta.amount;
            match (delta.prevtxid, delta.prevout) {
                (Some(txid), Some(vout)) => {
                    pending.spent.insert(OutPoint { txid, vout });
                }
                (None, None) => {
                    let value = u64::try_from(delta.amount)
                        .map(Amount::from_sat)
                        .map_err(|_| bad())?;
                    pending.incoming = pending.incoming.checked_add(value).ok_or_else(bad)?;
                }
                _ => return Err(bad()),
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
        self.plan(to, Spend::Amount(amount), fee_rate)
    }

    /// Plans a payment to `to` of `spend`: an amount with the fee on top or taken out of it,
    /// or everything spendable.
    pub fn plan(
        &mut self,
        to: &Address,
        spend: Spend,
        fee_rate: FeeRate,
    ) -> Result<Payment, WalletError> {
        let (coins, immature) = self.spendable()?;
        let change_key = self.next_change_key();
        match spend {
            Spend::Amount(amount) => {
                select_coins(&coins, immature, to, amount, fee_rate, change_key)
            }
            Spend::FeeIncluded(amount) => {
                select_coins_fee_included(&coins, immature, to, amount, fee_rate, change_key)
            }
            Spend::All => sweep(&coins, to, fee_rate),
        }
    }

    /// Marks as handed out every key up to the last one the node shows paid or spending
    /// (confirmed or in its mempool). A restored file does not know which addresses the lost
    /// copy gave away; after this, `address new` and change never reuse one. Returns how many
    /// keys were newly marked.
    pub fn skip_used_keys(&mut self) -> Result<u32, WalletError> {
        let confirmed: Vec<AddressHistoryEntry> = self.call("getaddresshistory", self.watched())?;
        let pending: Vec<AddressMempoolDelta> = self.call("getaddressmempool", self.watched())?;
        let last_used = confirmed
            .iter()
            .map(|line| line.address.as_str())
            .chain(pending.iter().map(|delta| delta.address.as_str()))
            .filter_map(|address| self.file.index_of(&self.key_of(address)?))
            .max();
        match last_used {
            Some(index) if index >= self.file.issued => {
                let skipped = index + 1 - self.file.issued;
                self.file.issued = index + 1;
                Ok(skipped)
            }
            _ => Ok(0),
        }
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
        self.call("sendrawtransaction", json!([hex::encode(encode(tx))]))
    }

    /// The history, newest first: pending, then confirmed by height, then transactions the
    /// wallet knows that left the chain (conflicted, replaced, dropped). Transactions seen for
    /// the first time are remembered in the file.
    pub fn history(&mut self) -> Result<Vec<HistoryEntry>, WalletError> {
        let lines: Vec<AddressHistoryEntry> = self.call("getaddresshistory", self.watched())?;
        let confirmed = lines.iter().map(|line| ConfirmedLine {
            txid: line.txid,
            confirmations: line.confirmations,
            block: InBlock {
                height: line.height,
                time: line.time,
            },
            net_sats: sats(line.received) - sats(line.sent),
        });
        let reported = history::reported(confirmed, self.pending()?.net);
        let mut changed = false;
        for (txid, entry) in &reported {
            let known = self.file.sent.iter().any(|sent| sent.txid == *txid)
                || self.file.seen.iter().any(|seen| seen.txid == *txid);
            if !known {
                let hex: String = self.call("getrawtransaction", json!([txid.to_string()]))?;
                self.file.seen.push(SeenTransaction {
                    txid: *txid,
                    hex,
                    net_sats: entry.net_sats,
                });
                changed = true;
            }
        }
        if changed {
            self.save()?;
        }
        let remembered: Vec<Remembered<'_>> = self
            .file
            .sent
            .iter()
            .map(|sent| Remembered {
                txid: sent.txid,
                hex: &sent.hex,
                net_sats: sent.net_sats,
                replaced_by: sent.replaced_by,
            })
            .chain(self.file.seen.iter().map(|seen| Remembered {
                txid: seen.txid,
                hex: &seen.hex,
                net_sats: seen.net_sats,
                replaced_by: None,
            }))
            .collect();
        history::classify(reported, &remembered, |hex| {
            self.inputs_spent_elsewhere(hex)
        })
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
            let out: Option<IgnoredAny> = self.call(
                "gettxout",
                json!([input.prevout.txid.to_string(), input.prevout.vout, false]),
            )?;
            if out.is_none() {
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
        let in_pool: Vec<Txid> = self.call("getrawmempool", json!([]))?;
        if !in_pool.contains(&txid) {
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
