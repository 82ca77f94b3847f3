//! Online backup and restore of the embedded store.
//!
//! A backup is `VACUUM INTO` on a connection of its own: SQLite copies one read transaction's
//! snapshot of the whole database into a new file, while the server goes on writing through the
//! WAL. The copy is consistent (every committed transaction up to the snapshot, nothing after)
//! and compact. It is never a file copy of a live WAL database, which can tear.
//!
//! The waiting room's journal lives in the same file, so a restored store brings back the lines
//! as they were at the snapshot. The token secret (`token.secret` in the data directory) is a
//! separate file: keep it with the backups, or every token in the restored lines is refused.

use super::sqlite_error::db_err;
use crate::domain::error::Code;
use crate::domain::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a backup or restore did, for the operator.
#[derive(Debug, serde::Serialize)]
pub struct Copied {
    pub file: PathBuf,
    pub bytes: u64,
    pub users: i64,
    pub payments: i64,
    pub queue_entries: i64,
    pub seconds: f64,
}

fn check(path: &Path) -> Result<(i64, i64, i64)> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db_err)?;
    let verdict: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(db_err)?;
    if verdict != "ok" {
        return Err(Error::internal(format!("{} fails its integrity check: {verdict}", path.display())));
    }
    let count = |table: &str| -> Result<i64> {
        c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).map_err(db_err)
    };
    Ok((count("users")?, count("payments")?, count("queue_entries")?))
}

/// Copies the store at `db` into `to` while it may be serving.
pub fn backup(db: &Path, to: &Path) -> Result<Copied> {
    let started = Instant::now();
    if !db.exists() {
        return Err(Error::new(Code::StoreNotFound, format!("no embedded store at {}", db.display())));
    }
    if to.exists() {
        return Err(Error::new(Code::BackupExists, format!("{} already exists; choose a new file", to.display())));
    }
    let dir = to.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::unavailable("backup", format!("{}: {e}", dir.display())))?;
    // A temporary name first, so a crash mid-copy never leaves something that looks like a backup.
    let partial = to.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db_err)?;
    c.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_err)?;
    c.execute("VACUUM INTO ?1", [partial.to_string_lossy()]).map_err(db_err)?;
    drop(c);
    let (users, payments, queue_entries) = check(&partial)?;
    sync_file(&partial)?;
    std::fs::rename(&partial, to).map_err(|e| Error::unavailable("backup", e))?;
    sync_dir(dir);
    Ok(Copied {
        file: to.to_owned(),
        bytes: std::fs::metadata(to).map(|m| m.len()).unwrap_or(0),
        users,
        payments,
        queue_entries,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Puts the backup `from` in place as the store at `db`. The caller holds the data directory's
/// lock, so no server uses it meanwhile.
pub fn restore(from: &Path, db: &Path, replace: bool) -> Result<Copied> {
    let started = Instant::now();
    let (users, payments, queue_entries) = check(from)?;
    if db.exists() && !replace {
        return Err(Error::new(
            Code::StoreExists,
            format!("{} already holds a store; pass --force to replace it", db.display()),
        ));
    }
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::unavailable("restore", format!("{}: {e}", dir.display())))?;
    let partial = db.with_extension("restoring");
    std::fs::copy(from, &partial).map_err(|e| Error::unavailable("restore", e))?;
    sync_file(&partial)?;
    // The old store's write-ahead log belongs to the old file: it must not be replayed onto the new one.
    for suffix in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    std::fs::rename(&partial, db).map_err(|e| Error::unavailable("restore", e))?;
    sync_dir(dir);
    Ok(Copied {
        file: db.to_owned(),
        bytes: std::fs::metadata(db).map(|m| m.len()).unwrap_or(0),
        users,
        payments,
        queue_entries,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn sync_file(p: &Path) -> Result<()> {
    std::fs::File::open(p).and_then(|f| f.sync_all()).map_err(|e| Error::unavailable("backup", e))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// An exclusive lock on the data directory, held by a server for as long as it runs (and by
/// `restore` while it replaces the store): a second server, or a restore under a running one,
/// is refused instead of corrupting the store.
pub struct DataDirLock(#[allow(dead_code)] std::fs::File);

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::unavailable("data directory", format!("{}: {e}", data_dir.display())))?;
        let path = data_dir.join("boxoffice.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::unavailable("data directory", format!("{}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Self(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::new(
                Code::DataDirInUse,
                format!("{} is in use by another boxoffice process (it holds {})", data_dir.display(), path.display()),
            )),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::unavailable("data directory", format!("locking {}: {e}", path.display())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::embedded::db::{Db, DbOptions};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_taken_during_writes_is_consistent_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boxoffice.db");
        let db = std::sync::Arc::new(Db::open(&path, DbOptions::default()).unwrap());
        // Writers keep inserting users (with their ledger charge) while the backup runs.
        let writer = {
            let db = db.clone();
            tokio::spawn(async move {
                for id in 1..=3000i64 {
                    db.write(move |c| {
                        c.execute("INSERT INTO users (id, balance) VALUES (?1, 5)", [id]).map_err(db_err)?;
                        c.execute(
                            "INSERT INTO point_ledger (user_id, kind, amount, balance_after, created_at) \
                             VALUES (?1, 'CHARGE', 5, 5, 0)",
                            [id],
                        )
                        .map_err(db_err)
                    })
                    .await
                    .unwrap();
                }
            })
        };
        while db
            .read(|c| c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0)).map_err(db_err))
            .await
            .unwrap()
            < 500
        {
            tokio::task::yield_now().await;
        }
        let to = dir.path().join("backups/first.db");
        let copied = tokio::task::spawn_blocking({
            let (path, to) = (path.clone(), to.clone());
            move || backup(&path, &to)
        })
        .await
        .unwrap()
        .unwrap();
        writer.await.unwrap();
        assert!(copied.users >= 500 && copied.users <= 3000, "{copied:?}");
        // The snapshot is one transaction's view: every user has exactly its ledger row.
        let c = Connection::open(&to).unwrap();
        let orphans: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM users u WHERE (SELECT COUNT(*) FROM point_ledger l WHERE l.user_id = u.id) != 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
        assert!(matches!(backup(&path, &to), Err(e) if e.code == Code::BackupExists), "never overwrites a backup");
        // Restore into a fresh directory, and it opens as a store.
        let fresh = tempfile::tempdir().unwrap();
        let target = fresh.path().join("boxoffice.db");
        let restored = restore(&to, &target, false).unwrap();
        assert_eq!(restored.users, copied.users);
        assert!(matches!(restore(&to, &target, false), Err(e) if e.code == Code::StoreExists));
        let reopened = Db::open(&target, DbOptions::default()).unwrap();
        let n: i64 = reopened
            .read(|c| c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0)).map_err(db_err))
            .await
            .unwrap();
        assert_eq!(n, copied.users);
    }

    #[test]
    fn a_data_directory_is_held_by_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDirLock::acquire(dir.path()).unwrap();
        assert!(matches!(DataDirLock::acquire(dir.path()), Err(e) if e.code == Code::DataDirInUse));
        drop(held);
        assert!(DataDirLock::acquire(dir.path()).is_ok());
    }
}
