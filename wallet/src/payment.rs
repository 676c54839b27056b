//! Payments built without a node: coin selection, the fee for the signed size, change or its
//! absence below dust, and the unsigned transaction.

use quarry_chain::{Address, Amount, FeeRate, OutPoint, OutputKey, Transaction, TxIn, TxOut};

use crate::error::WalletError;

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

/// What a payment spends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Spend {
    /// This amount reaches the recipient; the fee comes on top.
    Amount(Amount),
    /// This amount leaves the wallet; the fee comes out of what the recipient gets.
    FeeIncluded(Amount),
    /// Every spendable coin, less the fee.
    All,
}

/// Pays `amount` to `to` with the fee taken out of it (the recipient gets `amount` less the
/// fee): coins are chosen as [`select_coins`] does, change of at least [`DUST`] goes to
/// `change_key`, less goes to the fee.
pub fn select_coins_fee_included(
    coins: &[Coin],
    immature: Amount,
    to: &Address,
    amount: Amount,
    fee_rate: FeeRate,
    change_key: OutputKey,
) -> Result<Payment, WalletError> {
    let mut chosen: Vec<Coin> = Vec::new();
    let mut total = Amount::ZERO;
    for coin in coins.iter().copied() {
        chosen.push(coin);
        total = total
            .checked_add(coin.output.value)
            .unwrap_or(Amount::MAX_MONEY);
        let Some(change) = total.checked_sub(amount) else {
            continue;
        };
        let outputs = |paid, change: Option<Amount>| {
            let mut outputs = vec![pay(to, paid)];
            outputs.extend(change.map(|change| pay_key(change_key, change)));
            outputs
        };
        let change = (change >= DUST).then_some(change);
        let size = signed_size(&unsigned(&chosen, &outputs(amount, change)));
        let fee = fee_rate.fee_for(size);
        let paid =
            amount
                .checked_sub(fee)
                .filter(|paid| *paid >= DUST)
                .ok_or(WalletError::Dust {
                    amount: amount.checked_sub(fee).unwrap_or(Amount::ZERO),
                    minimum: DUST,
                })?;
        let tx = unsigned(&chosen, &outputs(paid, change));
        let spent = total.checked_sub(change.unwrap_or(Amount::ZERO));
        return Ok(Payment {
            size: signed_size(&tx),
            tx,
            coins: chosen,
            amount: paid,
            fee: spent
                .and_then(|spent| spent.checked_sub(paid))
                .unwrap_or(fee),
            change: change.map(|change| (change, 1)),
        });
    }
    select_coins(coins, immature, to, amount, fee_rate, change_key)
}

/// Pays every coin of `coins` to `to`, less the fee, with no change.
pub fn sweep(coins: &[Coin], to: &Address, fee_rate: FeeRate) -> Result<Payment, WalletError> {
    let total = Amount::checked_sum(coins.iter().map(|coin| coin.output.value))
        .unwrap_or(Amount::MAX_MONEY);
    let size = signed_size(&unsigned(coins, &[pay(to, total)]));
    let fee = fee_rate.fee_for(size);
    let paid = total
        .checked_sub(fee)
        .filter(|paid| *paid >= DUST)
        .ok_or(WalletError::Dust {
            amount: total.checked_sub(fee).unwrap_or(Amount::ZERO),
            minimum: DUST,
        })?;
    let tx = unsigned(coins, &[pay(to, paid)]);
    Ok(Payment {
        size: signed_size(&tx),
        tx,
        coins: coins.to_vec(),
        amount: paid,
        fee,
        change: None,
    })
}

/// A fee rate (sat/byte) beyond which no block needs more: a typo, most likely.
pub const HIGH_FEE_RATE: u64 = 10_000;

/// What looks wrong with paying `fee` at `sats_per_byte` to send `amount`: a fee above 1% of
/// the amount, or a rate above [`HIGH_FEE_RATE`]. Said before signing; never refused.
pub fn fee_warning(amount: Amount, fee: Amount, sats_per_byte: u64) -> Option<String> {
    if sats_per_byte > HIGH_FEE_RATE {
        return Some(format!(
            "a fee rate of {sats_per_byte} sat/byte is far above what blocks need (over {HIGH_FEE_RATE})"
        ));
    }
    let percent = fee.to_sat() as f64 * 100.0 / amount.to_sat().max(1) as f64;
    (percent > 1.0).then(|| format!("the fee is {percent:.1}% of the amount paid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use quarry_chain::testing::test_key;
    use quarry_chain::{ChainParams, Txid};

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

    #[test]
    fn fees_above_one_percent_or_ten_thousand_sat_per_byte_are_flagged() {
        let coins = |sats| Amount::from_sat(sats);
        assert_eq!(fee_warning(coins(1_000_000), coins(10_000), 50), None);
        let warning = fee_warning(coins(1_000_000), coins(25_000), 50).unwrap();
        assert!(warning.contains("2.5% of the amount"), "{warning}");
        let warning = fee_warning(coins(100_000_000), coins(2_000), 10_001).unwrap();
        assert!(warning.contains("10001 sat/byte"), "{warning}");
        assert_eq!(fee_warning(coins(100_000_000), coins(2_000), 10_000), None);
    }

    #[test]
    fn a_fee_taken_from_the_amount_pays_the_recipient_the_rest() {
        let coins = [coin(1, 50_000), coin(2, 30_000)];
        let rate = FeeRate::from_sat_per_kb(10_000);
        let payment = select_coins_fee_included(
            &coins,
            Amount::ZERO,
            &to(),
            Amount::from_sat(60_000),
            rate,
            test_key(3),
        )
        .unwrap();
        assert_eq!(payment.coins.len(), 2);
        let (change, _) = payment.change.unwrap();
        assert_eq!(
            change,
            Amount::from_sat(20_000),
            "change is what the amount leaves"
        );
        assert_eq!(
            payment.amount.checked_add(payment.fee),
            Some(Amount::from_sat(60_000)),
            "the recipient gets the amount less the fee"
        );
        assert!(payment.fee >= rate.fee_for(payment.size));
        assert_eq!(payment.tx.outputs[0].value, payment.amount);
    }

    #[test]
    fn a_sweep_spends_every_coin_into_one_output() {
        let coins = [coin(1, 50_000), coin(2, 30_000), coin(3, 1_500)];
        let rate = FeeRate::from_sat_per_kb(2_000);
        let payment = sweep(&coins, &to(), rate).unwrap();
        assert_eq!(payment.coins.len(), 3);
        assert_eq!(payment.tx.outputs.len(), 1);
        assert_eq!(payment.change, None);
        assert_eq!(payment.fee, rate.fee_for(payment.size));
        assert_eq!(
            payment.amount.checked_add(payment.fee),
            Some(Amount::from_sat(81_500))
        );
        assert!(matches!(
            sweep(&[coin(1, 1_200)], &to(), rate),
            Err(WalletError::Dust { .. })
        ));
    }
}
