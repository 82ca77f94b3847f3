//! Load-test fixtures in one transaction with prepared statements: 100,000 users take well
//! under a second.

use super::sqlite_error::db_err;
use crate::domain::booking::seeded_price;
use crate::domain::error::Code;
use crate::domain::{Error, Millis, Result};
use crate::store::SeedSpec;
use rusqlite::{params, Connection};

pub fn seed(t: &Connection, spec: SeedSpec, now: Millis) -> Result<()> {
    let (users, concerts): (i64, i64) = t
        .query_row("SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM concerts)", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(db_err)?;
    if users > 0 || concerts > 0 {
        return Err(Error::new(
            Code::StoreNotEmpty,
            format!("the store already holds {users} users and {concerts} concerts; seed only a fresh database"),
        ));
    }
    {
        let mut user = t.prepare("INSERT INTO users (id, balance) VALUES (?1, ?2)").map_err(db_err)?;
        let mut ledger = t
            .prepare(
                "INSERT INTO point_ledger (user_id, kind, amount, balance_after, created_at) VALUES (?1, 'CHARGE', ?2, ?2, ?3)",
            )
            .map_err(db_err)?;
        for id in 1..=spec.users as i64 {
            user.execute(params![id, spec.balance]).map_err(db_err)?;
            // A starting balance is a charge like any other, so balance = ledger sum holds from the start.
            if spec.balance > 0 {
                ledger.execute(params![id, spec.balance, now.0]).map_err(db_err)?;
            }
        }
    }
    let mut concert = t.prepare("INSERT INTO concerts (id, title, venue) VALUES (?1, ?2, ?3)").map_err(db_err)?;
    let mut schedule = t
        .prepare("INSERT INTO schedules (id, concert_id, starts_at, seat_count) VALUES (?1, ?2, ?3, ?4)")
        .map_err(db_err)?;
    let mut seat = t.prepare("INSERT INTO seats (schedule_id, seat_no, price) VALUES (?1, ?2, ?3)").map_err(db_err)?;
    let day = 86_400_000i64;
    let mut schedule_id = 0i64;
    for c in 1..=spec.concerts as i64 {
        concert.execute(params![c, format!("boxoffice live #{c}"), "Olympic Hall"]).map_err(db_err)?;
        for s in 1..=spec.schedules as i64 {
            schedule_id += 1;
            // Dates start a week out at 19:00 UTC-ish, one day apart.
            let starts = (now.0 / day + 7 + s) * day + 19 * 3_600_000;
            schedule.execute(params![schedule_id, c, starts, spec.seats]).map_err(db_err)?;
            for n in 1..=spec.seats as i32 {
                seat.execute(params![schedule_id, n, seeded_price(n).get()]).map_err(db_err)?;
            }
        }
    }
    Ok(())
}
