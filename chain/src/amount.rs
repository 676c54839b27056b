//! Amounts of money, counted in the smallest unit (a "sat", 10^-8 coin).

use std::fmt;
use std::str::FromStr;

use bincode::{Decode, Encode};

use crate::error::ParseAmountError;

/// An amount of money in sats. Any `u64` can be decoded; consensus rules reject amounts above
/// [`Amount::MAX_MONEY`], and the checked arithmetic never produces one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Encode, Decode)]
pub struct Amount(u64);

impl Amount {
    /// No money.
    pub const ZERO: Self = Self(0);
    /// Sats in one coin.
    pub const SATS_PER_COIN: u64 = 100_000_000;
    /// One coin.
    pub const ONE_COIN: Self = Self(Self::SATS_PER_COIN);
    /// The most money that can ever exist: 21 million coins.
    pub const MAX_MONEY: Self = Self(21_000_000 * Self::SATS_PER_COIN);

    /// An amount of `sats` sats.
    pub const fn from_sat(sats: u64) -> Self {
        Self(sats)
    }

    /// The amount in sats.
    pub const fn to_sat(self) -> u64 {
        self.0
    }

    /// Whether the amount is at most [`Amount::MAX_MONEY`].
    pub const fn is_within_money_range(self) -> bool {
        self.0 <= Self::MAX_MONEY.0
    }

    /// The sum, or `None` if it overflows or exceeds [`Amount::MAX_MONEY`].
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0
            .checked_add(other.0)
            .map(Self)
            .filter(|sum| sum.is_within_money_range())
    }

    /// The difference, or `None` if `other` is larger.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }

    /// The sum of `amounts`, or `None` if any partial sum leaves the money range.
    pub fn checked_sum(amounts: impl IntoIterator<Item = Self>) -> Option<Self> {
        amounts
            .into_iter()
            .try_fold(Self::ZERO, |total, amount| total.checked_add(amount))
    }
}

/// Displays the amount in coins with exactly eight decimals, e.g. `50.00000000`.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let coins = self.0 / Self::SATS_PER_COIN;
        let fraction = self.0 % Self::SATS_PER_COIN;
        write!(f, "{coins}.{fraction:08}")
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self} coins)")
    }
}

/// Parses an amount in coins with up to eight decimals, e.g. `12.5` or `0.00000001`.
impl FromStr for Amount {
    type Err = ParseAmountError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason: &'static str| ParseAmountError {
            input: text.chars().take(40).collect(),
            reason,
        };
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(error("no digits"));
        }
        if !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return Err(error("only digits and one decimal point are allowed"));
        }
        if fraction.len() > 8 {
            return Err(error("more than 8 decimal places"));
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| error("too large"))?
        };
        let fraction_sats: u64 = format!("{fraction:0<8}")
            .parse()
            .map_err(|_| error("malformed fraction"))?;
        whole
            .checked_mul(Self::SATS_PER_COIN)
            .and_then(|sats| sats.checked_add(fraction_sats))
            .map(Self)
            .filter(|amount| amount.is_within_money_range())
            .ok_or_else(|| error("more than 21,000,000 coins"))
    }
}

/// A fee rate in satoshis per 1,000 bytes of encoded transaction.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Debug,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct FeeRate(u64);

impl FeeRate {
    /// `sats` per 1,000 bytes.
    pub const fn from_sat_per_kb(sats: u64) -> Self {
        Self(sats)
    }

    /// Satoshis per 1,000 bytes.
    pub const fn to_sat_per_kb(self) -> u64 {
        self.0
    }

    /// The rate of paying `fee` for `size` bytes (rounded down).
    pub fn of(fee: Amount, size: usize) -> Self {
        let size = size.max(1) as u128;
        Self((u128::from(fee.to_sat()) * 1000 / size).min(u128::from(u64::MAX)) as u64)
    }

    /// The fee this rate asks for `size` bytes (rounded up).
    pub fn fee_for(self, size: usize) -> Amount {
        let fee = (u128::from(self.0) * size as u128).div_ceil(1000);
        Amount::from_sat(fee.min(u128::from(u64::MAX)) as u64)
    }
}

impl fmt::Display for FeeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // In satoshis per byte, the unit wallets and users quote, to the thousandth.
        let whole = self.0 / 1000;
        match self.0 % 1000 {
            0 => write!(f, "{whole} sat/byte"),
            part => {
                let fraction = format!("{part:03}");
                write!(f, "{whole}.{} sat/byte", fraction.trim_end_matches('0'))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rates_read_in_satoshis_per_byte() {
        assert_eq!(FeeRate::from_sat_per_kb(1_000).to_string(), "1 sat/byte");
        assert_eq!(FeeRate::from_sat_per_kb(500).to_string(), "0.5 sat/byte");
        assert_eq!(
            FeeRate::from_sat_per_kb(12_345).to_string(),
            "12.345 sat/byte"
        );
        assert_eq!(FeeRate::from_sat_per_kb(7).to_string(), "0.007 sat/byte");
        assert_eq!(FeeRate::from_sat_per_kb(0).to_string(), "0 sat/byte");
    }
    use proptest::prelude::*;

    #[test]
    fn checked_arithmetic_stays_within_money_range() {
        assert_eq!(Amount::MAX_MONEY.checked_add(Amount::from_sat(1)), None);
        assert_eq!(Amount::from_sat(u64::MAX).checked_add(Amount::ZERO), None);
        assert_eq!(Amount::from_sat(1).checked_sub(Amount::from_sat(2)), None);
        assert_eq!(
            Amount::checked_sum([Amount::ONE_COIN, Amount::ONE_COIN]),
            Some(Amount::from_sat(200_000_000))
        );
    }

    #[test]
    fn displays_and_parses_coins_with_eight_decimals() {
        assert_eq!(Amount::from_sat(5_000_000_001).to_string(), "50.00000001");
        assert_eq!(
            "12.5".parse::<Amount>().unwrap(),
            Amount::from_sat(1_250_000_000)
        );
        assert_eq!(".00000001".parse::<Amount>().unwrap(), Amount::from_sat(1));
        assert_eq!("21000000".parse::<Amount>().unwrap(), Amount::MAX_MONEY);
        for bad in [
            "",
            ".",
            "1.000000001",
            "-1",
            "1e5",
            "21000000.00000001",
            "1.2.3",
        ] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?} parsed");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(sats in 0..=Amount::MAX_MONEY.to_sat()) {
            let amount = Amount::from_sat(sats);
            prop_assert_eq!(amount.to_string().parse::<Amount>().unwrap(), amount);
        }
    }
}
