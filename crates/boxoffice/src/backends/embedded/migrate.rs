//! Versioned migrations for the SQLite backend, applied in order, each in its own transaction.

use super::db::db_err;
use crate::domain::Result;
use rusqlite::Connection;

const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("migrations/0001_init.sql"))];

/// Applies every migration not applied yet; returns how many ran.
pub fn apply(conn: &mut Connection) -> Result<usize> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(db_err)?;
    let mut ran = 0;
    for (version, sql) in MIGRATIONS {
        let txn = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db_err)?;
        let done: bool = txn
            .query_row("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)", [version], |r| r.get(0))
            .map_err(db_err)?;
        if !done {
            txn.execute_batch(sql).map_err(db_err)?;
            txn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                rusqlite::params![version, crate::domain::Millis::now().0],
            )
            .map_err(db_err)?;
            ran += 1;
        }
        txn.commit().map_err(db_err)?;
    }
    Ok(ran)
}
