//! The scale-out backend: PostgreSQL as the system of record, shared by every instance.
//!
//! Row locks are always taken in one order — idempotency key, seats (in seat order),
//! reservation, user — so concurrent payments, holds, releases, charges and the sweeper cannot
//! deadlock each other. A hold first tries a per-user advisory lock (and answers HOLD_LIMIT at
//! once when another hold of the same user is in flight); nothing waits on it while holding a row
//! lock, so it adds no cycle; it makes "one live hold per user and concert" hold under concurrency.

use super::statements::Statements;
use super::{audit, seed};
use crate::audit::AuditReport;
use crate::domain::booking::{
    self, HoldDecision, LedgerRow, PayRequest, PointsChange, PointsRequest, Receipt, ReleaseDecision, Reservation,
    SeatForHold,
};
use crate::domain::error::Code;
use crate::domain::line_controls::{Inventory, LineChange, LineSettings};
use crate::domain::new_concert::NewConcert;
use crate::domain::seat::SeatState;
use crate::domain::{
    ConcertId, Error, IdempotencyKey, Millis, PaymentId, Points, ReservationId, Result, ScheduleId, SeatNo, UserId,
};
use crate::store::for_backends::*;
use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, PgConnection, Postgres, Row};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_group_holds.sql")),
    (3, include_str!("migrations/0003_line_controls.sql")),
];

pub struct PgStore {
    pool: PgPool,
    timeout: Duration,
    stmts: Statements,
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
    /// `through_pooler`: the URL names a transaction pooler such as PgBouncer (`statements.rs`).
    pub async fn connect(url: &str, pool_size: u32, timeout: Duration, through_pooler: bool) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| Error::new(Code::InvalidDatabaseUrl, e.to_string()))?
            .application_name("boxoffice");
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(timeout)
            .connect_with(opts)
            .await
            .map_err(pg_err)?;
        let store = Self { pool, timeout, stmts: Statements::new(through_pooler) };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let stmts = self.stmts;
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock(7270227)").await.map_err(pg_err)?;
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .map_err(pg_err)?;
        for (version, sql) in MIGRATIONS {
            let done: bool = stmts
                .query_scalar("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)")
                .bind(version)
                .fetch_one(&mut *tx)
                .await
                .map_err(pg_err)?;
            if !done {
                sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(pg_err)?;
                stmts
                    .query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
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
    async fn pooled(&self) -> Result<PoolConnection<Postgres>> {
        let asked = std::time::Instant::now();
        let c = self.pool.acquire().await.map_err(pg_err)?;
        pool_waited(asked);
        Ok(c)
    }

    /// A connection for reads outside a use case's transaction; through a transaction pooler
    /// they run in one of their own, rolled back when dropped (they wrote nothing).
    async fn conn(&self) -> Result<ReadConn> {
        if !self.stmts.need_transactions() {
            return Ok(ReadConn::Direct(self.pooled().await?));
        }
        // The recorded wait includes the BEGIN (the pool hands out no connection to begin on
        // without borrowing it).
        let asked = std::time::Instant::now();
        let tx = self.pool.begin().await.map_err(pg_err)?;
        pool_waited(asked);
        Ok(ReadConn::InTransaction(tx))
    }
}

/// Records a wait for a pooled connection as `boxoffice_db_pool_wait_seconds`.
fn pool_waited(asked: std::time::Instant) {
    metrics::histogram!("boxoffice_db_pool_wait_seconds", "kind" => "pool").record(asked.elapsed().as_secs_f64());
}

/// A read's connection: pooled, or through a transaction pooler a transaction of its own.
enum ReadConn {
    Direct(PoolConnection<Postgres>),
    InTransaction(sqlx::Transaction<'static, Postgres>),
}

impl std::ops::Deref for ReadConn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match self {
            ReadConn::Direct(c) => c,
            ReadConn::InTransaction(t) => t,
        }
    }
}

impl std::ops::DerefMut for ReadConn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            ReadConn::Direct(c) => c,
            ReadConn::InTransaction(t) => t,
        }
    }
}

// ---- loading (inside the caller's transaction where one is open) ----

async fn reservations_where(
    c: &mut PgConnection,
    stmts: Statements,
    filter: &str,
    bind: impl FnOnce(
        sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Result<Vec<Reservation>> {
    let sql = format!(
        "SELECT {RESERVATION_COLS}, COALESCE((SELECT array_agg(seat_no ORDER BY seat_no) FROM reservation_seats \
         WHERE reservation_id = r.id), '{{}}'), COALESCE((SELECT array_agg(price ORDER BY seat_no) \
         FROM reservation_seats WHERE reservation_id = r.id), '{{}}') FROM reservations r WHERE {filter}"
    );
    let rows = bind(stmts.query(&sql)).fetch_all(&mut *c).await.map_err(pg_err)?;
    rows.iter()
        .map(|r| {
            let seats: Vec<i32> = r.get(7);
            let prices: Vec<i64> = r.get(8);
            ReservationHead {
                id: r.get(0),
                user: r.get(1),
                schedule: r.get(2),
                status: r.get(3),
                created_at: r.get(4),
                expires_at: r.get(5),
                payment: r.get(6),
            }
            .with_seats(seats.into_iter().zip(prices).collect())
        })
        .collect()
}

async fn load_reservation(
    c: &mut PgConnection,
    stmts: Statements,
    id: ReservationId,
    lock: bool,
) -> Result<Option<Reservation>> {
    let filter = if lock { "id = $1 FOR UPDATE" } else { "id = $1" };
    Ok(reservations_where(c, stmts, filter, |q| q.bind(id.get())).await?.pop())
}

async fn load_balance(c: &mut PgConnection, stmts: Statements, user: UserId, lock: bool) -> Result<Option<Points>> {
    let sql = if lock {
        "SELECT balance FROM users WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT balance FROM users WHERE id = $1"
    };
    let b: Option<i64> = stmts.query_scalar(sql).bind(user.get()).fetch_optional(&mut *c).await.map_err(pg_err)?;
    Ok(b.map(Points::from_trusted))
}

/// Locks the seats in seat order (the order every transaction uses) and returns them as stored.
async fn lock_seats(
    c: &mut PgConnection,
    stmts: Statements,
    schedule: ScheduleId,
    seats: &[i32],
) -> Result<Vec<SeatRow>> {
    // Without the holder: a locking read that waited sees the seat's new row but not the
    // reservation another transaction inserted meanwhile, and deciding a hold needs no holder.
    let rows = stmts
        .query(
            "SELECT seat_no, price, status, hold_expires_at, reservation_id, NULL::bigint FROM seats s \
         WHERE s.schedule_id = $1 AND s.seat_no = ANY($2) ORDER BY s.seat_no FOR UPDATE",
        )
        .bind(schedule.get())
        .bind(seats)
        .fetch_all(&mut *c)
        .await
        .map_err(pg_err)?;
    rows.iter().map(to_seat).collect()
}

/// A seat's columns and, when held, who holds it (`SeatState::Held::holder`).
const SEATS_FROM: &str = "s.seat_no, s.price, s.status, s.hold_expires_at, s.reservation_id, r.user_id \
     FROM seats s LEFT JOIN reservations r ON r.id = s.reservation_id AND s.status = 'HELD'";

fn to_seat(r: &sqlx::postgres::PgRow) -> Result<SeatRow> {
    let status: &str = r.get(2);
    Ok(SeatRow {
        seat_no: SeatNo::from_trusted(r.get(0)),
        price: Points::from_trusted(r.get(1)),
        state: SeatState::from_stored(status, r.get(3), r.get(4), r.get(5))?,
    })
}

async fn write_ledger(c: &mut PgConnection, stmts: Statements, row: LedgerRow) -> Result<()> {
    let LedgerRow { user, op, amount, balance_after: after, payment, at: now } = row;
    let payment = payment.map(|p| p.get());
    stmts
        .query("UPDATE users SET balance = $2 WHERE id = $1")
        .bind(user.get())
        .bind(after.get())
        .execute(&mut *c)
        .await
        .map_err(pg_err)?;
    stmts.query(
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

/// Claims an idempotency key for this transaction and returns what was stored under it before:
/// a concurrent request with the same key blocks on the unique index until the first one
/// commits (then sees its answer) or rolls back (then proceeds itself).
async fn claim_key(
    c: &mut PgConnection,
    stmts: Statements,
    user: UserId,
    scope: &str,
    key: &str,
    request: &str,
    now: Millis,
) -> Result<Option<(String, Option<String>)>> {
    let inserted = stmts.query(
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
    let row = stmts
        .query("SELECT request, response FROM idempotency WHERE user_id = $1 AND scope = $2 AND key = $3")
        .bind(user.get())
        .bind(scope)
        .bind(key)
        .fetch_one(&mut *c)
        .await
        .map_err(pg_err)?;
    Ok(Some((row.get(0), row.get(1))))
}

async fn remember(
    c: &mut PgConnection,
    stmts: Statements,
    user: UserId,
    scope: &str,
    key: &str,
    response: &impl serde::Serialize,
) -> Result<()> {
    stmts
        .query("UPDATE idempotency SET response = $4 WHERE user_id = $1 AND scope = $2 AND key = $3")
        .bind(user.get())
        .bind(scope)
        .bind(key)
        .bind(store_response(response)?)
        .execute(&mut *c)
        .await
        .map_err(pg_err)?;
    Ok(())
}

/// Ends held reservations (expired or released) and frees the seats they still hold.
async fn end_reservations(
    c: &mut PgConnection,
    stmts: Statements,
    ids: &[i64],
    status: &str,
    now: Millis,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    stmts
        .query(
            "UPDATE seats SET status = 'AVAILABLE', reservation_id = NULL, hold_expires_at = NULL \
                 WHERE reservation_id = ANY($1) AND status = 'HELD'",
        )
        .bind(ids)
        .execute(&mut *c)
        .await
        .map_err(pg_err)?;
    stmts
        .query("UPDATE reservations SET status = $2, ended_at = $3 WHERE id = ANY($1) AND status = 'HELD'")
        .bind(ids)
        .bind(status)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map_err(pg_err)?;
    Ok(())
}

async fn hold(c: &mut PgConnection, stmts: Statements, req: &HoldRequest) -> Result<Held> {
    // One live hold per user and concert, even when the same user holds from two tabs at once.
    // The lock is tried, not waited for: a stolen token replayed from many clients would
    // otherwise queue its attempts on it, each holding a pool connection, and starve everyone
    // else's bookings (the token-replay drill measured the pool wait at 22 ms on average).
    let locked: bool = stmts
        .query_scalar("SELECT pg_try_advisory_xact_lock(7270228, (($1 * 31 + $2) % 2147483647)::int)")
        .bind(req.user.get())
        .bind(req.concert.get())
        .fetch_one(&mut *c)
        .await
        .map_err(pg_err)?;
    if !locked {
        return Err(Error::new(
            Code::HoldLimit,
            format!("another hold of user {} for this concert is being made right now; try again", req.user),
        ));
    }
    let live = reservations_where(
        c,
        stmts,
        "user_id = $1 AND status = 'HELD' AND expires_at > $2 \
         AND schedule_id IN (SELECT id FROM schedules WHERE concert_id = $3) ORDER BY id DESC LIMIT 1",
        |q| q.bind(req.user.get()).bind(req.now.0).bind(req.concert.get()),
    )
    .await?
    .pop();
    let wanted: Vec<i32> = req.seats.iter().map(|s| s.get()).collect();
    let found: Vec<SeatForHold> = lock_seats(c, stmts, req.schedule, &wanted)
        .await?
        .into_iter()
        .map(|s| SeatForHold { seat_no: s.seat_no, price: s.price, state: s.state })
        .collect();
    let (seats, lapsed) = match booking::decide_hold(req.schedule, &req.seats, &found, live, req.now)? {
        HoldDecision::Again(reservation) => return Ok(Held { reservation, again: true, lapsed: Vec::new() }),
        HoldDecision::Take { seats, lapsed } => (seats, lapsed),
    };
    let lapsed_ids: Vec<i64> = lapsed.iter().map(|r| r.get()).collect();
    end_reservations(c, stmts, &lapsed_ids, "EXPIRED", req.now).await?;
    let total: i64 = seats.iter().map(|s| s.price.get()).sum();
    let prices: Vec<i64> = seats.iter().map(|s| s.price.get()).collect();
    let id: i64 = stmts
        .query_scalar(
            "INSERT INTO reservations (id, user_id, schedule_id, price, status, created_at, expires_at) \
         VALUES (nextval('reservations_id_seq'), $1, $2, $3, 'HELD', $4, $5) RETURNING id",
        )
        .bind(req.user.get())
        .bind(req.schedule.get())
        .bind(total)
        .bind(req.now.0)
        .bind(req.expires_at.0)
        .fetch_one(&mut *c)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23503") => booking::user_not_found(req.user),
            _ => pg_err(e),
        })?;
    stmts
        .query(
            "INSERT INTO reservation_seats (reservation_id, schedule_id, seat_no, price) \
         SELECT $1, $2, s, p FROM unnest($3::int[], $4::bigint[]) AS t (s, p)",
        )
        .bind(id)
        .bind(req.schedule.get())
        .bind(&wanted)
        .bind(&prices)
        .execute(&mut *c)
        .await
        .map_err(pg_err)?;
    let taken = stmts
        .query(&format!(
            "UPDATE seats SET status = 'HELD', reservation_id = $3, hold_expires_at = $4 \
         WHERE schedule_id = $1 AND seat_no = ANY($2) AND {}",
            seat_is_free("$5")
        ))
        .bind(req.schedule.get())
        .bind(&wanted)
        .bind(id)
        .bind(req.expires_at.0)
        .bind(req.now.0)
        .execute(&mut *c)
        .await
        .map_err(pg_err)?
        .rows_affected();
    if taken != wanted.len() as u64 {
        // The seats are locked above, so this cannot happen; refuse rather than half-hold.
        return Err(Error::seat_unavailable());
    }
    Ok(Held { reservation: req.held(ReservationId::from_trusted(id), seats), again: false, lapsed })
}

async fn release(c: &mut PgConnection, stmts: Statements, req: &ReleaseRequest) -> Result<Released> {
    let r = load_reservation(c, stmts, req.reservation, false)
        .await?
        .ok_or_else(|| booking::reservation_not_found(req.reservation))?;
    let seats: Vec<i32> = r.seats.iter().map(|s| s.seat_no.get()).collect();
    lock_seats(c, stmts, r.schedule, &seats).await?;
    let r = load_reservation(c, stmts, req.reservation, true)
        .await?
        .ok_or_else(|| booking::reservation_not_found(req.reservation))?;
    match booking::decide_release(&r, req.user, req.now)? {
        ReleaseDecision::AlreadyOver => Ok(Released { reservation: r, freed: false }),
        ReleaseDecision::Release => {
            end_reservations(c, stmts, &[r.id.get()], "RELEASED", req.now).await?;
            let reservation = load_reservation(c, stmts, r.id, false)
                .await?
                .ok_or_else(|| Error::internal("released reservation vanished"))?;
            Ok(Released { reservation, freed: true })
        }
    }
}

async fn pay(c: &mut PgConnection, stmts: Statements, req: &PayRequest) -> Result<Receipt> {
    let request = req.fingerprint();
    if let Some(receipt) =
        replay(claim_key(c, stmts, req.user, "payment", req.key.as_str(), &request, req.now).await?, &request)?
    {
        return Ok(receipt);
    }
    // The seats a reservation names never change, so they can be read before locking; the locks
    // then go seats -> reservation -> user, the order every transaction uses.
    if let Some(r) = load_reservation(c, stmts, req.reservation, false).await? {
        let seats: Vec<i32> = r.seats.iter().map(|s| s.seat_no.get()).collect();
        lock_seats(c, stmts, r.schedule, &seats).await?;
    }
    let reservation = load_reservation(c, stmts, req.reservation, true).await?;
    let balance = match &reservation {
        Some(_) => load_balance(c, stmts, req.user, true).await?,
        None => None,
    };
    let plan = booking::plan_payment(req, reservation, balance)?;
    let r = &plan.reservation;
    let payment: i64 = stmts
        .query_scalar(
            "INSERT INTO payments (reservation_id, user_id, amount, idempotency_key, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(r.id.get())
        .bind(req.user.get())
        .bind(plan.amount.get())
        .bind(req.key.as_str())
        .bind(req.now.0)
        .fetch_one(&mut *c)
        .await
        .map_err(pg_err)?;
    write_ledger(c, stmts, plan.ledger_row(PaymentId::from_trusted(payment), req.now)).await?;
    let seats: Vec<i32> = r.seats.iter().map(|s| s.seat_no.get()).collect();
    let sold = stmts
        .query(
            "UPDATE seats SET status = 'SOLD', hold_expires_at = NULL \
         WHERE schedule_id = $1 AND seat_no = ANY($2) AND reservation_id = $3 AND status = 'HELD'",
        )
        .bind(r.schedule.get())
        .bind(&seats)
        .bind(r.id.get())
        .execute(&mut *c)
        .await
        .map_err(pg_err)?
        .rows_affected();
    if sold != seats.len() as u64 {
        return Err(Error::internal(format!("the seats of reservation {} are not all held by it", r.id)));
    }
    stmts.query(
        "INSERT INTO sold_seats (schedule_id, seat_no, reservation_id, payment_id) SELECT $1, s, $2, $3 FROM unnest($4::int[]) AS s",
    )
    .bind(r.schedule.get())
    .bind(r.id.get())
    .bind(payment)
    .bind(&seats)
    .execute(&mut *c)
    .await
    .map_err(pg_err)?;
    stmts
        .query("UPDATE reservations SET status = 'CONFIRMED', confirmed_at = $2, payment_id = $3 WHERE id = $1")
        .bind(r.id.get())
        .bind(req.now.0)
        .bind(payment)
        .execute(&mut *c)
        .await
        .map_err(pg_err)?;
    let receipt = plan.receipt(PaymentId::from_trusted(payment));
    remember(c, stmts, req.user, "payment", req.key.as_str(), &receipt).await?;
    Ok(receipt)
}

async fn move_points(c: &mut PgConnection, stmts: Statements, req: &PointsRequest) -> Result<PointsChange> {
    let request = req.fingerprint();
    if let Some(key) = &req.key {
        if let Some(change) =
            replay(claim_key(c, stmts, req.user, req.scope(), key.as_str(), &request, req.now).await?, &request)?
        {
            return Ok(change);
        }
    }
    let change = booking::plan_points(req, load_balance(c, stmts, req.user, true).await?)?;
    write_ledger(c, stmts, req.ledger_row(&change)).await?;
    if let Some(key) = &req.key {
        remember(c, stmts, req.user, req.scope(), key.as_str(), &change).await?;
    }
    Ok(change)
}

impl PgStore {
    /// Runs `f` in one transaction on a pooled connection, within the time limit.
    async fn in_transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut PgConnection) -> std::pin::Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>
            + Send,
        T: Send,
    {
        self.bounded(async {
            let mut conn = self.pooled().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(pg_err)?;
            let value = f(&mut tx).await?;
            tx.commit().await.map_err(pg_err)?;
            Ok(value)
        })
        .await
    }
}

#[async_trait]
impl BookingStore for PgStore {
    async fn ping(&self) -> Result<()> {
        let stmts = self.stmts;
        self.bounded(async {
            stmts.query("SELECT 1").execute(&mut *self.conn().await?).await.map(|_| ()).map_err(pg_err)
        })
        .await
    }

    async fn concerts(&self) -> Result<Vec<Concert>> {
        let stmts = self.stmts;
        self.bounded(async {
            let rows = stmts
                .query("SELECT id, title, venue FROM concerts ORDER BY id")
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
        let stmts = self.stmts;
        self.bounded(async {
            let rows = stmts
                .query("SELECT id, concert_id, starts_at, seat_count FROM schedules ORDER BY concert_id, starts_at, id")
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
        let stmts = self.stmts;
        self.bounded(async {
            let rows = stmts
                .query(&format!("SELECT {SEATS_FROM} WHERE s.schedule_id = $1 ORDER BY s.seat_no"))
                .bind(schedule.get())
                .fetch_all(&mut *self.conn().await?)
                .await
                .map_err(pg_err)?;
            rows.iter().map(to_seat).collect()
        })
        .await
    }

    async fn user_exists(&self, user: UserId) -> Result<bool> {
        let stmts = self.stmts;
        self.bounded(async {
            stmts
                .query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
                .bind(user.get())
                .fetch_one(&mut *self.conn().await?)
                .await
                .map_err(pg_err)
        })
        .await
    }

    async fn user_id_ranges(&self) -> Result<Vec<(UserId, UserId)>> {
        let stmts = self.stmts;
        // A batch read at start: no request timeout.
        let rows: Vec<(i64, i64)> =
            stmts.query_as(USER_ID_RANGES).fetch_all(&mut *self.conn().await?).await.map_err(pg_err)?;
        Ok(rows.into_iter().map(|(a, b)| (UserId::from_trusted(a), UserId::from_trusted(b))).collect())
    }

    async fn hold(&self, req: HoldRequest) -> Result<Held> {
        let stmts = self.stmts;
        self.in_transaction(|c| Box::pin(async move { hold(c, stmts, &req).await })).await
    }

    async fn release(&self, req: ReleaseRequest) -> Result<Released> {
        let stmts = self.stmts;
        self.in_transaction(|c| Box::pin(async move { release(c, stmts, &req).await })).await
    }

    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>> {
        let stmts = self.stmts;
        self.bounded(async { load_reservation(&mut *self.conn().await?, stmts, id, false).await }).await
    }

    async fn reservations_of(&self, user: UserId, limit: u32) -> Result<Vec<Reservation>> {
        let stmts = self.stmts;
        self.bounded(async {
            reservations_where(&mut *self.conn().await?, stmts, "user_id = $1 ORDER BY id DESC LIMIT $2", |q| {
                q.bind(user.get()).bind(limit as i64)
            })
            .await
        })
        .await
    }

    async fn payment_replay(&self, user: UserId, key: &IdempotencyKey) -> Result<Option<Receipt>> {
        let stmts = self.stmts;
        self.bounded(async {
            let stored: Option<(String, Option<String>)> = stmts
                .query_as(
                    "SELECT request, response FROM idempotency WHERE user_id = $1 AND scope = 'payment' AND key = $2",
                )
                .bind(user.get())
                .bind(key.as_str())
                .fetch_optional(&mut *self.conn().await?)
                .await
                .map_err(pg_err)?;
            match stored {
                // Claimed by a payment still running: nothing to replay yet.
                Some((_, None)) | None => Ok(None),
                Some((request, response)) => replay(Some((request.clone(), response)), &request),
            }
        })
        .await
    }

    async fn pay(&self, req: PayRequest) -> Result<Receipt> {
        let stmts = self.stmts;
        self.in_transaction(|c| Box::pin(async move { pay(c, stmts, &req).await })).await
    }

    async fn balance(&self, user: UserId) -> Result<Points> {
        let stmts = self.stmts;
        self.bounded(async {
            load_balance(&mut *self.conn().await?, stmts, user, false)
                .await?
                .ok_or_else(|| booking::user_not_found(user))
        })
        .await
    }

    async fn move_points(&self, req: PointsRequest) -> Result<PointsChange> {
        let stmts = self.stmts;
        self.in_transaction(|c| Box::pin(async move { move_points(c, stmts, &req).await })).await
    }

    async fn history(&self, user: UserId, limit: u32) -> Result<Vec<LedgerEntry>> {
        let stmts = self.stmts;
        self.balance(user).await?;
        self.bounded(async {
            let rows = stmts
                .query(
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
}

#[async_trait]
impl JobStore for PgStore {
    async fn expire_holds(&self, now: Millis) -> Result<u64> {
        let stmts = self.stmts;
        self.in_transaction(|c| {
            Box::pin(async move {
                // Seats before reservations, the lock order of every other transaction.
                stmts.query(&format!(
                    "UPDATE seats SET status = 'AVAILABLE', reservation_id = NULL, hold_expires_at = NULL WHERE {}",
                    seat_hold_lapsed("$1")
                ))
                .bind(now.0)
                .execute(&mut *c)
                .await
                .map_err(pg_err)?;
                let n = stmts.query(
                    "UPDATE reservations SET status = 'EXPIRED', ended_at = $1 WHERE status = 'HELD' AND expires_at <= $1",
                )
                .bind(now.0)
                .execute(&mut *c)
                .await
                .map_err(pg_err)?
                .rows_affected();
                Ok(n)
            })
        })
        .await
    }

    async fn holds_past_expiry(&self, now: Millis) -> Result<u64> {
        let stmts = self.stmts;
        self.bounded(async {
            let n: i64 = stmts
                .query_scalar(&format!("SELECT COUNT(*) FROM seats WHERE {}", seat_hold_lapsed("$1")))
                .bind(now.0)
                .fetch_one(&mut *self.conn().await?)
                .await
                .map_err(pg_err)?;
            Ok(n as u64)
        })
        .await
    }

    async fn inventory(&self, now: Millis) -> Result<Vec<(ConcertId, Inventory)>> {
        let stmts = self.stmts;
        self.bounded(async {
            let rows = stmts
                .query(&inventory_sql("$1"))
                .bind(now.0)
                .fetch_all(&mut *self.conn().await?)
                .await
                .map_err(pg_err)?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        ConcertId::from_trusted(r.get(0)),
                        Inventory {
                            unsold: r.get::<i64, _>(1) as u64,
                            free: r.get::<i64, _>(2) as u64,
                            next_release_at: r.get::<Option<i64>, _>(3).map(Millis),
                        },
                    )
                })
                .collect())
        })
        .await
    }
}

/// The operator's settings of one line, or of all (`FOR UPDATE` inside a change).
async fn all_line_settings(
    c: &mut PgConnection,
    stmts: Statements,
    concert: Option<ConcertId>,
    lock: bool,
) -> Result<Vec<(ConcertId, LineSettings)>> {
    let sql = format!(
        "SELECT concert_id, max_active, admission_rate, paused, closed, on_sale_at FROM line_settings \
         WHERE $1::BIGINT IS NULL OR concert_id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows = stmts.query(&sql).bind(concert.map(|c| c.get())).fetch_all(&mut *c).await.map_err(pg_err)?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                ConcertId::from_trusted(r.get(0)),
                LineSettings {
                    max_active: r.get::<Option<i64>, _>(1).map(|m| m as u64),
                    admission_rate: r.get(2),
                    paused: r.get(3),
                    closed: r.get(4),
                    on_sale_at: r.get::<Option<i64>, _>(5).map(Millis),
                },
            )
        })
        .collect())
}

#[async_trait]
impl AdminStore for PgStore {
    async fn line_settings(&self) -> Result<Vec<(ConcertId, LineSettings)>> {
        let stmts = self.stmts;
        self.bounded(async { all_line_settings(&mut *self.conn().await?, stmts, None, false).await }).await
    }

    async fn change_line(
        &self,
        concert: ConcertId,
        change: LineChange,
        now: Millis,
    ) -> Result<(LineSettings, LineSettings)> {
        let stmts = self.stmts;
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(pg_err)?;
            // Two operators at once: the second waits for the first and logs what it saw.
            stmts
                .query("INSERT INTO line_settings (concert_id, updated_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(concert.get())
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(pg_err)?;
            let before =
                all_line_settings(&mut tx, stmts, Some(concert), true).await?.pop().map(|(_, s)| s).unwrap_or_default();
            let after = change.apply(before);
            stmts
                .query(
                    "UPDATE line_settings SET max_active = $2, admission_rate = $3, paused = $4, closed = $5, \
                 updated_at = $6, on_sale_at = $7 WHERE concert_id = $1",
                )
                .bind(concert.get())
                .bind(after.max_active.map(|m| m as i64))
                .bind(after.admission_rate)
                .bind(after.paused)
                .bind(after.closed)
                .bind(now.0)
                .bind(after.on_sale_at.map(|t| t.0))
                .execute(&mut *tx)
                .await
                .map_err(pg_err)?;
            if after.on_sale_at.is_some() {
                let d = DrawSeed::new();
                stmts
                    .query(
                        "INSERT INTO draws (concert_id, seed, commitment, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (concert_id) DO NOTHING",
                    )
                    .bind(concert.get())
                    .bind(d.seed)
                    .bind(d.commitment)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(pg_err)?;
            }
            stmts
                .query("INSERT INTO admin_log (at, concert_id, action, before, after) VALUES ($1, $2, $3, $4, $5)")
                .bind(now.0)
                .bind(concert.get())
                .bind(change.action())
                .bind(store_response(&before)?)
                .bind(store_response(&after)?)
                .execute(&mut *tx)
                .await
                .map_err(pg_err)?;
            tx.commit().await.map_err(pg_err)?;
            Ok((before, after))
        })
        .await
    }

    async fn create_concert(&self, spec: NewConcert, now: Millis) -> Result<(Concert, Vec<Schedule>)> {
        let stmts = self.stmts;
        // A batch job more than a request: no request timeout (a million seats take a while).
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        // Ids are seeded without sequences: take the next ones under a lock.
        tx.execute("LOCK TABLE concerts, schedules IN SHARE ROW EXCLUSIVE MODE").await.map_err(pg_err)?;
        let id: i64 = stmts.query_scalar(
            "INSERT INTO concerts (id, title, venue) SELECT COALESCE(MAX(id), 0) + 1, $1, $2 FROM concerts RETURNING id",
        )
        .bind(&spec.title)
        .bind(&spec.venue)
        .fetch_one(&mut *tx)
        .await
        .map_err(pg_err)?;
        let concert = Concert { id: ConcertId::from_trusted(id), title: spec.title.clone(), venue: spec.venue.clone() };
        let (numbers, prices): (Vec<i32>, Vec<i64>) = spec.prices().into_iter().map(|(n, p)| (n, p.get())).unzip();
        let mut schedules = Vec::new();
        for starts in &spec.dates {
            let sid: i64 = stmts
                .query_scalar(
                    "INSERT INTO schedules (id, concert_id, starts_at, seat_count) \
                 SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3 FROM schedules RETURNING id",
                )
                .bind(id)
                .bind(starts.0)
                .bind(spec.seat_count)
                .fetch_one(&mut *tx)
                .await
                .map_err(pg_err)?;
            stmts
                .query(
                    "INSERT INTO seats (schedule_id, seat_no, price) \
                 SELECT $1, n, p FROM UNNEST($2::int[], $3::bigint[]) AS t(n, p)",
                )
                .bind(sid)
                .bind(&numbers)
                .bind(&prices)
                .execute(&mut *tx)
                .await
                .map_err(pg_err)?;
            schedules.push(Schedule {
                id: ScheduleId::from_trusted(sid),
                concert: concert.id,
                starts_at: *starts,
                seat_count: spec.seat_count,
            });
        }
        stmts.query(
            "INSERT INTO admin_log (at, concert_id, action, before, after) VALUES ($1, $2, 'create_concert', NULL, $3)",
        )
        .bind(now.0)
        .bind(id)
        .bind(created_concert_log(&concert, &schedules, &spec)?)
        .execute(&mut *tx)
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok((concert, schedules))
    }

    async fn draw_seeds(&self) -> Result<Vec<(ConcertId, DrawSeed)>> {
        let stmts = self.stmts;
        self.bounded(async {
            let rows = stmts
                .query("SELECT concert_id, seed, commitment FROM draws")
                .fetch_all(&mut *self.conn().await?)
                .await
                .map_err(pg_err)?;
            Ok(rows
                .iter()
                .map(|r| (ConcertId::from_trusted(r.get(0)), DrawSeed { seed: r.get(1), commitment: r.get(2) }))
                .collect())
        })
        .await
    }

    async fn admin_log(&self, limit: u32) -> Result<Vec<AdminLogEntry>> {
        let stmts = self.stmts;
        self.bounded(async {
            let rows = stmts
                .query("SELECT id, at, concert_id, action, before, after FROM admin_log ORDER BY id DESC LIMIT $1")
                .bind(i64::from(limit))
                .fetch_all(&mut *self.conn().await?)
                .await
                .map_err(pg_err)?;
            Ok(rows
                .iter()
                .map(|r| AdminLogEntry::from_row(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
                .collect())
        })
        .await
    }

    async fn is_empty(&self) -> Result<bool> {
        let stmts = self.stmts;
        self.bounded(async {
            stmts
                .query_scalar("SELECT NOT EXISTS (SELECT 1 FROM users) AND NOT EXISTS (SELECT 1 FROM concerts)")
                .fetch_one(&mut *self.conn().await?)
                .await
                .map_err(pg_err)
        })
        .await
    }

    async fn seed(&self, spec: SeedSpec, now: Millis) -> Result<()> {
        // Seeding is a batch job, not a request: no request timeout.
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        seed::seed(&mut tx, self.stmts, spec, now).await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn audit(&self, now: Millis) -> Result<AuditReport> {
        audit::run(&mut *self.conn().await?, self.stmts, now).await
    }
}

impl Store for PgStore {
    fn pool_stats(&self) -> crate::store::PoolStats {
        let size = self.pool.size() as u64;
        crate::store::PoolStats { size, in_use: size.saturating_sub(self.pool.num_idle() as u64) }
    }
}
