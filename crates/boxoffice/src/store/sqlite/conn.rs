//! SQLite connections: one writer thread that runs every write in its own `BEGIN IMMEDIATE`
//! transaction (so writes queue up instead of failing with SQLITE_BUSY), and a small pool of
//! read-only connections used from the blocking thread pool.

use crate::domain::{Error, Result};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use tokio::sync::{oneshot, Semaphore};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

#[derive(Debug, Clone, Copy)]
pub struct DbOptions {
    pub read_connections: usize,
    /// Longest wait for a connection or for the writer before answering 503.
    pub timeout: Duration,
    /// Writes allowed to wait for the writer at once; more are refused at once with 503.
    pub write_queue: usize,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self { read_connections: 4, timeout: Duration::from_secs(2), write_queue: 4096 }
    }
}

pub struct Db {
    writer: SyncSender<Job>,
    /// Writes sent to the writer and not finished yet.
    writes_in_flight: Arc<AtomicUsize>,
    readers: Arc<Mutex<Vec<Connection>>>,
    read_permits: Arc<Semaphore>,
    opts: DbOptions,
    pub path: PathBuf,
}

pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked | CannotOpen | DiskFull | SystemIoFailure | OutOfMemory) => {
            Error::unavailable("database", e)
        }
        _ => Error::internal(format!("database: {e}")),
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -16_000)?;
    Ok(())
}

/// Whether a queued write may still run: the writer starts it, or its caller withdraws it,
/// whichever comes first. Dropping the caller's handle withdraws it too.
#[derive(Clone)]
struct Withdrawable(Arc<std::sync::atomic::AtomicU8>);

const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const WITHDRAWN: u8 = 2;

impl Withdrawable {
    fn new() -> Self {
        Self(Arc::new(std::sync::atomic::AtomicU8::new(QUEUED)))
    }

    fn start(&self) -> bool {
        self.0.compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    fn withdraw(&self) -> bool {
        self.0.compare_exchange(QUEUED, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

impl Drop for Withdrawable {
    fn drop(&mut self) {
        // The caller's handle going away withdraws a write that has not started. Withdrawing
        // after the start does nothing, so the job's own copy going away is harmless.
        self.withdraw();
    }
}

/// Counts a write from the moment it is queued until it has run or was dropped unrun (before,
/// the count only ever grew, so `boxoffice_db_pool_in_use` climbed forever in embedded mode).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Db {
    pub fn open(path: &Path, opts: DbOptions) -> Result<Self> {
        let mut writer = Connection::open(path).map_err(db_err)?;
        writer.pragma_update(None, "journal_mode", "WAL").map_err(db_err)?;
        configure(&writer).map_err(db_err)?;
        super::migrate::apply(&mut writer)?;

        let mut readers = Vec::with_capacity(opts.read_connections);
        for _ in 0..opts.read_connections.max(1) {
            let c = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(db_err)?;
            configure(&c).map_err(db_err)?;
            readers.push(c);
        }

        let (tx, rx) = sync_channel::<Job>(opts.write_queue.max(1));
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut writer);
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the SQLite writer: {e}")))?;

        Ok(Self {
            writer: tx,
            writes_in_flight: Arc::new(AtomicUsize::new(0)),
            read_permits: Arc::new(Semaphore::new(readers.len())),
            readers: Arc::new(Mutex::new(readers)),
            opts,
            path: path.to_owned(),
        })
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer; commits if it returns Ok.
    ///
    /// An error means nothing was written: the time-out (and a caller that goes away) only
    /// withdraws a write that has not started; one that has started is waited for. Otherwise a
    /// caller could be told "unavailable" about a write that commits a moment later, and act on
    /// it (the waiting room would hand the same place to the next person).
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T> + Send + 'static,
    {
        let (tx, mut rx) = oneshot::channel();
        let sent = Instant::now();
        let in_flight = InFlight::enter(&self.writes_in_flight);
        let claim = Withdrawable::new();
        let started = claim.clone();
        let job: Job = Box::new(move |conn| {
            if !started.start() {
                return; // withdrawn while it waited
            }
            metrics::histogram!("boxoffice_db_pool_wait_seconds", "kind" => "write")
                .record(sent.elapsed().as_secs_f64());
            let run = || -> Result<T> {
                let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
                let value = f(&txn)?;
                txn.commit().map_err(db_err)?;
                Ok(value)
            };
            let result = run();
            drop(in_flight);
            let _ = tx.send(result);
        });
        match self.writer.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(Error::unavailable("database", "too many writes are waiting")),
            Err(TrySendError::Disconnected(_)) => return Err(Error::unavailable("database", "the writer has stopped")),
        }
        let dropped = |_| Error::unavailable("database", "the writer dropped the request");
        match tokio::time::timeout(self.opts.timeout, &mut rx).await {
            Ok(result) => result.map_err(dropped)?,
            Err(_) if claim.withdraw() => Err(Error::unavailable("database", "timed out waiting for the writer")),
            // Already running: SQLite finishes it within its own busy time-out.
            Err(_) => rx.await.map_err(dropped)?,
        }
    }

    /// Read connections plus the writer, and how many are busy or queued for.
    pub fn pool_stats(&self) -> crate::store::PoolStats {
        let readers = self.opts.read_connections.max(1);
        let busy_readers = readers - self.read_permits.available_permits().min(readers);
        crate::store::PoolStats {
            size: readers as u64 + 1,
            in_use: (busy_readers + self.writes_in_flight.load(Ordering::Relaxed)) as u64,
        }
    }

    /// Runs `f` on a read-only connection in the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let asked = Instant::now();
        let permit = tokio::time::timeout(self.opts.timeout, self.read_permits.clone().acquire_owned())
            .await
            .map_err(|_| Error::unavailable("database", "timed out waiting for a read connection"))?
            .map_err(|_| Error::unavailable("database", "the read pool is closed"))?;
        metrics::histogram!("boxoffice_db_pool_wait_seconds", "kind" => "read").record(asked.elapsed().as_secs_f64());
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.lock().pop().expect("a permit guarantees a free connection");
            let result = f(&conn);
            readers.lock().push(conn);
            drop(permit);
            result
        })
        .await
        .map_err(|e| Error::internal(format!("read task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Concurrent writes: a write that fails rolls back only itself, every caller hears its own
    /// result, and the in-flight count (the pool gauge) returns to zero.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_stay_independent_and_are_counted_out() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("t.db"), DbOptions::default()).unwrap());
        db.write(|c| c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)").map_err(db_err)).await.unwrap();
        let writes = (0..400i64).map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |c| {
                    c.execute("INSERT INTO t (n) VALUES (?1)", [n]).map_err(db_err)?;
                    if n % 2 == 1 {
                        return Err(Error::bad_request("ODD", "odd numbers are refused after inserting"));
                    }
                    Ok(n)
                })
                .await
            })
        });
        let results = futures::future::join_all(writes).await;
        for (n, r) in results.into_iter().enumerate() {
            match r.unwrap() {
                Ok(v) => assert_eq!((v, n % 2), (n as i64, 0)),
                Err(e) => assert_eq!((e.code, n % 2), ("ODD", 1)),
            }
        }
        let (rows, odd): (i64, i64) = db
            .read(|c| {
                c.query_row("SELECT COUNT(*), COUNT(*) FILTER (WHERE n % 2 = 1) FROM t", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(db_err)
            })
            .await
            .unwrap();
        assert_eq!((rows, odd), (200, 0));
        assert_eq!(db.pool_stats().in_use, 0, "every finished write leaves the in-flight count");
    }

    /// A write that times out waiting for the writer is never applied later, so its 503 is true;
    /// one that has started is waited for.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timed_out_write_is_withdrawn_not_applied_later() {
        let dir = tempfile::tempdir().unwrap();
        let opts = DbOptions { timeout: Duration::from_millis(100), ..DbOptions::default() };
        let db = Arc::new(Db::open(&dir.path().join("t.db"), opts).unwrap());
        db.write(|c| c.execute_batch("CREATE TABLE t (n INTEGER)").map_err(db_err)).await.unwrap();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (running, is_running) = oneshot::channel::<()>();
        // Occupies the writer until released: started, so it is waited for beyond the time-out.
        let slow = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(move |c| {
                    let _ = running.send(());
                    let _ = wait.recv();
                    c.execute("INSERT INTO t (n) VALUES (1)", []).map_err(db_err)
                })
                .await
            }
        });
        is_running.await.unwrap();
        // Queued behind it: times out while waiting.
        let queued = db.write(|c| c.execute("INSERT INTO t (n) VALUES (2)", []).map_err(db_err)).await;
        assert_eq!(queued.unwrap_err().code, "DEPENDENCY_UNAVAILABLE");
        release.send(()).unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), 1, "the started write finished and was reported");
        let rows: Vec<i64> = db
            .read(|c| {
                let mut st = c.prepare("SELECT n FROM t ORDER BY n").map_err(db_err)?;
                let rows = st.query_map([], |r| r.get(0)).map_err(db_err)?;
                rows.collect::<rusqlite::Result<Vec<i64>>>().map_err(db_err)
            })
            .await
            .unwrap();
        assert_eq!(rows, vec![1], "the withdrawn write never ran");
        assert_eq!(db.pool_stats().in_use, 0);
    }
}
