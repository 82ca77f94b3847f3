//! Load-test fixtures generated inside the server with generate_series: 100,000 users in one
//! statement.

use super::statements::Statements;
use super::store::pg_err;
use crate::domain::booking::seeded_price;
use crate::domain::error::Code;
use crate::domain::{Error, Millis, Result};
use crate::store::SeedSpec;
use sqlx::PgConnection;

pub async fn seed(c: &mut PgConnection, stmts: Statements, spec: SeedSpec, now: Millis) -> Result<()> {
    let (users, concerts): (i64, i64) = stmts
        .query_as("SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM concerts)")
        .fetch_one(&mut *c)
        .await
        .map_err(pg_err)?;
    if users > 0 || concerts > 0 {
        return Err(Error::new(
            Code::StoreNotEmpty,
            format!("the store already holds {users} users and {concerts} concerts; seed only a fresh database"),
        ));
    }
    let run = |sql: &'static str| stmts.query(sql);
    run("INSERT INTO users (id, balance) SELECT g, $2 FROM generate_series(1, $1::bigint) g")
        .bind(spec.users as i64)
        .bind(spec.balance)
        .execute(&mut *c)
        .await
        .map_err(pg_err)?;
    // A starting balance is a charge like any other, so balance = ledger sum holds from the start.
    if spec.balance > 0 {
        run("INSERT INTO point_ledger (user_id, kind, amount, balance_after, created_at) \
             SELECT g, 'CHARGE', $2, $2, $3 FROM generate_series(1, $1::bigint) g")
        .bind(spec.users as i64)
        .bind(spec.balance)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map_err(pg_err)?;
    }
    run("INSERT INTO concerts (id, title, venue) SELECT g, 'boxoffice live #' || g, 'Olympic Hall' \
         FROM generate_series(1, $1::bigint) g")
    .bind(spec.concerts as i64)
    .execute(&mut *c)
    .await
    .map_err(pg_err)?;
    // Dates start a week out at 19:00 UTC, one day apart; schedule ids run 1.. in concert order.
    let day = 86_400_000i64;
    run("INSERT INTO schedules (id, concert_id, starts_at, seat_count) \
         SELECT (c - 1) * $2 + s, c, ($3 / $5 + 7 + s) * $5 + 19 * 3600000, $4 \
         FROM generate_series(1, $1::bigint) c, generate_series(1, $2::bigint) s")
    .bind(spec.concerts as i64)
    .bind(spec.schedules as i64)
    .bind(now.0)
    .bind(spec.seats as i32)
    .bind(day)
    .execute(&mut *c)
    .await
    .map_err(pg_err)?;
    let (premium, regular) = (seeded_price(1).get(), seeded_price(11).get());
    run("INSERT INTO seats (schedule_id, seat_no, price) \
         SELECT sc.id, n, CASE WHEN n <= 10 THEN $2 ELSE $3 END \
         FROM schedules sc, generate_series(1, $1::int) n")
    .bind(spec.seats as i32)
    .bind(premium)
    .bind(regular)
    .execute(&mut *c)
    .await
    .map_err(pg_err)?;
    Ok(())
}
