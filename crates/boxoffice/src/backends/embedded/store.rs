//! The embedded store: one SQLite file in WAL mode, written through the group-committing writer.

use super::db::{db_err, Db, DbOptions};
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
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;
use std::sync::Arc;

pub struct SqliteStore {
    pub(super) db: Arc<Db>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open(path: &Path, opts: DbOptions) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::unavailable("database", format!("cannot create {}: {e}", dir.display())))?;
        }
        Ok(Self { db: Arc::new(Db::open(path, opts)?) })
    }

    /// The file behind a `sqlite://` URL: `sqlite://data/x.db`, `sqlite:///abs/x.db`, `sqlite:x.db`.
    pub fn path_from_url(url: &str) -> Option<&Path> {
        let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
        let rest = rest.split('?').next().unwrap_or(rest);
        (!rest.is_empty()).then(|| Path::new(rest))
    }
}

fn reservation_from_row(r: &Row) -> rusqlite::Result<Reservation> {
    let status: String = r.get(5)?;
    Ok(Reservation {
        id: ReservationId::from_trusted(r.get(0)?),
        user: UserId::from_trusted(r.get(1)?),
        schedule: ScheduleId::from_trusted(r.get(2)?),
        seat_no: SeatNo::from_trusted(r.get(3)?),
        price: Points::from_trusted(r.get(4)?),
        status: ReservationStatus::parse_stored(&status).unwrap_or(ReservationStatus::Expired),
        created_at: Millis(r.get(6)?),
        expires_at: Millis(r.get(7)?),
        payment_id: r.get::<_, Option<i64>>(8)?.map(PaymentId::from_trusted),
    })
}

fn load_reservation(conn: &Connection, id: ReservationId) -> Result<Option<Reservation>> {
    conn.prepare_cached(&format!("SELECT {RESERVATION_COLS} FROM reservations WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id.get()], reservation_from_row).optional())
        .map_err(db_err)
}

fn load_balance(conn: &Connection, user: UserId) -> Result<Points> {
    conn.prepare_cached("SELECT balance FROM users WHERE id = ?1")
        .and_then(|mut s| s.query_row([user.get()], |r| r.get::<_, i64>(0)).optional())
        .map_err(db_err)?
        .map(Points::from_trusted)
        .ok_or_else(|| booking::user_not_found(user))
}

/// The stored request and response of an idempotent call, if the key was used before.
fn idempotent_replay(conn: &Connection, user: UserId, scope: &str, key: &str) -> Result<Option<(String, String)>> {
    conn.prepare_cached("SELECT request, response FROM idempotency WHERE user_id = ?1 AND scope = ?2 AND key = ?3")
        .and_then(|mut s| s.query_row(params![user.get(), scope, key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db_err)
}

fn remember(
    conn: &Connection,
    user: UserId,
    scope: &str,
    key: &str,
    request: &str,
    response: &impl serde::Serialize,
    now: Millis,
) -> Result<()> {
    let body = crate::store::store_response(response)?;
    conn.prepare_cached(
        "INSERT INTO idempotency (user_id, scope, key, request, response, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![user.get(), scope, key, request, body, now.0]))
    .map_err(db_err)?;
    Ok(())
}

fn write_ledger(
    conn: &Connection,
    user: UserId,
    op: PointsOp,
    amount: Points,
    after: Points,
    payment: Option<i64>,
    now: Millis,
) -> Result<()> {
    conn.prepare_cached("UPDATE users SET balance = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![user.get(), after.get()]))
        .map_err(db_err)?;
    conn.prepare_cached(
        "INSERT INTO point_ledger (user_id, kind, amount, balance_after, payment_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![user.get(), op.as_str(), amount.get(), after.get(), payment, now.0]))
    .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.db.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(db_err)).await
    }

    async fn concerts(&self) -> Result<Vec<Concert>> {
        self.db
            .read(|c| {
                let mut s = c.prepare_cached("SELECT id, title, venue FROM concerts ORDER BY id").map_err(db_err)?;
                let rows = s
                    .query_map([], |r| {
                        Ok(Concert { id: ConcertId::from_trusted(r.get(0)?), title: r.get(1)?, venue: r.get(2)? })
                    })
                    .and_then(|rows| rows.collect())
                    .map_err(db_err)?;
                Ok(rows)
            })
            .await
    }

    async fn schedules(&self) -> Result<Vec<Schedule>> {
        self.db
            .read(|c| {
                let mut s = c
                    .prepare_cached("SELECT id, concert_id, starts_at, seat_count FROM schedules ORDER BY concert_id, starts_at, id")
                    .map_err(db_err)?;
                let rows = s
                    .query_map([], |r| {
                        Ok(Schedule {
                            id: ScheduleId::from_trusted(r.get(0)?),
                            concert: ConcertId::from_trusted(r.get(1)?),
                            starts_at: Millis(r.get(2)?),
                            seat_count: r.get(3)?,
                        })
                    })
                    .and_then(|rows| rows.collect())
                    .map_err(db_err)?;
                Ok(rows)
            })
            .await
    }

    async fn seats(&self, schedule: ScheduleId) -> Result<Vec<SeatRow>> {
        self.db
            .read(move |c| {
                let mut s = c
                    .prepare_cached(
                        "SELECT seat_no, price, status, hold_expires_at FROM seats WHERE schedule_id = ?1 ORDER BY seat_no",
                    )
                    .map_err(db_err)?;
                let rows = s
                    .query_map([schedule.get()], |r| {
                        let status: String = r.get(2)?;
                        Ok(SeatRow {
                            seat_no: SeatNo::from_trusted(r.get(0)?),
                            price: Points::from_trusted(r.get(1)?),
                            sold: status == "SOLD",
                            held_until: if status == "HELD" { r.get::<_, Option<i64>>(3)?.map(Millis) } else { None },
                        })
                    })
                    .and_then(|rows| rows.collect())
                    .map_err(db_err)?;
                Ok(rows)
            })
            .await
    }

    async fn user_exists(&self, user: UserId) -> Result<bool> {
        self.db
            .read(move |c| match load_balance(c, user) {
                Ok(_) => Ok(true),
                Err(e) if e.code == Code::UserNotFound => Ok(false),
                Err(e) => Err(e),
            })
            .await
    }

    async fn user_id_ranges(&self) -> Result<Vec<(UserId, UserId)>> {
        self.db
            .read(|c| {
                let mut s = c.prepare(crate::store::USER_ID_RANGES).map_err(db_err)?;
                let rows = s
                    .query_map([], |r| Ok((UserId::from_trusted(r.get(0)?), UserId::from_trusted(r.get(1)?))))
                    .and_then(|rows| rows.collect())
                    .map_err(db_err)?;
                Ok(rows)
            })
            .await
    }

    async fn hold(&self, req: HoldRequest) -> Result<Reservation> {
        self.db
            .write(move |t| {
                let (sched, seat, now) = (req.schedule.get(), req.seat_no.get(), req.now.0);
                // Read the seat; a hold past its time counts as free.
                let seat_row: Option<(i64, String, Option<i64>, Option<i64>)> = t
                    .prepare_cached(
                        "SELECT price, status, hold_expires_at, reservation_id FROM seats WHERE schedule_id = ?1 AND seat_no = ?2",
                    )
                    .and_then(|mut s| s.query_row([sched, seat as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional())
                    .map_err(db_err)?;
                let Some((price, status, held_until, previous)) = seat_row else {
                    return Err(Error::new(Code::SeatNotFound,
                        format!("schedule {sched} has no seat {seat}"),
                    ));
                };
                let free = status == "AVAILABLE" || (status == "HELD" && held_until.is_some_and(|u| u <= now));
                if !free {
                    return Err(Error::seat_unavailable());
                }
                if let Some(prev) = previous.filter(|_| status == "HELD") {
                    t.prepare_cached("UPDATE reservations SET status = 'EXPIRED' WHERE id = ?1 AND status = 'HELD'")
                        .and_then(|mut s| s.execute([prev]))
                        .map_err(db_err)?;
                }
                let id: i64 = t
                    .prepare_cached(
                        "INSERT INTO reservations (user_id, schedule_id, seat_no, price, status, created_at, expires_at) \
                         VALUES (?1, ?2, ?3, ?4, 'HELD', ?5, ?6) RETURNING id",
                    )
                    .and_then(|mut s| s.query_row(params![req.user.get(), sched, seat, price, now, req.expires_at.0], |r| r.get(0)))
                    .map_err(|e| match e {
                        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                            booking::user_not_found(req.user)
                        }
                        e => db_err(e),
                    })?;
                // Conditional on the seat still being free: the single writer makes this a formality,
                // but it keeps the statement correct on its own.
                let changed = t
                    .prepare_cached(
                        "UPDATE seats SET status = 'HELD', reservation_id = ?3, hold_expires_at = ?4 \
                         WHERE schedule_id = ?1 AND seat_no = ?2 \
                           AND (status = 'AVAILABLE' OR (status = 'HELD' AND hold_expires_at <= ?5))",
                    )
                    .and_then(|mut s| s.execute(params![sched, seat, id, req.expires_at.0, now]))
                    .map_err(db_err)?;
                if changed != 1 {
                    return Err(Error::seat_unavailable());
                }
                Ok(req.held(ReservationId::from_trusted(id), Points::from_trusted(price)))
            })
            .await
    }

    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>> {
        self.db.read(move |c| load_reservation(c, id)).await
    }

    async fn payment_replay(&self, user: UserId, key: &IdempotencyKey) -> Result<Option<Receipt>> {
        let key = key.clone();
        self.db
            .read(move |c| {
                idempotent_replay(c, user, "payment", key.as_str())?
                    .map(|(_, response)| parse_stored(&response))
                    .transpose()
            })
            .await
    }

    async fn pay(&self, req: PayRequest) -> Result<Receipt> {
        self.db
            .write(move |t| {
                let request = req.reservation.get().to_string();
                if let Some((stored, response)) = idempotent_replay(t, req.user, "payment", req.key.as_str())? {
                    booking::check_replay(&stored, &request)?;
                    return parse_stored(&response);
                }
                let res = load_reservation(t, req.reservation)?
                    .ok_or_else(|| booking::reservation_not_found(req.reservation))?;
                res.check_payable(req.user, req.now)?;
                let after = booking::debit(load_balance(t, req.user)?, res.price)?;
                let payment_id: i64 = t
                    .prepare_cached(
                        "INSERT INTO payments (reservation_id, user_id, amount, idempotency_key, created_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                    )
                    .and_then(|mut s| {
                        s.query_row(
                            params![res.id.get(), req.user.get(), res.price.get(), req.key.as_str(), req.now.0],
                            |r| r.get(0),
                        )
                    })
                    .map_err(db_err)?;
                write_ledger(t, req.user, PointsOp::Use, res.price, after, Some(payment_id), req.now)?;
                let sold = t
                    .prepare_cached(
                        "UPDATE seats SET status = 'SOLD', hold_expires_at = NULL \
                         WHERE schedule_id = ?1 AND seat_no = ?2 AND reservation_id = ?3 AND status = 'HELD'",
                    )
                    .and_then(|mut s| s.execute(params![res.schedule.get(), res.seat_no.get(), res.id.get()]))
                    .map_err(db_err)?;
                if sold != 1 {
                    return Err(Error::internal(format!("seat of reservation {} is not held by it", res.id)));
                }
                t.prepare_cached(
                    "UPDATE reservations SET status = 'CONFIRMED', confirmed_at = ?2, payment_id = ?3 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![res.id.get(), req.now.0, payment_id]))
                .map_err(db_err)?;
                let receipt =
                    Receipt { payment_id, reservation_id: res.id.get(), amount: res.price.get(), balance: after.get() };
                remember(t, req.user, "payment", req.key.as_str(), &request, &receipt, req.now)?;
                Ok(receipt)
            })
            .await
    }

    async fn balance(&self, user: UserId) -> Result<Points> {
        self.db.read(move |c| load_balance(c, user)).await
    }

    async fn move_points(&self, req: PointsRequest) -> Result<PointsChange> {
        self.db
            .write(move |t| {
                let scope = req.op.as_str();
                let request = req.amount.get().to_string();
                if let Some(key) = &req.key {
                    if let Some((stored, response)) = idempotent_replay(t, req.user, scope, key.as_str())? {
                        booking::check_replay(&stored, &request)?;
                        return parse_stored(&response);
                    }
                }
                let before = load_balance(t, req.user)?;
                let after = match req.op {
                    PointsOp::Charge => booking::credit(before, req.amount)?,
                    PointsOp::Use => booking::debit(before, req.amount)?,
                };
                write_ledger(t, req.user, req.op, req.amount, after, None, req.now)?;
                let change = PointsChange { user_id: req.user.get(), amount: req.amount.get(), balance: after.get() };
                if let Some(key) = &req.key {
                    remember(t, req.user, scope, key.as_str(), &request, &change, req.now)?;
                }
                Ok(change)
            })
            .await
    }

    async fn history(&self, user: UserId, limit: u32) -> Result<Vec<LedgerEntry>> {
        self.db
            .read(move |c| {
                load_balance(c, user)?;
                let mut s = c
                    .prepare_cached(
                        "SELECT id, kind, amount, balance_after, payment_id, created_at FROM point_ledger \
                         WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
                    )
                    .map_err(db_err)?;
                let rows = s
                    .query_map(params![user.get(), limit], |r| {
                        Ok(LedgerEntry {
                            id: r.get(0)?,
                            op: r.get(1)?,
                            amount: Points::from_trusted(r.get(2)?),
                            balance_after: Points::from_trusted(r.get(3)?),
                            payment_id: r.get::<_, Option<i64>>(4)?.map(PaymentId::from_trusted),
                            created_at: Millis(r.get(5)?),
                        })
                    })
                    .and_then(|rows| rows.collect())
                    .map_err(db_err)?;
                Ok(rows)
            })
            .await
    }

    async fn expire_holds(&self, now: Millis) -> Result<u64> {
        self.db
            .write(move |t| {
                let n = t
                    .execute(
                        "UPDATE reservations SET status = 'EXPIRED' WHERE status = 'HELD' AND expires_at <= ?1",
                        [now.0],
                    )
                    .map_err(db_err)?;
                t.execute(
                    "UPDATE seats SET status = 'AVAILABLE', reservation_id = NULL, hold_expires_at = NULL \
                     WHERE status = 'HELD' AND hold_expires_at <= ?1",
                    [now.0],
                )
                .map_err(db_err)?;
                Ok(n as u64)
            })
            .await
    }

    async fn holds_past_expiry(&self, now: Millis) -> Result<u64> {
        self.db
            .read(move |c| {
                c.prepare_cached("SELECT COUNT(*) FROM seats WHERE status = 'HELD' AND hold_expires_at <= ?1")
                    .and_then(|mut s| s.query_row([now.0], |r| r.get::<_, i64>(0)))
                    .map(|n| n as u64)
                    .map_err(db_err)
            })
            .await
    }

    fn pool_stats(&self) -> crate::store::PoolStats {
        self.db.pool_stats()
    }

    async fn is_empty(&self) -> Result<bool> {
        self.db
            .read(|c| {
                c.query_row(
                    "SELECT NOT EXISTS (SELECT 1 FROM users) AND NOT EXISTS (SELECT 1 FROM concerts)",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_err)
            })
            .await
    }

    async fn seed(&self, spec: SeedSpec, now: Millis) -> Result<()> {
        self.db.write(move |t| seed::seed(t, spec, now)).await
    }

    async fn audit(&self, now: Millis) -> Result<AuditReport> {
        self.db.read(move |c| audit::run(c, now)).await
    }
}
