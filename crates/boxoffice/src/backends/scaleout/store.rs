//! The scale-out backend: PostgreSQL as the system of record, shared by every instance.
//!
//! Row locks are always taken in one order — idempotency key, seat, reservation, user — so
//! concurrent payments, holds, charges and the sweeper cannot deadlock each other.

use super::{audit, seed};
use crate::domain::booking::{self, Reservation, ReservationStatus};
use crate::domain::error::Code;
use crate::domain::{
    ConcertId, Error, IdempotencyKey, Millis, PaymentId, Points, ReservationId, Result, ScheduleId, SeatNo, UserId,
};
use crate::store::{
    parse_stored, AuditReport, Concert, HoldRequest, LedgerEntry, PayRequest, PointsChange, PointsOp, PointsRequest,
    Receipt, Schedule, SeatRow, SeedSpec, Store, RESERVATION_COLS,
};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Executor, PgConnection, Row};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("migrations/0001_init.sql"))];

pub struct PgStore {
    pool: PgPool,
    timeout: Duration,
}

pub(crate) fn pg_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::PoolTimedOut => Error::unavailable("database", "no connection free within the timeout"),
        sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            Error::unavailable("database", &e)
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // serialization failure, deadlock, too many connections, shutting down, cannot connect now
            Some("40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03") => Error::unavailable("database", &e),
            _ => Error::internal(format!("database: {e}")),
        },
        _ => Error::internal(format!("database: {e}")),
    }
}

impl PgStore {
    /// Connects, applies pending migrations (under an advisory lock, so several instances may
    /// start at once) and returns the store. The pool is bounded and waits at most `timeout`.
    pub async fn connect(url: &str, pool_size: u32, timeout: Duration) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| Error::new(Code::InvalidDatabaseUrl, e.to_string()))?
            .application_name("boxoffice");
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(timeout)
            .connect_with(opts)
            .await
            .map_err(pg_err)?;
        let store = Self { pool, timeout };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock(7270227)").await.map_err(pg_err)?;
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .map_err(pg_err)?;
        for (version, sql) in MIGRATIONS {
            let done: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)")
                .bind(version)
                .fetch_one(&mut *tx)
                .await
                .map_err(pg_err)?;
            if !done {
                sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(pg_err)?;
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(version)
                    .bind(Millis::now().0)
                    .execute(&mut *tx)
                    .await
                    .map_err(pg_err)?;
            }
        }
        tx.commit().await.map_err(pg_err)
    }

    /// Every call gives up after the timeout, so a stopped or paused server means 503, not a hang.
    async fn bounded<T>(&self, f: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, f).await.unwrap_or_else(|_| Err(Error::unavailable("database", "timed out")))
    }

    /// A pooled connection; the wait is recorded as `boxoffice_db_pool_wait_seconds`.
    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        let asked = std::time::Instant::now();
        let c = self.pool.acquire().await.map_err(pg_err)?;
        metrics::histogram!("boxoffice_db_pool_wait_seconds", "kind" => "pool").record(asked.elapsed().as_secs_f64());
        Ok(c)
    }
}

fn reservation_from_row(r: &PgRow) -> Result<Reservation> {
    let status: String = r.get(5);
    Ok(Reservation {
        id: ReservationId::from_trusted(r.get(0)),
        user: UserId::from_trusted(r.get(1)),
        schedule: ScheduleId::from_trusted(r.get(2)),
        seat_no: SeatNo::from_trusted(r.get(3)),
        price: Points::from_trusted(r.get(4)),
        status: ReservationStatus::parse_stored(&status)?,
        created_at: Millis(r.get(6)),
        expires_at: Millis(r.get(7)),
        payment_id: r.get::<Option<i64>, _>(8).map(PaymentId::from_trusted),
    })
}

async fn balance_for_update(c: &mut PgConnection, user: UserId) -> Result<Points> {
    let b: Option<i64> = sqlx::query_scalar("SELECT balance FROM users WHERE id = $1 FOR UPDATE")
        .bind(user.get())
        .fetch_optional(&mut *c)
        .await
        .map_err(pg_err)?;
    b.map(Points::from_trusted).ok_or_else(|| booking::user_not_found(user))
}

async fn write_ledger(
    c: &mut PgConnection,
    user: UserId,
    op: PointsOp,
    amount: Points,
    after: Points,
    payment: Option<i64>,
    now: Millis,
) -> Result<()> {
    sqlx::query("UPDATE users SET balance = $2 WHERE id = $1")
        .bind(user.get())
        .bind(after.get())
        .execute(&mut *c)
        .await
        .map_err(pg_err)?;
    sqlx::query(
        "INSERT INTO point_ledger (user_id, kind, amount, balance_after, payment_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user.get())
    .bind(op.as_str())
    .bind(amount.get())
    .bind(after.get())
    .bind(payment)
    .bind(now.0)
    .execute(&mut *c)
    .await
    .map_err(pg_err)?;
    Ok(())
}

/// Claims an idempotency key for this transaction. Returns the stored response when the key was
/// already used: a concurrent request with the same key blocks on the unique index until the
/// first one commits (then replays it) or rolls back (then proceeds itself).
async fn claim_key(
    c: &mut PgConnection,
    user: UserId,
    scope: &str,
    key: &str,
    request: &str,
    now: Millis,
) -> Result<Option<String>> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency (user_id, scope, key, request, response, created_at) VALUES ($1, $2, $3, $4, NULL, $5) \
         ON CONFLICT DO NOTHING",
    )
    .bind(user.get())
    .bind(scope)
    .bind(key)
    .bind(request)
    .bind(now.0)
    .execute(&mut *c)
    .await
    .map_err(pg_err)?
    .rows_affected();
    if inserted == 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT request, response FROM idempotency WHERE user_id = $1 AND scope = $2 AND key = $3")
        .bind(user.get())
        .bind(scope)
        .bind(key)
        .fetch_one(&mut *c)
        .await
        .map_err(pg_err)?;
    booking::check_replay(&row.get::<String, _>(0), request)?;
    row.get::<Option<String>, _>(1)
        .map(Some)
        .ok_or_else(|| Error::internal("idempotency key claimed but never answered"))
}

async fn remember(
    c: &mut PgConnection,
    user: UserId,
    scope: &str,
    key: &str,
    response: &impl serde::Serialize,
) -> Result<()> {
    let body = crate::store::store_response(response)?;
    sqlx::query("UPDATE idempotency SET response = $4 WHERE user_id = $1 AND scope = $2 AND key = $3")
        .bind(user.get())
        .bind(scope)
        .bind(key)
        .bind(body)
        .execute(&mut *c)
        .await
        .map_err(pg_err)?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<()> {
        self.bounded(async {
            sqlx::query("SELECT 1").execute(&mut *self.conn().await?).await.map(|_| ()).map_err(pg_err)
        })
        .await
    }

    async fn concerts(&self) -> Result<Vec<Concert>> {
        self.bounded(async {
            let rows = sqlx::query("SELECT id, title, venue FROM concerts ORDER BY id")
                .fetch_all(&mut *self.conn().await?)
                .await
                .map_err(pg_err)?;
            Ok(rows
                .iter()
                .map(|r| Concert { id: ConcertId::from_trusted(r.get(0)), title: r.get(1), venue: r.get(2) })
                .collect())
        })
        .await
    }

    async fn schedules(&self) -> Result<Vec<Schedule>> {
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT id, concert_id, starts_at, seat_count FROM schedules ORDER BY concert_id, starts_at, id",
            )
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(pg_err)?;
            Ok(rows
                .iter()
                .map(|r| Schedule {
                    id: ScheduleId::from_trusted(r.get(0)),
                    concert: ConcertId::from_trusted(r.get(1)),
                    starts_at: Millis(r.get(2)),
                    seat_count: r.get(3),
                })
                .collect())
        })
        .await
    }

    async fn seats(&self, schedule: ScheduleId) -> Result<Vec<SeatRow>> {
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT seat_no, price, status, hold_expires_at FROM seats WHERE schedule_id = $1 ORDER BY seat_no",
            )
            .bind(schedule.get())
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(pg_err)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let status: &str = r.get(2);
                    SeatRow {
                        seat_no: SeatNo::from_trusted(r.get(0)),
                        price: Points::from_trusted(r.get(1)),
                        sold: status == "SOLD",
                        held_until: if status == "HELD" { r.get::<Option<i64>, _>(3).map(Millis) } else { None },
                    }
                })
                .collect())
        })
        .await
    }

    async fn user_exists(&self, user: UserId) -> Result<bool> {
        self.bounded(async {
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
                .bind(user.get())
                .fetch_one(&mut *self.conn().await?)
                .await
                .map_err(pg_err)
        })
        .await
    }

    async fn user_id_ranges(&self) -> Result<Vec<(UserId, UserId)>> {
        // A batch read at start: no request timeout.
        let rows: Vec<(i64, i64)> =
            sqlx::query_as(crate::store::USER_ID_RANGES).fetch_all(&self.pool).await.map_err(pg_err)?;
        Ok(rows.into_iter().map(|(a, b)| (UserId::from_trusted(a), UserId::from_trusted(b))).collect())
    }

    async fn hold(&self, req: HoldRequest) -> Result<Reservation> {
        self.bounded(async {
            // One statement: a conditional UPDATE takes the seat (only one of any number of
            // concurrent holds can match), the reservation is inserted from its result, and an
            // expired hold it replaced is marked EXPIRED.
            let row = sqlx::query(
                "WITH target AS ( \
                   SELECT reservation_id AS old_id FROM seats WHERE schedule_id = $1 AND seat_no = $2 \
                 ), upd AS ( \
                   UPDATE seats SET status = 'HELD', reservation_id = nextval('reservations_id_seq'), hold_expires_at = $4 \
                   WHERE schedule_id = $1 AND seat_no = $2 \
                     AND (status = 'AVAILABLE' OR (status = 'HELD' AND hold_expires_at <= $5)) \
                   RETURNING reservation_id, price \
                 ), ins AS ( \
                   INSERT INTO reservations (id, user_id, schedule_id, seat_no, price, status, created_at, expires_at) \
                   SELECT reservation_id, $3, $1, $2, price, 'HELD', $5, $4 FROM upd \
                   RETURNING id, price \
                 ), old AS ( \
                   UPDATE reservations SET status = 'EXPIRED' \
                   WHERE id = (SELECT old_id FROM target) AND status = 'HELD' AND EXISTS (SELECT 1 FROM upd) \
                 ) \
                 SELECT (SELECT id FROM ins), (SELECT price FROM ins), EXISTS (SELECT 1 FROM target)",
            )
            .bind(req.schedule.get())
            .bind(req.seat_no.get())
            .bind(req.user.get())
            .bind(req.expires_at.0)
            .bind(req.now.0)
            .fetch_one(&mut *self.conn().await?)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.code().as_deref() == Some("23503") => booking::user_not_found(req.user),
                _ => pg_err(e),
            })?;
            let (id, price, exists): (Option<i64>, Option<i64>, bool) = (row.get(0), row.get(1), row.get(2));
            match (id, price) {
                (Some(id), Some(price)) => Ok(req.held(ReservationId::from_trusted(id), Points::from_trusted(price))),
                _ if !exists => Err(Error::new(Code::SeatNotFound,
                    format!("schedule {} has no seat {}", req.schedule, req.seat_no.get()),
                )),
                _ => Err(Error::seat_unavailable()),
            }
        })
        .await
    }

    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>> {
        self.bounded(async {
            let row = sqlx::query(&format!("SELECT {RESERVATION_COLS} FROM reservations WHERE id = $1"))
                .bind(id.get())
                .fetch_optional(&mut *self.conn().await?)
                .await
                .map_err(pg_err)?;
            row.as_ref().map(reservation_from_row).transpose()
        })
        .await
    }

    async fn payment_replay(&self, user: UserId, key: &IdempotencyKey) -> Result<Option<Receipt>> {
        self.bounded(async {
            let stored: Option<Option<String>> = sqlx::query_scalar(
                "SELECT response FROM idempotency WHERE user_id = $1 AND scope = 'payment' AND key = $2",
            )
            .bind(user.get())
            .bind(key.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await
            .map_err(pg_err)?;
            stored.flatten().map(|r| parse_stored(&r)).transpose()
        })
        .await
    }

    async fn pay(&self, req: PayRequest) -> Result<Receipt> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(pg_err)?;
            let request = req.reservation.get().to_string();
            if let Some(stored) = claim_key(&mut tx, req.user, "payment", req.key.as_str(), &request, req.now).await? {
                return parse_stored(&stored);
            }
            // The seat a reservation names never changes, so it can be read before locking; the
            // locks then go seat -> reservation -> user, the order every transaction uses.
            let seat: Option<(i64, i32)> =
                sqlx::query_as("SELECT schedule_id, seat_no FROM reservations WHERE id = $1")
                    .bind(req.reservation.get())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(pg_err)?;
            let (schedule, seat_no) = seat.ok_or_else(|| booking::reservation_not_found(req.reservation))?;
            sqlx::query("SELECT 1 FROM seats WHERE schedule_id = $1 AND seat_no = $2 FOR UPDATE")
                .bind(schedule)
                .bind(seat_no)
                .execute(&mut *tx)
                .await
                .map_err(pg_err)?;
            let row = sqlx::query(&format!("SELECT {RESERVATION_COLS} FROM reservations WHERE id = $1 FOR UPDATE"))
                .bind(req.reservation.get())
                .fetch_one(&mut *tx)
                .await
                .map_err(pg_err)?;
            let res = reservation_from_row(&row)?;
            res.check_payable(req.user, req.now)?;
            let after = booking::debit(balance_for_update(&mut tx, req.user).await?, res.price)?;
            let payment_id: i64 = sqlx::query_scalar(
                "INSERT INTO payments (reservation_id, user_id, amount, idempotency_key, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(res.id.get())
            .bind(req.user.get())
            .bind(res.price.get())
            .bind(req.key.as_str())
            .bind(req.now.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(pg_err)?;
            write_ledger(&mut tx, req.user, PointsOp::Use, res.price, after, Some(payment_id), req.now).await?;
            let sold = sqlx::query(
                "UPDATE seats SET status = 'SOLD', hold_expires_at = NULL \
                 WHERE schedule_id = $1 AND seat_no = $2 AND reservation_id = $3 AND status = 'HELD'",
            )
            .bind(schedule)
            .bind(seat_no)
            .bind(res.id.get())
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?
            .rows_affected();
            if sold != 1 {
                return Err(Error::internal(format!("seat of reservation {} is not held by it", res.id)));
            }
            sqlx::query(
                "UPDATE reservations SET status = 'CONFIRMED', confirmed_at = $2, payment_id = $3 WHERE id = $1",
            )
            .bind(res.id.get())
            .bind(req.now.0)
            .bind(payment_id)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?;
            let receipt =
                Receipt { payment_id, reservation_id: res.id.get(), amount: res.price.get(), balance: after.get() };
            remember(&mut tx, req.user, "payment", req.key.as_str(), &receipt).await?;
            tx.commit().await.map_err(pg_err)?;
            Ok(receipt)
        })
        .await
    }

    async fn balance(&self, user: UserId) -> Result<Points> {
        self.bounded(async {
            let b: Option<i64> = sqlx::query_scalar("SELECT balance FROM users WHERE id = $1")
                .bind(user.get())
                .fetch_optional(&mut *self.conn().await?)
                .await
                .map_err(pg_err)?;
            b.map(Points::from_trusted).ok_or_else(|| booking::user_not_found(user))
        })
        .await
    }

    async fn move_points(&self, req: PointsRequest) -> Result<PointsChange> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(pg_err)?;
            let scope = req.op.as_str();
            let request = req.amount.get().to_string();
            if let Some(key) = &req.key {
                if let Some(stored) = claim_key(&mut tx, req.user, scope, key.as_str(), &request, req.now).await? {
                    return parse_stored(&stored);
                }
            }
            let before = balance_for_update(&mut tx, req.user).await?;
            let after = match req.op {
                PointsOp::Charge => booking::credit(before, req.amount)?,
                PointsOp::Use => booking::debit(before, req.amount)?,
            };
            write_ledger(&mut tx, req.user, req.op, req.amount, after, None, req.now).await?;
            let change = PointsChange { user_id: req.user.get(), amount: req.amount.get(), balance: after.get() };
            if let Some(key) = &req.key {
                remember(&mut tx, req.user, scope, key.as_str(), &change).await?;
            }
            tx.commit().await.map_err(pg_err)?;
            Ok(change)
        })
        .await
    }

    async fn history(&self, user: UserId, limit: u32) -> Result<Vec<LedgerEntry>> {
        self.balance(user).await?;
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT id, kind, amount, balance_after, payment_id, created_at FROM point_ledger \
                 WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(user.get())
            .bind(limit as i64)
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(pg_err)?;
            Ok(rows
                .iter()
                .map(|r| LedgerEntry {
                    id: r.get(0),
                    op: r.get(1),
                    amount: Points::from_trusted(r.get(2)),
                    balance_after: Points::from_trusted(r.get(3)),
                    payment_id: r.get::<Option<i64>, _>(4).map(PaymentId::from_trusted),
                    created_at: Millis(r.get(5)),
                })
                .collect())
        })
        .await
    }

    async fn expire_holds(&self, now: Millis) -> Result<u64> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(pg_err)?;
            // Seats before reservations, the lock order of every other transaction.
            sqlx::query(
                "UPDATE seats SET status = 'AVAILABLE', reservation_id = NULL, hold_expires_at = NULL \
                 WHERE status = 'HELD' AND hold_expires_at <= $1",
            )
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?;
            let n =
                sqlx::query("UPDATE reservations SET status = 'EXPIRED' WHERE status = 'HELD' AND expires_at <= $1")
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(pg_err)?
                    .rows_affected();
            tx.commit().await.map_err(pg_err)?;
            Ok(n)
        })
        .await
    }

    async fn holds_past_expiry(&self, now: Millis) -> Result<u64> {
        self.bounded(async {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM seats WHERE status = 'HELD' AND hold_expires_at <= $1")
                    .bind(now.0)
                    .fetch_one(&mut *self.conn().await?)
                    .await
                    .map_err(pg_err)?;
            Ok(n as u64)
        })
        .await
    }

    fn pool_stats(&self) -> crate::store::PoolStats {
        let size = self.pool.size() as u64;
        crate::store::PoolStats { size, in_use: size.saturating_sub(self.pool.num_idle() as u64) }
    }

    async fn is_empty(&self) -> Result<bool> {
        self.bounded(async {
            sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM users) AND NOT EXISTS (SELECT 1 FROM concerts)")
                .fetch_one(&mut *self.conn().await?)
                .await
                .map_err(pg_err)
        })
        .await
    }

    async fn seed(&self, spec: SeedSpec, now: Millis) -> Result<()> {
        // Seeding is a batch job, not a request: no request timeout.
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        seed::seed(&mut tx, spec, now).await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn audit(&self, now: Millis) -> Result<AuditReport> {
        let mut c = self.pool.acquire().await.map_err(pg_err)?;
        audit::run(&mut c, now).await
    }
}
