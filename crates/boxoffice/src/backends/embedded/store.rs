//! The embedded store: one SQLite file in WAL mode, written through the group-committing writer.
//! It loads rows, asks `domain::booking` what follows, and writes that.

use super::db::{Db, DbOptions};
use super::sqlite_error::db_err;
use super::{audit, seed};
use crate::audit::AuditReport;
use crate::domain::booking::{
    self, HoldDecision, LedgerRow, PayRequest, PointsChange, PointsRequest, Receipt, ReleaseDecision, Reservation,
    SeatForHold,
};
use crate::domain::line_controls::{Inventory, LineChange, LineSettings};
use crate::domain::new_concert::NewConcert;
use crate::domain::seat::SeatState;
use crate::domain::{
    ConcertId, Error, IdempotencyKey, Millis, PaymentId, Points, ReservationId, Result, ScheduleId, SeatNo, UserId,
};
use crate::store::for_backends::*;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
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

// ---- loading ----

fn reservation_seats(c: &Connection, id: i64) -> Result<Vec<(i32, i64)>> {
    let mut s = c
        .prepare_cached("SELECT seat_no, price FROM reservation_seats WHERE reservation_id = ?1 ORDER BY seat_no")
        .map_err(db_err)?;
    let rows = s.query_map([id], |r| Ok((r.get(0)?, r.get(1)?))).and_then(|rows| rows.collect()).map_err(db_err)?;
    Ok(rows)
}

fn reservations_where(c: &Connection, filter: &str, args: impl rusqlite::Params) -> Result<Vec<Reservation>> {
    let mut s =
        c.prepare_cached(&format!("SELECT {RESERVATION_COLS} FROM reservations WHERE {filter}")).map_err(db_err)?;
    let heads: Vec<ReservationHead> = s
        .query_map(args, |r| {
            Ok(ReservationHead {
                id: r.get(0)?,
                user: r.get(1)?,
                schedule: r.get(2)?,
                status: r.get(3)?,
                created_at: r.get(4)?,
                expires_at: r.get(5)?,
                payment: r.get(6)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(db_err)?;
    heads
        .into_iter()
        .map(|h| {
            let seats = reservation_seats(c, h.id)?;
            h.with_seats(seats)
        })
        .collect()
}

fn load_reservation(c: &Connection, id: ReservationId) -> Result<Option<Reservation>> {
    Ok(reservations_where(c, "id = ?1", [id.get()])?.pop())
}

/// The user's live hold on a date of this concert, if any.
fn live_hold_of(c: &Connection, user: UserId, concert: ConcertId, now: Millis) -> Result<Option<Reservation>> {
    Ok(reservations_where(
        c,
        "user_id = ?1 AND status = 'HELD' AND expires_at > ?2 \
         AND schedule_id IN (SELECT id FROM schedules WHERE concert_id = ?3) ORDER BY id DESC LIMIT 1",
        params![user.get(), now.0, concert.get()],
    )?
    .pop())
}

fn load_balance(c: &Connection, user: UserId) -> Result<Option<Points>> {
    c.prepare_cached("SELECT balance FROM users WHERE id = ?1")
        .and_then(|mut s| s.query_row([user.get()], |r| r.get::<_, i64>(0)).optional())
        .map_err(db_err)
        .map(|b| b.map(Points::from_trusted))
}

type StoredSeat = (i32, i64, String, Option<i64>, Option<i64>, Option<i64>);

fn seat_row(r: &rusqlite::Row) -> rusqlite::Result<StoredSeat> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

/// A seat's columns and, when held, who holds it (`SeatState::Held::holder`).
const SEATS_FROM: &str = "s.seat_no, s.price, s.status, s.hold_expires_at, s.reservation_id, r.user_id \
     FROM seats s LEFT JOIN reservations r ON r.id = s.reservation_id AND s.status = 'HELD'";

fn to_seat(row: StoredSeat) -> Result<SeatRow> {
    let (n, price, status, until, reservation, holder) = row;
    Ok(SeatRow {
        seat_no: SeatNo::from_trusted(n),
        price: Points::from_trusted(price),
        state: SeatState::from_stored(&status, until, reservation, holder)?,
    })
}

/// The stored request and response of an idempotent call, if the key was used before.
fn stored_outcome(c: &Connection, user: UserId, scope: &str, key: &str) -> Result<Option<(String, Option<String>)>> {
    c.prepare_cached("SELECT request, response FROM idempotency WHERE user_id = ?1 AND scope = ?2 AND key = ?3")
        .and_then(|mut s| s.query_row(params![user.get(), scope, key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db_err)
}

// ---- writing ----

fn remember(
    c: &Connection,
    user: UserId,
    scope: &str,
    key: &str,
    request: &str,
    response: &impl serde::Serialize,
    now: Millis,
) -> Result<()> {
    let body = store_response(response)?;
    c.prepare_cached(
        "INSERT INTO idempotency (user_id, scope, key, request, response, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![user.get(), scope, key, request, body, now.0]))
    .map_err(db_err)?;
    Ok(())
}

fn write_ledger(c: &Connection, row: LedgerRow) -> Result<()> {
    let LedgerRow { user, op, amount, balance_after: after, payment, at: now } = row;
    let payment = payment.map(|p| p.get());
    c.prepare_cached("UPDATE users SET balance = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![user.get(), after.get()]))
        .map_err(db_err)?;
    c.prepare_cached(
        "INSERT INTO point_ledger (user_id, kind, amount, balance_after, payment_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![user.get(), op.as_str(), amount.get(), after.get(), payment, now.0]))
    .map_err(db_err)?;
    Ok(())
}

/// Ends reservations (expired or released) and frees the seats they still hold.
fn end_reservations(c: &Connection, ids: &[ReservationId], status: &str, now: Millis) -> Result<()> {
    for id in ids {
        c.prepare_cached("UPDATE reservations SET status = ?2, ended_at = ?3 WHERE id = ?1 AND status = 'HELD'")
            .and_then(|mut s| s.execute(params![id.get(), status, now.0]))
            .map_err(db_err)?;
        c.prepare_cached(
            "UPDATE seats SET status = 'AVAILABLE', reservation_id = NULL, hold_expires_at = NULL \
             WHERE reservation_id = ?1 AND status = 'HELD'",
        )
        .and_then(|mut s| s.execute([id.get()]))
        .map_err(db_err)?;
    }
    Ok(())
}

fn hold(t: &Connection, req: &HoldRequest) -> Result<Held> {
    let live = live_hold_of(t, req.user, req.concert, req.now)?;
    let mut found = Vec::with_capacity(req.seats.len());
    {
        let mut s = t
            .prepare_cached(&format!("SELECT {SEATS_FROM} WHERE s.schedule_id = ?1 AND s.seat_no = ?2"))
            .map_err(db_err)?;
        for seat in &req.seats {
            if let Some(row) =
                s.query_row(params![req.schedule.get(), seat.get()], seat_row).optional().map_err(db_err)?
            {
                let row = to_seat(row)?;
                found.push(SeatForHold { seat_no: row.seat_no, price: row.price, state: row.state });
            }
        }
    }
    let (seats, lapsed) = match booking::decide_hold(req.schedule, &req.seats, &found, live, req.now)? {
        HoldDecision::Again(reservation) => return Ok(Held { reservation, again: true, lapsed: Vec::new() }),
        HoldDecision::Take { seats, lapsed } => (seats, lapsed),
    };
    end_reservations(t, &lapsed, "EXPIRED", req.now)?;
    let total: i64 = seats.iter().map(|s| s.price.get()).sum();
    let id: i64 = t
        .prepare_cached(
            "INSERT INTO reservations (user_id, schedule_id, price, status, created_at, expires_at) \
             VALUES (?1, ?2, ?3, 'HELD', ?4, ?5) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(params![req.user.get(), req.schedule.get(), total, req.now.0, req.expires_at.0], |r| r.get(0))
        })
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => booking::user_not_found(req.user),
            _ => db_err(e),
        })?;
    let mut add = t
        .prepare_cached(
            "INSERT INTO reservation_seats (reservation_id, schedule_id, seat_no, price) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db_err)?;
    // Conditional on each seat being free: the single writer makes this a formality, but it
    // keeps every statement right on its own.
    let mut take = t
        .prepare_cached(&format!(
            "UPDATE seats SET status = 'HELD', reservation_id = ?3, hold_expires_at = ?4 \
             WHERE schedule_id = ?1 AND seat_no = ?2 AND {}",
            seat_is_free("?5")
        ))
        .map_err(db_err)?;
    for seat in &seats {
        add.execute(params![id, req.schedule.get(), seat.seat_no.get(), seat.price.get()]).map_err(db_err)?;
        if take
            .execute(params![req.schedule.get(), seat.seat_no.get(), id, req.expires_at.0, req.now.0])
            .map_err(db_err)?
            != 1
        {
            return Err(Error::seat_unavailable());
        }
    }
    Ok(Held { reservation: req.held(ReservationId::from_trusted(id), seats), again: false, lapsed })
}

fn pay(t: &Connection, req: &PayRequest) -> Result<Receipt> {
    let request = req.fingerprint();
    if let Some(receipt) = replay(stored_outcome(t, req.user, "payment", req.key.as_str())?, &request)? {
        return Ok(receipt);
    }
    let plan = booking::plan_payment(req, load_reservation(t, req.reservation)?, load_balance(t, req.user)?)?;
    let r = &plan.reservation;
    let payment: i64 = t
        .prepare_cached(
            "INSERT INTO payments (reservation_id, user_id, amount, idempotency_key, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(params![r.id.get(), req.user.get(), plan.amount.get(), req.key.as_str(), req.now.0], |row| {
                row.get(0)
            })
        })
        .map_err(db_err)?;
    write_ledger(t, plan.ledger_row(PaymentId::from_trusted(payment), req.now))?;
    let mut sell = t
        .prepare_cached(
            "UPDATE seats SET status = 'SOLD', hold_expires_at = NULL \
             WHERE schedule_id = ?1 AND seat_no = ?2 AND reservation_id = ?3 AND status = 'HELD'",
        )
        .map_err(db_err)?;
    let mut record = t
        .prepare_cached(
            "INSERT INTO sold_seats (schedule_id, seat_no, reservation_id, payment_id) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db_err)?;
    for seat in &r.seats {
        if sell.execute(params![r.schedule.get(), seat.seat_no.get(), r.id.get()]).map_err(db_err)? != 1 {
            return Err(Error::internal(format!(
                "seat {} of reservation {} is not held by it",
                seat.seat_no.get(),
                r.id
            )));
        }
        record.execute(params![r.schedule.get(), seat.seat_no.get(), r.id.get(), payment]).map_err(db_err)?;
    }
    t.prepare_cached("UPDATE reservations SET status = 'CONFIRMED', confirmed_at = ?2, payment_id = ?3 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![r.id.get(), req.now.0, payment]))
        .map_err(db_err)?;
    let receipt = plan.receipt(PaymentId::from_trusted(payment));
    remember(t, req.user, "payment", req.key.as_str(), &request, &receipt, req.now)?;
    Ok(receipt)
}

fn move_points(t: &Connection, req: &PointsRequest) -> Result<PointsChange> {
    let request = req.fingerprint();
    if let Some(key) = &req.key {
        if let Some(change) = replay(stored_outcome(t, req.user, req.scope(), key.as_str())?, &request)? {
            return Ok(change);
        }
    }
    let change = booking::plan_points(req, load_balance(t, req.user)?)?;
    write_ledger(t, req.ledger_row(&change))?;
    if let Some(key) = &req.key {
        remember(t, req.user, req.scope(), key.as_str(), &request, &change, req.now)?;
    }
    Ok(change)
}

#[async_trait]
impl BookingStore for SqliteStore {
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
                    .prepare_cached(
                        "SELECT id, concert_id, starts_at, seat_count FROM schedules ORDER BY concert_id, starts_at, id",
                    )
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
                    .prepare_cached(&format!("SELECT {SEATS_FROM} WHERE s.schedule_id = ?1 ORDER BY s.seat_no"))
                    .map_err(db_err)?;
                let rows: Vec<_> =
                    s.query_map([schedule.get()], seat_row).and_then(|rows| rows.collect()).map_err(db_err)?;
                rows.into_iter().map(to_seat).collect()
            })
            .await
    }

    async fn user_exists(&self, user: UserId) -> Result<bool> {
        self.db.read(move |c| Ok(load_balance(c, user)?.is_some())).await
    }

    async fn user_id_ranges(&self) -> Result<Vec<(UserId, UserId)>> {
        self.db
            .read(|c| {
                let mut s = c.prepare(USER_ID_RANGES).map_err(db_err)?;
                let rows = s
                    .query_map([], |r| Ok((UserId::from_trusted(r.get(0)?), UserId::from_trusted(r.get(1)?))))
                    .and_then(|rows| rows.collect())
                    .map_err(db_err)?;
                Ok(rows)
            })
            .await
    }

    async fn hold(&self, req: HoldRequest) -> Result<Held> {
        self.db.write(move |t| hold(t, &req)).await
    }

    async fn release(&self, req: ReleaseRequest) -> Result<Released> {
        self.db
            .write(move |t| {
                let r = load_reservation(t, req.reservation)?
                    .ok_or_else(|| booking::reservation_not_found(req.reservation))?;
                match booking::decide_release(&r, req.user, req.now)? {
                    ReleaseDecision::AlreadyOver => Ok(Released { reservation: r, freed: false }),
                    ReleaseDecision::Release => {
                        end_reservations(t, &[r.id], "RELEASED", req.now)?;
                        let reservation = load_reservation(t, r.id)?
                            .ok_or_else(|| Error::internal("released reservation vanished"))?;
                        Ok(Released { reservation, freed: true })
                    }
                }
            })
            .await
    }

    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>> {
        self.db.read(move |c| load_reservation(c, id)).await
    }

    async fn reservations_of(&self, user: UserId, limit: u32) -> Result<Vec<Reservation>> {
        self.db
            .read(move |c| reservations_where(c, "user_id = ?1 ORDER BY id DESC LIMIT ?2", params![user.get(), limit]))
            .await
    }

    async fn payment_replay(&self, user: UserId, key: &IdempotencyKey) -> Result<Option<Receipt>> {
        let key = key.clone();
        self.db
            .read(move |c| {
                Ok(match stored_outcome(c, user, "payment", key.as_str())? {
                    Some((request, response)) => replay(Some((request.clone(), response)), &request)?,
                    None => None,
                })
            })
            .await
    }

    async fn pay(&self, req: PayRequest) -> Result<Receipt> {
        self.db.write(move |t| pay(t, &req)).await
    }

    async fn balance(&self, user: UserId) -> Result<Points> {
        self.db.read(move |c| load_balance(c, user)?.ok_or_else(|| booking::user_not_found(user))).await
    }

    async fn move_points(&self, req: PointsRequest) -> Result<PointsChange> {
        self.db.write(move |t| move_points(t, &req)).await
    }

    async fn history(&self, user: UserId, limit: u32) -> Result<Vec<LedgerEntry>> {
        self.db
            .read(move |c| {
                load_balance(c, user)?.ok_or_else(|| booking::user_not_found(user))?;
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
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn expire_holds(&self, now: Millis) -> Result<u64> {
        self.db
            .write(move |t| {
                let n = t
                    .execute(
                        "UPDATE reservations SET status = 'EXPIRED', ended_at = ?1 WHERE status = 'HELD' AND expires_at <= ?1",
                        [now.0],
                    )
                    .map_err(db_err)?;
                t.execute(
                    &format!(
                        "UPDATE seats SET status = 'AVAILABLE', reservation_id = NULL, hold_expires_at = NULL WHERE {}",
                        seat_hold_lapsed("?1")
                    ),
                    [now.0],
                )
                .map_err(db_err)?;
                Ok(n as u64)
            })
            .await
    }

    async fn inventory(&self, now: Millis) -> Result<Vec<(ConcertId, Inventory)>> {
        self.db
            .read(move |c| {
                let mut s = c.prepare_cached(&inventory_sql("?1")).map_err(db_err)?;
                let rows = s
                    .query_map([now.0], |r| {
                        Ok((
                            ConcertId::from_trusted(r.get(0)?),
                            Inventory {
                                unsold: r.get::<_, i64>(1)? as u64,
                                free: r.get::<_, i64>(2)? as u64,
                                next_release_at: r.get::<_, Option<i64>>(3)?.map(Millis),
                            },
                        ))
                    })
                    .and_then(|rows| rows.collect())
                    .map_err(db_err)?;
                Ok(rows)
            })
            .await
    }

    async fn holds_past_expiry(&self, now: Millis) -> Result<u64> {
        self.db
            .read(move |c| {
                c.prepare_cached(&format!("SELECT COUNT(*) FROM seats WHERE {}", seat_hold_lapsed("?1")))
                    .and_then(|mut s| s.query_row([now.0], |r| r.get::<_, i64>(0)))
                    .map(|n| n as u64)
                    .map_err(db_err)
            })
            .await
    }
}

#[async_trait]
impl AdminStore for SqliteStore {
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

    async fn line_settings(&self) -> Result<Vec<(ConcertId, LineSettings)>> {
        self.db.read(|c| all_line_settings(c, None)).await
    }

    async fn change_line(
        &self,
        concert: ConcertId,
        change: LineChange,
        now: Millis,
    ) -> Result<(LineSettings, LineSettings)> {
        self.db
            .write(move |t| {
                let before = all_line_settings(t, Some(concert))?.pop().map(|(_, s)| s).unwrap_or_default();
                let after = change.apply(before);
                let (logged_before, logged_after) = (store_response(&before)?, store_response(&after)?);
                t.prepare_cached(
                    "INSERT INTO line_settings (concert_id, max_active, admission_rate, paused, closed, updated_at, \
                     on_sale_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (concert_id) DO UPDATE SET \
                     max_active = excluded.max_active, admission_rate = excluded.admission_rate, \
                     paused = excluded.paused, closed = excluded.closed, updated_at = excluded.updated_at, \
                     on_sale_at = excluded.on_sale_at",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        concert.get(),
                        after.max_active.map(|m| m as i64),
                        after.admission_rate,
                        after.paused,
                        after.closed,
                        now.0,
                        after.on_sale_at.map(|t| t.0)
                    ])
                })
                .map_err(db_err)?;
                if after.on_sale_at.is_some() {
                    let d = DrawSeed::new();
                    t.prepare_cached(
                        "INSERT INTO draws (concert_id, seed, commitment, created_at) VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (concert_id) DO NOTHING",
                    )
                    .and_then(|mut s| s.execute(params![concert.get(), d.seed, d.commitment, now.0]))
                    .map_err(db_err)?;
                }
                t.prepare_cached(
                    "INSERT INTO admin_log (at, concert_id, action, before, after) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![now.0, concert.get(), change.action(), logged_before, logged_after])
                })
                .map_err(db_err)?;
                Ok((before, after))
            })
            .await
    }

    async fn create_concert(&self, spec: NewConcert, now: Millis) -> Result<(Concert, Vec<Schedule>)> {
        self.db
            .write(move |t| {
                t.execute("INSERT INTO concerts (title, venue) VALUES (?1, ?2)", params![spec.title, spec.venue])
                    .map_err(db_err)?;
                let id = ConcertId::from_trusted(t.last_insert_rowid());
                let concert = Concert { id, title: spec.title.clone(), venue: spec.venue.clone() };
                let mut schedules = Vec::new();
                let prices = spec.prices();
                let mut seat = t
                    .prepare_cached("INSERT INTO seats (schedule_id, seat_no, price) VALUES (?1, ?2, ?3)")
                    .map_err(db_err)?;
                for starts in &spec.dates {
                    t.execute(
                        "INSERT INTO schedules (concert_id, starts_at, seat_count) VALUES (?1, ?2, ?3)",
                        params![id.get(), starts.0, spec.seat_count],
                    )
                    .map_err(db_err)?;
                    let schedule = ScheduleId::from_trusted(t.last_insert_rowid());
                    for (n, price) in &prices {
                        seat.execute(params![schedule.get(), n, price.get()]).map_err(db_err)?;
                    }
                    schedules.push(Schedule { id: schedule, concert: id, starts_at: *starts, seat_count: spec.seat_count });
                }
                t.execute(
                    "INSERT INTO admin_log (at, concert_id, action, before, after) VALUES (?1, ?2, 'create_concert', NULL, ?3)",
                    params![now.0, id.get(), created_concert_log(&concert, &schedules, &spec)?],
                )
                .map_err(db_err)?;
                Ok((concert, schedules))
            })
            .await
    }

    async fn draw_seeds(&self) -> Result<Vec<(ConcertId, DrawSeed)>> {
        self.db
            .read(|c| {
                let mut s = c.prepare_cached("SELECT concert_id, seed, commitment FROM draws").map_err(db_err)?;
                let rows = s
                    .query_map([], |r| {
                        Ok((ConcertId::from_trusted(r.get(0)?), DrawSeed { seed: r.get(1)?, commitment: r.get(2)? }))
                    })
                    .and_then(|rows| rows.collect())
                    .map_err(db_err)?;
                Ok(rows)
            })
            .await
    }

    async fn admin_log(&self, limit: u32) -> Result<Vec<AdminLogEntry>> {
        self.db
            .read(move |c| {
                let mut s = c
                    .prepare_cached(
                        "SELECT id, at, concert_id, action, before, after FROM admin_log ORDER BY id DESC LIMIT ?1",
                    )
                    .map_err(db_err)?;
                let rows = s
                    .query_map([limit], |r| {
                        Ok(AdminLogEntry::from_row(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                    })
                    .and_then(|rows| rows.collect())
                    .map_err(db_err)?;
                Ok(rows)
            })
            .await
    }
}

/// The operator's settings of one line, or of all.
fn all_line_settings(c: &Connection, concert: Option<ConcertId>) -> Result<Vec<(ConcertId, LineSettings)>> {
    let mut s = c
        .prepare_cached(
            "SELECT concert_id, max_active, admission_rate, paused, closed, on_sale_at FROM line_settings \
             WHERE ?1 IS NULL OR concert_id = ?1",
        )
        .map_err(db_err)?;
    let rows = s
        .query_map([concert.map(|c| c.get())], |r| {
            Ok((
                ConcertId::from_trusted(r.get(0)?),
                LineSettings {
                    max_active: r.get::<_, Option<i64>>(1)?.map(|m| m as u64),
                    admission_rate: r.get(2)?,
                    paused: r.get(3)?,
                    closed: r.get(4)?,
                    on_sale_at: r.get::<_, Option<i64>>(5)?.map(Millis),
                },
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(db_err)?;
    Ok(rows)
}

impl Store for SqliteStore {
    fn pool_stats(&self) -> crate::store::PoolStats {
        self.db.pool_stats()
    }
}
