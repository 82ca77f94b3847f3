//! A Store that times every call and counts failures by operation, whatever the backend.

use super::{
    AuditReport, Concert, HoldRequest, LedgerEntry, PayRequest, PointsChange, PointsRequest, PoolStats, Receipt,
    Schedule, SeatRow, SeedSpec, Store,
};
use crate::domain::booking::Reservation;
use crate::domain::error::ErrorKind;
use crate::domain::{IdempotencyKey, Millis, Points, ReservationId, Result, ScheduleId, UserId};
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

pub struct Instrumented(pub Arc<dyn Store>);

/// Records `boxoffice_db_query_duration_seconds{op}`, and `boxoffice_db_errors_total{op}` for
/// failures of the store itself (not for answers like SEAT_UNAVAILABLE, which are business).
async fn timed<T>(op: &'static str, f: impl Future<Output = Result<T>>) -> Result<T> {
    let started = Instant::now();
    let result = f.await;
    metrics::histogram!("boxoffice_db_query_duration_seconds", "op" => op).record(started.elapsed().as_secs_f64());
    if let Err(e) = &result {
        if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Internal) {
            metrics::counter!("boxoffice_db_errors_total", "op" => op).increment(1);
        }
    }
    result
}

#[async_trait]
impl Store for Instrumented {
    async fn ping(&self) -> Result<()> {
        timed("ping", self.0.ping()).await
    }
    async fn concerts(&self) -> Result<Vec<Concert>> {
        timed("concerts", self.0.concerts()).await
    }
    async fn schedules(&self) -> Result<Vec<Schedule>> {
        timed("schedules", self.0.schedules()).await
    }
    async fn seats(&self, schedule: ScheduleId) -> Result<Vec<SeatRow>> {
        timed("seats", self.0.seats(schedule)).await
    }
    async fn user_exists(&self, user: UserId) -> Result<bool> {
        timed("user_exists", self.0.user_exists(user)).await
    }
    async fn user_id_ranges(&self) -> Result<Vec<(UserId, UserId)>> {
        timed("user_id_ranges", self.0.user_id_ranges()).await
    }
    async fn hold(&self, req: HoldRequest) -> Result<Reservation> {
        timed("hold", self.0.hold(req)).await
    }
    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>> {
        timed("reservation", self.0.reservation(id)).await
    }
    async fn payment_replay(&self, user: UserId, key: &IdempotencyKey) -> Result<Option<Receipt>> {
        timed("payment_replay", self.0.payment_replay(user, key)).await
    }
    async fn pay(&self, req: PayRequest) -> Result<Receipt> {
        timed("pay", self.0.pay(req)).await
    }
    async fn balance(&self, user: UserId) -> Result<Points> {
        timed("balance", self.0.balance(user)).await
    }
    async fn move_points(&self, req: PointsRequest) -> Result<PointsChange> {
        timed("move_points", self.0.move_points(req)).await
    }
    async fn history(&self, user: UserId, limit: u32) -> Result<Vec<LedgerEntry>> {
        timed("history", self.0.history(user, limit)).await
    }
    async fn expire_holds(&self, now: Millis) -> Result<u64> {
        timed("expire_holds", self.0.expire_holds(now)).await
    }
    async fn holds_past_expiry(&self, now: Millis) -> Result<u64> {
        timed("holds_past_expiry", self.0.holds_past_expiry(now)).await
    }
    fn pool_stats(&self) -> PoolStats {
        self.0.pool_stats()
    }
    async fn is_empty(&self) -> Result<bool> {
        self.0.is_empty().await
    }
    async fn seed(&self, spec: SeedSpec, now: Millis) -> Result<()> {
        self.0.seed(spec, now).await
    }
    async fn audit(&self, now: Millis) -> Result<AuditReport> {
        self.0.audit(now).await
    }
}
