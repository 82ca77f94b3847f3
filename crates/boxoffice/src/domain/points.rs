//! Points are whole units held in an i64. Amounts are bounded so that no sum can overflow.

use super::error::Code;
use super::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Points(i64);

impl Points {
    /// The largest single charge or use.
    pub const MAX_AMOUNT: i64 = 100_000_000;
    /// The largest balance a user may hold; far below i64::MAX so `balance + amount` never overflows.
    pub const MAX_BALANCE: i64 = 1_000_000_000_000;

    /// An amount a client asked to move: 1..=MAX_AMOUNT.
    pub fn amount(raw: i64) -> Result<Self, Error> {
        if (1..=Self::MAX_AMOUNT).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(Error::new(
                Code::InvalidAmount,
                format!("amount must be a whole number from 1 to {}, got {raw}", Self::MAX_AMOUNT),
            ))
        }
    }

    /// An amount from a JSON number, which may be fractional or beyond i64.
    pub fn amount_from_json(raw: &serde_json::Number) -> Result<Self, Error> {
        match super::whole_number(raw) {
            Some(v) => Self::amount(v),
            None => Err(Error::new(
                Code::InvalidAmount,
                format!("amount must be a whole number from 1 to {}, got {raw}", Self::MAX_AMOUNT),
            )),
        }
    }

    pub const fn from_trusted(raw: i64) -> Self {
        Self(raw)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_positive_and_bounded() {
        assert!(Points::amount(0).is_err());
        assert!(Points::amount(-1).is_err());
        assert!(Points::amount(Points::MAX_AMOUNT + 1).is_err());
        assert_eq!(Points::amount(Points::MAX_AMOUNT).unwrap().get(), Points::MAX_AMOUNT);
    }

    #[test]
    fn json_fractions_and_huge_numbers_are_invalid() {
        let whole: serde_json::Number = serde_json::from_str("251.0").unwrap();
        assert_eq!(Points::amount_from_json(&whole).unwrap().get(), 251, "a whole number with a zero fraction");
        let frac: serde_json::Number = serde_json::from_str("1.5").unwrap();
        let huge: serde_json::Number = serde_json::from_str("1e30").unwrap();
        let big: serde_json::Number = serde_json::from_str("18446744073709551615").unwrap();
        assert!(Points::amount_from_json(&frac).is_err());
        assert!(Points::amount_from_json(&huge).is_err());
        assert!(Points::amount_from_json(&big).is_err());
        let ok: serde_json::Number = serde_json::from_str("500").unwrap();
        assert_eq!(Points::amount_from_json(&ok).unwrap().get(), 500);
    }
}
