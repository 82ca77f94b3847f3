//! The system of record: the ports the use cases talk to. Backends live in `crate::backends`.
//!
//! Every method is one use case's data step and runs in one transaction. Rules come from
//! `domain::booking`; a backend only loads rows, asks the domain and writes the outcome.
//!
//! The port is split by who calls it: `BookingStore` (the request path), `JobStore` (background
//! jobs) and `AdminStore` (seeding, audit, operators). Each is declared through `port!`, which
//! also writes its instrumented twin (`instrumented::Instrumented`): nothing is forwarded by hand.

pub mod instrumented;

/// What every store backend implements and shares, in one import.
pub(crate) mod for_backends {
    pub(crate) use super::{
        created_concert_log, inventory_sql, replay, seat_hold_lapsed, seat_is_free, store_response, AdminLogEntry,
        AdminStore, BookingStore, Concert, DrawSeed, Held, HoldRequest, JobStore, LedgerEntry, ReleaseRequest,
        Released, ReservationHead, Schedule, SeatRow, SeedSpec, Store, RESERVATION_COLS, USER_ID_RANGES,
    };
}

use crate::audit::AuditReport;
use crate::domain::booking::{PayRequest, PointsChange, PointsRequest, Receipt, Reservation};
use crate::domain::line_controls::{Inventory, LineChange, LineSettings};
use crate::domain::new_concert::NewConcert;
use crate::domain::seat::SeatState;
use crate::domain::{
    ConcertId, IdempotencyKey, Millis, PaymentId, Points, ReservationId, Result, ScheduleId, SeatNo, UserId,
};
use async_trait::async_trait;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concert {
    pub id: ConcertId,
    pub title: String,
    pub venue: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub id: ScheduleId,
    pub concert: ConcertId,
    pub starts_at: Millis,
    pub seat_count: i32,
}

/// One seat as stored; `SeatState::status` turns it into what a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatRow {
    pub seat_no: SeatNo,
    pub price: Points,
    pub state: SeatState,
}

#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub user: UserId,
    /// The concert of `schedule`: a user holds one set of seats per concert at a time.
    pub concert: ConcertId,
    pub schedule: ScheduleId,
    /// Distinct, in seat order (`booking::order_seats`).
    pub seats: Vec<SeatNo>,
    pub now: Millis,
    pub expires_at: Millis,
}

impl HoldRequest {
    /// The reservation a successful hold of `seats` creates.
    pub fn held(&self, id: ReservationId, seats: Vec<crate::domain::booking::HeldSeat>) -> Reservation {
        Reservation {
            id,
            user: self.user,
            schedule: self.schedule,
            seats,
            status: crate::domain::booking::ReservationStatus::Held,
            created_at: self.now,
            expires_at: self.expires_at,
            payment_id: None,
        }
    }
}

/// A hold's answer: the reservation, and whether it was made just now or is one the user
/// already had for exactly these seats.
#[derive(Debug, Clone)]
pub struct Held {
    pub reservation: Reservation,
    pub again: bool,
    /// Holds that had lapsed on these seats and were ended by this one.
    pub lapsed: Vec<ReservationId>,
}

#[derive(Debug, Clone, Copy)]
pub struct ReleaseRequest {
    pub user: UserId,
    pub reservation: ReservationId,
    pub now: Millis,
}

/// The reservation after a release, and whether this call freed its seats.
#[derive(Debug, Clone)]
pub struct Released {
    pub reservation: Reservation,
    pub freed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: i64,
    pub op: String,
    pub amount: Points,
    pub balance_after: Points,
    pub payment_id: Option<PaymentId>,
    pub created_at: Millis,
}

/// What `boxoffice seed` creates.
#[derive(Debug, Clone, Copy)]
pub struct SeedSpec {
    pub users: u32,
    pub concerts: u32,
    pub schedules: u32,
    pub seats: u32,
    pub balance: i64,
}

impl SeedSpec {
    /// The `--demo` data: one concert, 3 dates of 50 seats, users 1..=1000 with no points.
    pub const DEMO: SeedSpec = SeedSpec { users: 1000, concerts: 1, schedules: 3, seats: 50, balance: 0 };
}

/// The secret seed of an on-sale's draw and its published commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawSeed {
    pub seed: String,
    pub commitment: String,
}

impl DrawSeed {
    pub fn new() -> Self {
        let seed = crate::domain::draw::new_seed();
        Self { commitment: crate::domain::draw::commitment(&seed), seed }
    }
}

impl Default for DrawSeed {
    fn default() -> Self {
        Self::new()
    }
}

/// What the audit log keeps of a created concert.
pub(crate) fn created_concert_log(c: &Concert, schedules: &[Schedule], spec: &NewConcert) -> Result<String> {
    store_response(&serde_json::json!({
        "concertId": c.id.get(),
        "title": c.title,
        "venue": c.venue,
        "scheduleIds": schedules.iter().map(|s| s.id.get()).collect::<Vec<_>>(),
        "dates": spec.dates,
        "seatCount": spec.seat_count,
        "priceTiers": spec.tiers.iter().map(|t| serde_json::json!([t.from, t.to, t.price.get()])).collect::<Vec<_>>(),
    }))
}

/// One operator action, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminLogEntry {
    pub id: i64,
    pub at: Millis,
    pub concert_id: Option<ConcertId>,
    pub action: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u64,
    pub in_use: u64,
}

// ---- the rules' SQL twins and shared (de)serialisation, used by both backends ----

/// `SeatState::is_free` in SQL, for a `seats` row; `{now}` is where the instant is bound.
pub(crate) fn seat_is_free(now: &str) -> String {
    format!("(status = 'AVAILABLE' OR (status = 'HELD' AND hold_expires_at <= {now}))")
}

/// A seat whose hold ran out, which the sweeper frees.
pub(crate) fn seat_hold_lapsed(now: &str) -> String {
    format!("(status = 'HELD' AND hold_expires_at <= {now})")
}

/// Every concert's seats over all its dates, as (concert, unsold, free, first live hold's end);
/// `{now}` is where the instant is bound.
pub(crate) fn inventory_sql(now: &str) -> String {
    format!(
        "SELECT sc.concert_id, COUNT(*) FILTER (WHERE status <> 'SOLD'), COUNT(*) FILTER (WHERE {free}), \
         MIN(hold_expires_at) FILTER (WHERE status = 'HELD' AND hold_expires_at > {now}) \
         FROM seats JOIN schedules sc ON sc.id = seats.schedule_id GROUP BY sc.concert_id",
        free = seat_is_free(now),
    )
}

impl AdminLogEntry {
    /// From a stored row: (id, at, concert, action, before JSON, after JSON).
    pub(crate) fn from_row(
        id: i64,
        at: i64,
        concert: Option<i64>,
        action: String,
        before: Option<String>,
        after: Option<String>,
    ) -> Self {
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Self {
            id,
            at: Millis(at),
            concert_id: concert.map(ConcertId::from_trusted),
            action,
            before: json(before),
            after: json(after),
        }
    }
}

/// Runs of consecutive ids ("gaps and islands"), in SQL both dialects understand.
pub(crate) const USER_ID_RANGES: &str = "SELECT MIN(id), MAX(id) FROM \
     (SELECT id, id - ROW_NUMBER() OVER (ORDER BY id) AS run FROM users) AS ids GROUP BY run ORDER BY 1";

/// The columns of a reservation's own row, in `ReservationHead` order.
pub(crate) const RESERVATION_COLS: &str = "id, user_id, schedule_id, status, created_at, expires_at, payment_id";

/// A reservation's row before its seats are attached.
pub(crate) struct ReservationHead {
    pub id: i64,
    pub user: i64,
    pub schedule: i64,
    pub status: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub payment: Option<i64>,
}

impl ReservationHead {
    pub fn with_seats(self, seats: Vec<(i32, i64)>) -> Result<Reservation> {
        use crate::domain::booking::{HeldSeat, ReservationStatus};
        if seats.is_empty() {
            return Err(crate::domain::Error::internal(format!("reservation {} has no seats", self.id)));
        }
        Ok(Reservation {
            id: ReservationId::from_trusted(self.id),
            user: UserId::from_trusted(self.user),
            schedule: ScheduleId::from_trusted(self.schedule),
            seats: seats
                .into_iter()
                .map(|(n, p)| HeldSeat { seat_no: SeatNo::from_trusted(n), price: Points::from_trusted(p) })
                .collect(),
            status: ReservationStatus::parse_stored(&self.status)?,
            created_at: Millis(self.created_at),
            expires_at: Millis(self.expires_at),
            payment_id: self.payment.map(PaymentId::from_trusted),
        })
    }
}

/// An idempotent request's outcome as stored, and back.
pub(crate) fn store_response(response: &impl Serialize) -> Result<String> {
    serde_json::to_string(response).map_err(|e| crate::domain::Error::internal(e.to_string()))
}

/// The stored answer to replay, when the key was used before for the same request (another
/// request under the same key is refused). `stored` is (request, response).
pub(crate) fn replay<T: serde::de::DeserializeOwned>(
    stored: Option<(String, Option<String>)>,
    request: &str,
) -> Result<Option<T>> {
    let Some((stored_request, response)) = stored else { return Ok(None) };
    crate::domain::booking::check_replay(&stored_request, request)?;
    let response =
        response.ok_or_else(|| crate::domain::Error::internal("idempotency key claimed but never answered"))?;
    serde_json::from_str(&response)
        .map(Some)
        .map_err(|e| crate::domain::Error::internal(format!("stored idempotent response: {e}")))
}

/// Declares a port trait and its instrumented twin from one list of methods.
macro_rules! port {
    ($(#[$doc:meta])* pub trait $name:ident {
        $($(#[$fdoc:meta])* async fn $f:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty;)*
    }) => {
        $(#[$doc])*
        #[async_trait]
        pub trait $name: Send + Sync + 'static {
            $($(#[$fdoc])* async fn $f(&self $(, $arg: $ty)*) -> $ret;)*
        }

        #[async_trait]
        impl $name for instrumented::Instrumented {
            $(async fn $f(&self $(, $arg: $ty)*) -> $ret {
                instrumented::timed(stringify!($f), self.0.$f($($arg),*)).await
            })*
        }
    };
}

port! {
    /// What requests need, each call one transaction.
    pub trait BookingStore {
        /// Cheap round trip for readiness checks.
        async fn ping(&self) -> Result<()>;
        async fn concerts(&self) -> Result<Vec<Concert>>;
        async fn schedules(&self) -> Result<Vec<Schedule>>;
        /// Seats 1..N of a date, in seat order.
        async fn seats(&self, schedule: ScheduleId) -> Result<Vec<SeatRow>>;
        async fn user_exists(&self, user: UserId) -> Result<bool>;
        /// Every user id, as runs of consecutive ids `(first, last)`: seeded ids are one run.
        async fn user_id_ranges(&self) -> Result<Vec<(UserId, UserId)>>;
        /// Holds every seat asked for, or none (`booking::decide_hold`).
        async fn hold(&self, req: HoldRequest) -> Result<Held>;
        /// Lets go of a hold (`booking::decide_release`).
        async fn release(&self, req: ReleaseRequest) -> Result<Released>;
        async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>>;
        /// A user's reservations, newest first.
        async fn reservations_of(&self, user: UserId, limit: u32) -> Result<Vec<Reservation>>;
        /// A payment already made under this key.
        async fn payment_replay(&self, user: UserId, key: &IdempotencyKey) -> Result<Option<Receipt>>;
        /// Debits the points, sells every seat and confirms the reservation, all or nothing
        /// (`booking::plan_payment`).
        async fn pay(&self, req: PayRequest) -> Result<Receipt>;
        async fn balance(&self, user: UserId) -> Result<Points>;
        async fn move_points(&self, req: PointsRequest) -> Result<PointsChange>;
        async fn history(&self, user: UserId, limit: u32) -> Result<Vec<LedgerEntry>>;
    }
}

port! {
    /// What the background jobs need.
    pub trait JobStore {
        /// Marks holds past their time as expired and frees their seats; returns how many.
        async fn expire_holds(&self, now: Millis) -> Result<u64>;
        /// Holds past their time that the sweeper has not marked yet (the hold-expiry backlog).
        async fn holds_past_expiry(&self, now: Millis) -> Result<u64>;
        /// Every concert's seats: how many are unsold and free, and when a live hold runs out.
        async fn inventory(&self, now: Millis) -> Result<Vec<(ConcertId, Inventory)>>;
    }
}

port! {
    /// Seeding, the audit and other operator work.
    pub trait AdminStore {
        async fn is_empty(&self) -> Result<bool>;
        async fn seed(&self, spec: SeedSpec, now: Millis) -> Result<()>;
        /// Checks every invariant the store can see (and the queue's journal where it keeps one).
        async fn audit(&self, now: Millis) -> Result<AuditReport>;
        /// The operator's settings of every line that has any.
        async fn line_settings(&self) -> Result<Vec<(ConcertId, LineSettings)>>;
        /// Applies an operator's change to a line and logs it (before and after), in one
        /// transaction; returns the settings before and after.
        async fn change_line(&self, concert: ConcertId, change: LineChange, now: Millis) -> Result<(LineSettings, LineSettings)>;
        /// The operator actions, newest first.
        async fn admin_log(&self, limit: u32) -> Result<Vec<AdminLogEntry>>;
        /// Creates a concert with its dates and seats, and logs it; returns it with its dates.
        async fn create_concert(&self, concert: NewConcert, now: Millis) -> Result<(Concert, Vec<Schedule>)>;
        /// Every scheduled on-sale's draw seed and its commitment (made by `change_line` when an
        /// on-sale is first set).
        async fn draw_seeds(&self) -> Result<Vec<(ConcertId, DrawSeed)>>;
    }
}

/// A whole backend's store.
pub trait Store: BookingStore + JobStore + AdminStore {
    /// Connections in the pool and how many are busy, for metrics.
    fn pool_stats(&self) -> PoolStats;
}
