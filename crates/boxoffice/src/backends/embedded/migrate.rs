//! Versioned migrations for the SQLite backend, applied in order, each in its own transaction.

use super::sqlite_error::db_err;
use crate::domain::{Error, Result};
use rusqlite::{Connection, OptionalExtension};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_group_holds.sql")),
    (3, include_str!("migrations/0003_line_controls.sql")),
];

/// Applies every migration not applied yet; returns how many ran.
pub fn apply(conn: &mut Connection) -> Result<usize> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(db_err)?;
    let mut ran = 0;
    // Rebuilding a table (SQLite cannot change a CHECK in place) needs foreign keys off while it
    // runs; they are checked before each migration commits, and on again afterwards.
    conn.pragma_update(None, "foreign_keys", "OFF").map_err(db_err)?;
    let result = apply_each(conn, &mut ran);
    conn.pragma_update(None, "foreign_keys", "ON").map_err(db_err)?;
    result.map(|()| ran)
}

fn apply_each(conn: &mut Connection, ran: &mut usize) -> Result<()> {
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
            let broken: Option<String> = txn
                .query_row("SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1", [], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            if let Some(table) = broken {
                return Err(Error::internal(format!("migration {version} leaves {table} with broken references")));
            }
            *ran += 1;
        }
        txn.commit().map_err(db_err)?;
    }
    Ok(())
}
