//! Booking rules: holds, releases, payments and points. A backend loads the rows a use case
//! needs inside its transaction, asks these functions what is allowed and what follows, and
//! writes exactly that; no rule is written in a backend.

use super::error::Code;
use super::seat::SeatState;
use super::{Error, IdempotencyKey, Millis, PaymentId, Points, ReservationId, ScheduleId, SeatNo, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    Held,
    Confirmed,
    Expired,
    /// Let go by its owner before it ran out.
    Released,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "HELD",
            Self::Confirmed => "CONFIRMED",
            Self::Expired => "EXPIRED",
            Self::Released => "RELEASED",
        }
    }

    /// A status read back from a store; anything else there is a bug, on every backend.
    pub fn parse_stored(s: &str) -> Result<Self, Error> {
        match s {
            "HELD" => Ok(Self::Held),
            "CONFIRMED" => Ok(Self::Confirmed),
            "EXPIRED" => Ok(Self::Expired),
            "RELEASED" => Ok(Self::Released),
            other => Err(Error::internal(format!("unknown reservation status {other:?} in store"))),
        }
    }
}

/// One seat of a reservation, at the price it was held for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldSeat {
    pub seat_no: SeatNo,
    pub price: Points,
}

/// A hold of one or more seats of one date, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: ReservationId,
    pub user: UserId,
    pub schedule: ScheduleId,
    /// In seat order; never empty.
    pub seats: Vec<HeldSeat>,
    pub status: ReservationStatus,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub payment_id: Option<PaymentId>,
}

impl Reservation {
    /// What the seats cost together: what a payment debits.
    pub fn price(&self) -> Points {
        Points::from_trusted(self.seats.iter().map(|s| s.price.get()).sum())
    }

    pub fn seat_numbers(&self) -> Vec<SeatNo> {
        self.seats.iter().map(|s| s.seat_no).collect()
    }

    /// The status a reader sees now: a hold past its time is expired even before the sweeper ran.
    pub fn effective_status(&self, now: Millis) -> ReservationStatus {
        match self.status {
            ReservationStatus::Held if self.expires_at <= now => ReservationStatus::Expired,
            s => s,
        }
    }

    pub fn is_live_hold(&self, now: Millis) -> bool {
        self.effective_status(now) == ReservationStatus::Held
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
            ReservationStatus::Expired => Err(hold_expired(self.id)),
            ReservationStatus::Released => {
                Err(Error::new(Code::HoldExpired, format!("reservation {} was released by its owner", self.id)))
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

pub fn seat_not_found(schedule: ScheduleId, seat: SeatNo) -> Error {
    Error::new(Code::SeatNotFound, format!("schedule {schedule} has no seat {}", seat.get()))
}

fn hold_expired(id: ReservationId) -> Error {
    Error::new(Code::HoldExpired, format!("the hold of reservation {id} has expired"))
}

// ---- holds ----

/// The seats a hold asks for: 1 to `max` distinct seats of one date, in seat order.
pub fn order_seats(mut seats: Vec<SeatNo>, max: usize) -> Result<Vec<SeatNo>, Error> {
    seats.sort_unstable();
    let n = seats.len();
    seats.dedup();
    if seats.len() != n {
        return Err(Error::new(Code::InvalidSeatNo, "a seat is named twice"));
    }
    if seats.is_empty() {
        return Err(Error::new(Code::InvalidSeatNo, "a hold takes at least one seat"));
    }
    if seats.len() > max {
        return Err(Error::new(Code::TooManySeats, format!("a hold takes 1 to {max} seats, got {n}")));
    }
    Ok(seats)
}

/// A seat as a hold finds it.
#[derive(Debug, Clone, Copy)]
pub struct SeatForHold {
    pub seat_no: SeatNo,
    pub price: Points,
    pub state: SeatState,
}

/// What a hold does, decided from the seats as loaded and the user's live hold, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldDecision {
    /// The user already holds exactly these seats: answer that reservation again.
    Again(Reservation),
    /// Take these seats (all of them: a hold is all or nothing) until `expires_at`; holds
    /// that lapsed on them are ended by the same transaction.
    Take { seats: Vec<HeldSeat>, lapsed: Vec<ReservationId> },
}

pub fn decide_hold(
    schedule: ScheduleId,
    wanted: &[SeatNo],
    found: &[SeatForHold],
    live_hold: Option<Reservation>,
    now: Millis,
) -> Result<HoldDecision, Error> {
    if let Some(r) = live_hold.filter(|r| r.is_live_hold(now)) {
        if r.schedule == schedule && r.seat_numbers() == wanted {
            return Ok(HoldDecision::Again(r));
        }
        let held: Vec<String> = r.seats.iter().map(|s| s.seat_no.get().to_string()).collect();
        return Err(Error::new(
            Code::HoldLimit,
            format!(
                "you already hold seat(s) {} of schedule {} (reservation {}); pay for them or release them first",
                held.join(", "),
                r.schedule,
                r.id
            ),
        ));
    }
    if let Some(missing) = wanted.iter().find(|w| !found.iter().any(|f| f.seat_no == **w)) {
        return Err(seat_not_found(schedule, *missing));
    }
    let taken: Vec<i32> = found.iter().filter(|f| !f.state.is_free(now)).map(|f| f.seat_no.get()).collect();
    if !taken.is_empty() {
        return Err(seats_taken(wanted, taken));
    }
    let lapsed = found.iter().filter_map(|f| f.state.lapsed_hold(now)).collect();
    let seats = found.iter().map(|f| HeldSeat { seat_no: f.seat_no, price: f.price }).collect();
    Ok(HoldDecision::Take { seats, lapsed })
}

/// The refusal of a hold because some of its seats are taken: it names them.
pub fn seats_taken(wanted: &[SeatNo], taken: Vec<i32>) -> Error {
    let detail = if wanted.len() == 1 {
        "the seat is held or sold".to_owned()
    } else {
        let list: Vec<String> = taken.iter().map(|s| s.to_string()).collect();
        format!("seat(s) {} are held or sold; none of the seats was held", list.join(", "))
    };
    Error::new(Code::SeatUnavailable, detail).with_seats(taken)
}

/// What releasing a reservation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseDecision {
    /// Free its seats and mark it released.
    Release,
    /// Already released (or lapsed on its own): nothing to change, answer it as it is.
    AlreadyOver,
}

pub fn decide_release(r: &Reservation, user: UserId, now: Millis) -> Result<ReleaseDecision, Error> {
    if r.user != user {
        return Err(reservation_not_found(r.id));
    }
    match r.effective_status(now) {
        ReservationStatus::Held => Ok(ReleaseDecision::Release),
        ReservationStatus::Released | ReservationStatus::Expired => Ok(ReleaseDecision::AlreadyOver),
        ReservationStatus::Confirmed => Err(Error::new(
            Code::AlreadyPaid,
            format!("reservation {} is paid; a sold ticket cannot be released", r.id),
        )),
    }
}

// ---- payments and points ----

#[derive(Debug, Clone)]
pub struct PayRequest {
    pub user: UserId,
    pub reservation: ReservationId,
    pub key: IdempotencyKey,
    pub now: Millis,
}

impl PayRequest {
    /// What is stored with the Idempotency-Key, to tell a replay from a different request.
    pub fn fingerprint(&self) -> String {
        self.reservation.get().to_string()
    }
}

/// The outcome of a payment; stored under its Idempotency-Key so replays return it unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub payment_id: i64,
    pub reservation_id: i64,
    pub amount: i64,
    pub balance: i64,
}

/// What a payment writes, decided from the reservation and the balance as loaded.
#[derive(Debug, Clone)]
pub struct PaymentPlan {
    pub reservation: Reservation,
    pub amount: Points,
    pub balance_after: Points,
}

/// A row of the points ledger and the balance it leaves: what every change of points writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerRow {
    pub user: UserId,
    pub op: PointsOp,
    pub amount: Points,
    pub balance_after: Points,
    pub payment: Option<PaymentId>,
    pub at: Millis,
}

impl PaymentPlan {
    /// The debit of this payment.
    pub fn ledger_row(&self, payment: PaymentId, at: Millis) -> LedgerRow {
        LedgerRow {
            user: self.reservation.user,
            op: PointsOp::Use,
            amount: self.amount,
            balance_after: self.balance_after,
            payment: Some(payment),
            at,
        }
    }

    pub fn receipt(&self, payment: PaymentId) -> Receipt {
        Receipt {
            payment_id: payment.get(),
            reservation_id: self.reservation.id.get(),
            amount: self.amount.get(),
            balance: self.balance_after.get(),
        }
    }
}

/// The whole payment rule: the reservation must exist, be the payer's, and still be held; the
/// payer's balance must cover every seat of it.
pub fn plan_payment(
    req: &PayRequest,
    reservation: Option<Reservation>,
    balance: Option<Points>,
) -> Result<PaymentPlan, Error> {
    let reservation = reservation.ok_or_else(|| reservation_not_found(req.reservation))?;
    reservation.check_payable(req.user, req.now)?;
    let balance = balance.ok_or_else(|| user_not_found(req.user))?;
    let amount = reservation.price();
    let balance_after = debit(balance, amount)?;
    Ok(PaymentPlan { reservation, amount, balance_after })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointsOp {
    Charge,
    Use,
}

impl PointsOp {
    pub fn as_str(self) -> &'static str {
        match self {
            PointsOp::Charge => "CHARGE",
            PointsOp::Use => "USE",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PointsRequest {
    pub user: UserId,
    pub op: PointsOp,
    pub amount: Points,
    pub key: Option<IdempotencyKey>,
    pub now: Millis,
}

impl PointsRequest {
    /// The ledger row of this change, once `plan_points` allowed it.
    pub fn ledger_row(&self, change: &PointsChange) -> LedgerRow {
        LedgerRow {
            user: self.user,
            op: self.op,
            amount: self.amount,
            balance_after: Points::from_trusted(change.balance),
            payment: None,
            at: self.now,
        }
    }

    pub fn fingerprint(&self) -> String {
        self.amount.get().to_string()
    }

    /// The scope its Idempotency-Key is remembered under.
    pub fn scope(&self) -> &'static str {
        self.op.as_str()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PointsChange {
    pub user_id: i64,
    pub amount: i64,
    pub balance: i64,
}

/// The points rule: the balance after the change, or why not.
pub fn plan_points(req: &PointsRequest, balance: Option<Points>) -> Result<PointsChange, Error> {
    let before = balance.ok_or_else(|| user_not_found(req.user))?;
    let after = match req.op {
        PointsOp::Charge => credit(before, req.amount)?,
        PointsOp::Use => debit(before, req.amount)?,
    };
    Ok(PointsChange { user_id: req.user.get(), amount: req.amount.get(), balance: after.get() })
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

    fn seat(n: i32) -> SeatNo {
        SeatNo::from_trusted(n)
    }

    fn held(user: i64, expires: i64, seats: &[i32]) -> Reservation {
        Reservation {
            id: ReservationId::from_trusted(1),
            user: UserId::from_trusted(user),
            schedule: ScheduleId::from_trusted(1),
            seats: seats.iter().map(|n| HeldSeat { seat_no: seat(*n), price: Points::from_trusted(100) }).collect(),
            status: ReservationStatus::Held,
            created_at: Millis(0),
            expires_at: Millis(expires),
            payment_id: None,
        }
    }

    fn pay(user: i64, now: i64) -> PayRequest {
        PayRequest {
            user: UserId::from_trusted(user),
            reservation: ReservationId::from_trusted(1),
            key: IdempotencyKey::parse("k").unwrap(),
            now: Millis(now),
        }
    }

    #[test]
    fn only_the_owner_pays_a_live_hold_for_all_its_seats() {
        let r = held(1, 1_000, &[3, 4]);
        let p = Points::from_trusted;
        let plan = plan_payment(&pay(1, 999), Some(r.clone()), Some(p(250))).unwrap();
        assert_eq!((plan.amount, plan.balance_after), (p(200), p(50)));
        let code = |res: Result<PaymentPlan, Error>| res.unwrap_err().code;
        assert_eq!(code(plan_payment(&pay(1, 999), Some(r.clone()), Some(p(199)))), Code::InsufficientPoints);
        assert_eq!(code(plan_payment(&pay(2, 0), Some(r.clone()), Some(p(999)))), Code::ReservationNotFound);
        assert_eq!(code(plan_payment(&pay(1, 1_000), Some(r.clone()), Some(p(999)))), Code::HoldExpired);
        assert_eq!(code(plan_payment(&pay(1, 0), None, Some(p(999)))), Code::ReservationNotFound);
        let paid = Reservation { status: ReservationStatus::Confirmed, ..r.clone() };
        assert_eq!(code(plan_payment(&pay(1, 0), Some(paid), Some(p(999)))), Code::AlreadyPaid);
        let released = Reservation { status: ReservationStatus::Released, ..r };
        assert_eq!(code(plan_payment(&pay(1, 0), Some(released), Some(p(999)))), Code::HoldExpired);
    }

    #[test]
    fn a_hold_is_all_or_nothing_and_names_the_taken_seats() {
        let s = ScheduleId::from_trusted(1);
        let now = Millis(1_000);
        let free = |n| SeatForHold { seat_no: seat(n), price: Points::from_trusted(10), state: SeatState::Available };
        let held_by = |n, until| SeatForHold {
            seat_no: seat(n),
            price: Points::from_trusted(10),
            state: SeatState::Held {
                until: Millis(until),
                reservation: ReservationId::from_trusted(9),
                holder: Some(UserId::from_trusted(9)),
            },
        };
        let wanted = [seat(1), seat(2), seat(3)];
        let e = decide_hold(s, &wanted, &[free(1), held_by(2, 5_000), free(3)], None, now).unwrap_err();
        assert_eq!((e.code, e.seats.clone()), (Code::SeatUnavailable, vec![2]));
        // A lapsed hold is free, and is ended by the hold that takes its seat.
        match decide_hold(s, &wanted, &[free(1), held_by(2, 1_000), free(3)], None, now).unwrap() {
            HoldDecision::Take { seats, lapsed } => {
                assert_eq!(seats.len(), 3);
                assert_eq!(lapsed, vec![ReservationId::from_trusted(9)]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(decide_hold(s, &wanted, &[free(1), free(3)], None, now).unwrap_err().code, Code::SeatNotFound);
        // Holding again what you hold answers it again; anything else while you hold is refused.
        let mine = held(7, 5_000, &[1, 2, 3]);
        assert!(matches!(decide_hold(s, &wanted, &[], Some(mine.clone()), now), Ok(HoldDecision::Again(_))));
        assert_eq!(decide_hold(s, &[seat(4)], &[free(4)], Some(mine), now).unwrap_err().code, Code::HoldLimit);
        // A lapsed hold of your own does not count.
        let old = held(7, 900, &[1]);
        assert!(matches!(decide_hold(s, &[seat(4)], &[free(4)], Some(old), now), Ok(HoldDecision::Take { .. })));
    }

    #[test]
    fn seats_of_an_order_are_distinct_and_bounded() {
        assert_eq!(order_seats(vec![seat(4), seat(2)], 4).unwrap(), vec![seat(2), seat(4)]);
        assert_eq!(order_seats(vec![seat(2), seat(2)], 4).unwrap_err().code, Code::InvalidSeatNo);
        assert_eq!(order_seats(vec![], 4).unwrap_err().code, Code::InvalidSeatNo);
        assert_eq!(order_seats((1..=5).map(seat).collect(), 4).unwrap_err().code, Code::TooManySeats);
    }

    #[test]
    fn release_is_for_the_owner_of_a_hold_not_of_a_sale() {
        let r = held(1, 1_000, &[1]);
        assert_eq!(decide_release(&r, UserId::from_trusted(1), Millis(0)).unwrap(), ReleaseDecision::Release);
        assert_eq!(decide_release(&r, UserId::from_trusted(1), Millis(1_000)).unwrap(), ReleaseDecision::AlreadyOver);
        assert_eq!(decide_release(&r, UserId::from_trusted(2), Millis(0)).unwrap_err().code, Code::ReservationNotFound);
        let paid = Reservation { status: ReservationStatus::Confirmed, ..r };
        assert_eq!(decide_release(&paid, UserId::from_trusted(1), Millis(0)).unwrap_err().code, Code::AlreadyPaid);
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
