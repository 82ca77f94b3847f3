//! Seats: numbers 1..=N per schedule, and the status a reader sees at a given instant.

use super::error::Code;
use super::{Error, Millis};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeatNo(i32);

impl SeatNo {
    /// No venue we model has more seats per date than this.
    pub const MAX: i64 = 100_000;

    pub fn parse(raw: &serde_json::Number) -> Result<Self, Error> {
        match raw.as_i64() {
            Some(v) if (1..=Self::MAX).contains(&v) => Ok(Self(v as i32)),
            _ => Err(Error::new(
                Code::InvalidSeatNo,
                format!("seatNo must be a whole number from 1 to {}, got {raw}", Self::MAX),
            )),
        }
    }

    pub const fn from_trusted(raw: i32) -> Self {
        Self(raw)
    }

    pub const fn get(self) -> i32 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatStatus {
    Available,
    Held,
    Sold,
}

impl SeatStatus {
    /// A hold whose time is up frees the seat at once, whether or not the sweeper has run.
    pub fn effective(sold: bool, held_until: Option<Millis>, now: Millis) -> Self {
        match (sold, held_until) {
            (true, _) => SeatStatus::Sold,
            (false, Some(until)) if until > now => SeatStatus::Held,
            _ => SeatStatus::Available,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_holds_read_as_available() {
        let now = Millis(1_000);
        assert_eq!(SeatStatus::effective(false, Some(Millis(999)), now), SeatStatus::Available);
        assert_eq!(SeatStatus::effective(false, Some(Millis(1_000)), now), SeatStatus::Available);
        assert_eq!(SeatStatus::effective(false, Some(Millis(1_001)), now), SeatStatus::Held);
        assert_eq!(SeatStatus::effective(true, None, now), SeatStatus::Sold);
    }

    #[test]
    fn seat_numbers_are_bounded() {
        let n = |s: &str| serde_json::from_str::<serde_json::Number>(s).unwrap();
        assert!(SeatNo::parse(&n("0")).is_err());
        assert!(SeatNo::parse(&n("-3")).is_err());
        assert!(SeatNo::parse(&n("2.5")).is_err());
        assert!(SeatNo::parse(&n("100001")).is_err());
        assert_eq!(SeatNo::parse(&n("12")).unwrap().get(), 12);
    }
}
