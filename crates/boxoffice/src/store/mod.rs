//! The system of record: the port the use cases talk to, and its backends.
//!
//! Every method is one use case's data step and runs in one transaction. Rules come from
//! `domain`; a backend only loads rows, asks the domain and writes the outcome.

pub mod instrumented;

use crate::domain::booking::Reservation;
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

/// One seat as stored; `SeatStatus::effective` turns it into what a reader sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRow {
    pub seat_no: SeatNo,
    pub price: Points,
    pub sold: bool,
    pub held_until: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub user: UserId,
    pub schedule: ScheduleId,
    pub seat_no: SeatNo,
    pub now: Millis,
    pub expires_at: Millis,
}

impl HoldRequest {
    /// The reservation a successful hold creates.
    pub fn held(&self, id: ReservationId, price: Points) -> Reservation {
        Reservation {
            id,
            user: self.user,
            schedule: self.schedule,
            seat_no: self.seat_no,
            price,
            status: crate::domain::booking::ReservationStatus::Held,
            created_at: self.now,
            expires_at: self.expires_at,
            payment_id: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PayRequest {
    pub user: UserId,
    pub reservation: ReservationId,
    pub key: IdempotencyKey,
    pub now: Millis,
}

/// The outcome of a payment; stored under its Idempotency-Key so replays return it unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub payment_id: i64,
    pub reservation_id: i64,
    pub amount: i64,
    pub balance: i64,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PointsChange {
    pub user_id: i64,
    pub amount: i64,
    pub balance: i64,
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

#[derive(Debug, Clone, Serialize)]
pub struct AuditCheck {
    pub name: &'static str,
    pub ok: bool,
    /// Offending rows, rendered as text; capped so a broken store cannot flood the report.
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub ok: bool,
    pub checks: Vec<AuditCheck>,
}

impl AuditReport {
    pub fn from_checks(checks: Vec<AuditCheck>) -> Self {
        Self { ok: checks.iter().all(|c| c.ok), checks }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u64,
    pub in_use: u64,
}

/// The columns both backends read a reservation from, in `Reservation` field order.
pub(crate) const RESERVATION_COLS: &str =
    "id, user_id, schedule_id, seat_no, price, status, created_at, expires_at, payment_id";

/// An idempotent request's outcome as stored, and back.
pub(crate) fn store_response(response: &impl Serialize) -> Result<String> {
    serde_json::to_string(response).map_err(|e| crate::domain::Error::internal(e.to_string()))
}

pub(crate) fn parse_stored<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| crate::domain::Error::internal(format!("stored idempotent response: {e}")))
}

/// Runs of consecutive ids ("gaps and islands"), in SQL both dialects understand.
pub(crate) const USER_ID_RANGES: &str = "SELECT MIN(id), MAX(id) FROM \
     (SELECT id, id - ROW_NUMBER() OVER (ORDER BY id) AS run FROM users) AS ids GROUP BY run ORDER BY 1";

/// The largest number of offending rows an audit check reports.
pub const AUDIT_SAMPLE: usize = 50;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<()>;
    async fn concerts(&self) -> Result<Vec<Concert>>;
    async fn schedules(&self) -> Result<Vec<Schedule>>;
    async fn seats(&self, schedule: ScheduleId) -> Result<Vec<SeatRow>>;
    async fn user_exists(&self, user: UserId) -> Result<bool>;
    /// Every user id, as runs of consecutive ids `(first, last)`: seeded ids are one run.
    async fn user_id_ranges(&self) -> Result<Vec<(UserId, UserId)>>;

    /// Holds the seat for the user; `SEAT_UNAVAILABLE` when someone else holds or bought it.
    async fn hold(&self, req: HoldRequest) -> Result<Reservation>;
    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>>;
    /// A payment already made under this key, with the reservation it paid.
    async fn payment_replay(&self, user: UserId, key: &IdempotencyKey) -> Result<Option<Receipt>>;
    /// Debits the points, sells the seat and confirms the reservation, all or nothing.
    async fn pay(&self, req: PayRequest) -> Result<Receipt>;

    async fn balance(&self, user: UserId) -> Result<Points>;
    async fn move_points(&self, req: PointsRequest) -> Result<PointsChange>;
    async fn history(&self, user: UserId, limit: u32) -> Result<Vec<LedgerEntry>>;

    /// Marks holds past their time as expired and frees their seats; returns how many.
    async fn expire_holds(&self, now: Millis) -> Result<u64>;
    /// Holds past their time that the sweeper has not marked yet (the hold-expiry backlog).
    async fn holds_past_expiry(&self, now: Millis) -> Result<u64>;
    /// Connections in the pool and how many are busy, for metrics.
    fn pool_stats(&self) -> PoolStats;

    async fn is_empty(&self) -> Result<bool>;
    async fn seed(&self, spec: SeedSpec, now: Millis) -> Result<()>;
    /// Checks every invariant the store can see (and the queue's journal where it keeps one).
    async fn audit(&self, now: Millis) -> Result<AuditReport>;
}
