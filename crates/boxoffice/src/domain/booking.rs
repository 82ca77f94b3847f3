//! Booking rules: who may pay for which reservation, and how balances move. Stores load rows
//! inside their transaction and ask these functions what is allowed.

use super::error::Code;
use super::{Error, Millis, PaymentId, Points, ReservationId, ScheduleId, SeatNo, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    Held,
    Confirmed,
    Expired,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "HELD",
            Self::Confirmed => "CONFIRMED",
            Self::Expired => "EXPIRED",
        }
    }

    pub fn parse_stored(s: &str) -> Result<Self, Error> {
        match s {
            "HELD" => Ok(Self::Held),
            "CONFIRMED" => Ok(Self::Confirmed),
            "EXPIRED" => Ok(Self::Expired),
            other => Err(Error::internal(format!("unknown reservation status {other:?} in store"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: ReservationId,
    pub user: UserId,
    pub schedule: ScheduleId,
    pub seat_no: SeatNo,
    pub price: Points,
    pub status: ReservationStatus,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub payment_id: Option<PaymentId>,
}

impl Reservation {
    /// The status a reader sees now: a hold past its time is expired even before the sweeper ran.
    pub fn effective_status(&self, now: Millis) -> ReservationStatus {
        match self.status {
            ReservationStatus::Held if self.expires_at <= now => ReservationStatus::Expired,
            s => s,
        }
    }

    /// Hide other people's reservations behind the same answer as a missing one.
    pub fn owned_by(self, user: UserId) -> Result<Self, Error> {
        if self.user == user {
            Ok(self)
        } else {
            Err(reservation_not_found(self.id))
        }
    }

    /// May `user` pay for this reservation at `now`?
    pub fn check_payable(&self, user: UserId, now: Millis) -> Result<(), Error> {
        if self.user != user {
            return Err(reservation_not_found(self.id));
        }
        match self.effective_status(now) {
            ReservationStatus::Held => Ok(()),
            ReservationStatus::Confirmed => {
                Err(Error::new(Code::AlreadyPaid, format!("reservation {} is already paid", self.id)))
            }
            ReservationStatus::Expired => {
                Err(Error::new(Code::HoldExpired, format!("the hold of reservation {} has expired", self.id)))
            }
        }
    }
}

pub fn reservation_not_found(id: ReservationId) -> Error {
    Error::new(Code::ReservationNotFound, format!("no reservation {id}"))
}

pub fn user_not_found(id: UserId) -> Error {
    Error::new(Code::UserNotFound, format!("no user {id}"))
}

/// The balance after adding `amount`, or why not.
pub fn credit(balance: Points, amount: Points) -> Result<Points, Error> {
    let after = balance.get() + amount.get(); // both bounded far below i64::MAX
    if after > Points::MAX_BALANCE {
        return Err(Error::new(Code::BalanceLimit, format!("a balance may not exceed {} points", Points::MAX_BALANCE)));
    }
    Ok(Points::from_trusted(after))
}

/// The balance after taking `amount`, or why not.
pub fn debit(balance: Points, amount: Points) -> Result<Points, Error> {
    if balance.get() < amount.get() {
        return Err(Error::new(
            Code::InsufficientPoints,
            format!("balance {} is less than {}", balance.get(), amount.get()),
        ));
    }
    Ok(Points::from_trusted(balance.get() - amount.get()))
}

/// A replayed idempotent request must be the same request; a different one under the same key is
/// a client bug we refuse rather than guess at.
pub fn check_replay(stored_request: &str, request: &str) -> Result<(), Error> {
    if stored_request == request {
        Ok(())
    } else {
        Err(Error::new(Code::IdempotencyKeyReused, "this Idempotency-Key was already used for a different request"))
    }
}

/// The price of a seat in seeded data: the first rows cost more.
pub fn seeded_price(seat_no: i32) -> Points {
    Points::from_trusted(if seat_no <= 10 { 150_000 } else { 90_000 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(user: i64, expires: i64) -> Reservation {
        Reservation {
            id: ReservationId::from_trusted(1),
            user: UserId::from_trusted(user),
            schedule: ScheduleId::from_trusted(1),
            seat_no: SeatNo::from_trusted(1),
            price: Points::from_trusted(100),
            status: ReservationStatus::Held,
            created_at: Millis(0),
            expires_at: Millis(expires),
            payment_id: None,
        }
    }

    #[test]
    fn only_the_owner_pays_a_live_hold() {
        let r = held(1, 1_000);
        assert!(r.check_payable(UserId::from_trusted(1), Millis(999)).is_ok());
        assert_eq!(r.check_payable(UserId::from_trusted(2), Millis(0)).unwrap_err().code, Code::ReservationNotFound);
        assert_eq!(r.check_payable(UserId::from_trusted(1), Millis(1_000)).unwrap_err().code, Code::HoldExpired);
        let paid = Reservation { status: ReservationStatus::Confirmed, ..r };
        assert_eq!(paid.check_payable(UserId::from_trusted(1), Millis(0)).unwrap_err().code, Code::AlreadyPaid);
    }

    #[test]
    fn balances_never_go_negative_or_past_the_limit() {
        let p = Points::from_trusted;
        assert_eq!(debit(p(100), p(100)).unwrap(), p(0));
        assert_eq!(debit(p(99), p(100)).unwrap_err().code, Code::InsufficientPoints);
        assert_eq!(credit(p(Points::MAX_BALANCE), p(1)).unwrap_err().code, Code::BalanceLimit);
        assert_eq!(credit(p(1), p(2)).unwrap(), p(3));
    }

    #[test]
    fn replays_must_match() {
        assert!(check_replay("a", "a").is_ok());
        assert_eq!(check_replay("a", "b").unwrap_err().code, Code::IdempotencyKeyReused);
    }
}
