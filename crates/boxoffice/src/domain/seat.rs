//! Seats: numbers 1..=N per schedule, and the status a reader sees at a given instant.

use super::error::Code;
use super::{Error, Millis, ReservationId, UserId};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeatNo(i32);

impl SeatNo {
    /// No venue we model has more seats per date than this.
    pub const MAX: i64 = 100_000;

    pub fn parse(raw: &serde_json::Number) -> Result<Self, Error> {
        match super::whole_number(raw) {
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

/// A seat as stored. `status` says what a reader sees at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatState {
    Available,
    /// `holder` is unknown where the seat was read without its reservation (a locking read).
    Held {
        until: Millis,
        reservation: ReservationId,
        holder: Option<UserId>,
    },
    Sold,
}

impl SeatState {
    /// The rule of holds, the one place it is written in Rust (the SQL twin is
    /// `store::SEAT_IS_FREE`): a hold whose time is up frees the seat at once, whether or not the
    /// sweeper has run. A held seat otherwise changes only by being sold, or released by its
    /// holder (which every instance hears of at once).
    pub fn status(&self, now: Millis) -> SeatStatus {
        match self {
            SeatState::Available => SeatStatus::Available,
            SeatState::Held { until, .. } if *until > now => SeatStatus::Held,
            SeatState::Held { .. } => SeatStatus::Available,
            SeatState::Sold => SeatStatus::Sold,
        }
    }

    pub fn is_free(&self, now: Millis) -> bool {
        self.status(now) == SeatStatus::Available
    }

    /// Whether someone other than `user` has it now (sold, or held live by another).
    pub fn taken_from(&self, user: UserId, now: Millis) -> bool {
        match self {
            SeatState::Held { holder: Some(h), .. } if *h == user => false,
            s => !s.is_free(now),
        }
    }

    /// The reservation of a hold that has run out on this seat, which a new hold ends.
    pub fn lapsed_hold(&self, now: Millis) -> Option<ReservationId> {
        match self {
            SeatState::Held { until, reservation, .. } if *until <= now => Some(*reservation),
            _ => None,
        }
    }

    /// From the stored columns (`status`, `hold_expires_at`, `reservation_id`, and the holding
    /// reservation's `user_id`).
    pub fn from_stored(
        status: &str,
        held_until: Option<i64>,
        reservation: Option<i64>,
        holder: Option<i64>,
    ) -> Result<Self, Error> {
        match (status, held_until, reservation, holder) {
            ("AVAILABLE", ..) => Ok(SeatState::Available),
            ("SOLD", ..) => Ok(SeatState::Sold),
            ("HELD", Some(until), Some(r), holder) => Ok(SeatState::Held {
                until: Millis(until),
                reservation: ReservationId::from_trusted(r),
                holder: holder.map(UserId::from_trusted),
            }),
            (other, ..) => Err(Error::internal(format!("seat stored as {other:?} without its hold"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_holds_read_as_available() {
        let now = Millis(1_000);
        let held = |until| SeatState::Held {
            until: Millis(until),
            reservation: ReservationId::from_trusted(5),
            holder: Some(UserId::from_trusted(3)),
        };
        assert_eq!(held(999).status(now), SeatStatus::Available);
        assert_eq!(held(1_000).status(now), SeatStatus::Available);
        assert_eq!(held(1_000).lapsed_hold(now), Some(ReservationId::from_trusted(5)));
        assert_eq!(held(1_001).status(now), SeatStatus::Held);
        assert_eq!(held(1_001).lapsed_hold(now), None);
        assert_eq!(SeatState::Sold.status(now), SeatStatus::Sold);
        assert!(SeatState::Available.is_free(now));
        assert!(!held(1_001).taken_from(UserId::from_trusted(3), now), "your own hold is not taken from you");
        assert!(held(1_001).taken_from(UserId::from_trusted(4), now));
        assert!(SeatState::from_stored("HELD", None, None, None).is_err());
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
