//! SQLite connections: one writer thread that commits writes in groups, and a small pool of
//! read-only connections.
//!
//! **Group commit.** The writer takes every write waiting for it (up to `MAX_BATCH`), runs each in
//! its own savepoint inside one `BEGIN IMMEDIATE` transaction, commits once, and only then
//! answers all of them. A write that fails rolls back its own savepoint and nothing else. With
//! `synchronous=FULL` the commit is one fsync for the whole group, so durability costs one sync
//! per batch, not per request; under load the batches grow by themselves (whatever arrives
//! while a commit runs goes into the next one). One thread owns the connection, so writes queue
//! instead of failing with `SQLITE_BUSY`, and a select-then-update inside one write is race-free.

pub(crate) use super::sqlite_error::db_err;
use crate::domain::{Error, Result};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Semaphore};

/// Most writes committed together. Large enough that a flash crowd's joins share a few commits,
/// small enough that one batch never holds the writer for long.
pub const MAX_BATCH: usize = 512;

/// How a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Synchronous {
    /// `synchronous=FULL`: a commit is on disk before it is answered; survives an OS crash or a
    /// power cut.
    Full,
    /// `synchronous=NORMAL`: a commit survives a crash of the process but not of the operating
    /// system; the last commits before a power cut can be lost after they were answered.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct DbOptions {
    pub read_connections: usize,
    /// Longest wait for a connection or for the writer before answering 503.
    pub timeout: Duration,
    /// Writes allowed to wait for the writer at once; more are refused at once with 503.
    pub write_queue: usize,
    pub synchronous: Synchronous,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self { read_connections: 4, timeout: Duration::from_secs(2), write_queue: 4096, synchronous: Synchronous::Full }
    }
}

/// What a write did, as the writer thread sees it: whether its savepoint is kept, and how to
/// answer its caller once the batch's commit is known.
struct Ran {
    ok: bool,
    answer: Answer,
}

struct Job {
    claim: Withdrawable,
    queued: Instant,
    run: RunJob,
}

/// Given no connection, the write is not run and only told why (`Ran::answer` gets the error).
type RunJob = Box<dyn FnOnce(Option<&Connection>) -> Ran + Send>;

/// Called on the writer thread after a batch failed to commit, with the connection rolled back:
/// whoever mirrors the database in memory reloads it from there.
pub type RollbackHook = Box<dyn Fn(&Connection) + Send + Sync>;

/// The writer's inbox: callers push without a lock (a lock-free channel), and wake the writer
/// only when it sleeps, so a busy writer costs callers no system call. (A blocking channel
/// receive spun and yielded between batches, and a mutex-guarded queue made callers spin on
/// each other; either cost a large share of the CPU under a join flood.)
struct Inbox {
    queued: AtomicUsize,
    capacity: usize,
    sleeping: std::sync::atomic::AtomicBool,
    writer: std::sync::OnceLock<std::thread::Thread>,
}

impl Inbox {
    fn push(&self, job: Job, tx: &std::sync::mpsc::Sender<Job>) -> Result<()> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::unavailable("database", "too many writes are waiting"));
        }
        if tx.send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::unavailable("database", "the writer has stopped"));
        }
        if self.sleeping.swap(false, Ordering::SeqCst) {
            if let Some(t) = self.writer.get() {
                t.unpark();
            }
        }
        Ok(())
    }

    /// Waits for work, then takes up to `MAX_BATCH` writes in arrival order; false once every
    /// sender is gone and nothing is left to write.
    fn take(&self, rx: &std::sync::mpsc::Receiver<Job>, into: &mut Vec<Job>) -> bool {
        use std::sync::mpsc::TryRecvError;
        loop {
            match rx.try_recv() {
                Ok(job) => {
                    into.push(job);
                    break;
                }
                Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => {
                    // Announce the sleep, then look once more: a push that raced with the
                    // announcement either is seen now or sees the flag and unparks us.
                    self.sleeping.store(true, Ordering::SeqCst);
                    match rx.try_recv() {
                        Ok(job) => {
                            self.sleeping.store(false, Ordering::SeqCst);
                            into.push(job);
                            break;
                        }
                        Err(TryRecvError::Disconnected) => return false,
                        Err(TryRecvError::Empty) => std::thread::park(),
                    }
                }
            }
        }
        while into.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => into.push(job),
                Err(_) => break,
            }
        }
        self.queued.fetch_sub(into.len(), Ordering::AcqRel);
        true
    }

    fn wake_writer(&self) {
        if let Some(t) = self.writer.get() {
            t.unpark();
        }
    }
}

pub struct Db {
    writer: Arc<Inbox>,
    /// The inbox's only sender: pushing through it takes no lock.
    tx: std::sync::mpsc::Sender<Job>,
    checkpointer: Checkpointer,
    /// Writes sent to the writer and not finished yet.
    writes_in_flight: Arc<AtomicUsize>,
    readers: Arc<Mutex<Vec<Connection>>>,
    read_permits: Arc<Semaphore>,
    rollback_hooks: Arc<Mutex<Vec<RollbackHook>>>,
    /// Batches committed (or tried) so far.
    batches: Arc<AtomicUsize>,
    opts: DbOptions,
    pub path: PathBuf,
}

fn configure(conn: &Connection, sync: Synchronous) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", sync.pragma())?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -16_000)?;
    Ok(())
}

/// Whether a queued write may still run: the writer starts it, or its caller withdraws it,
/// whichever comes first. Dropping the caller's handle withdraws it too.
#[derive(Clone)]
struct Withdrawable(Arc<AtomicU8>);

const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const WITHDRAWN: u8 = 2;

impl Withdrawable {
    fn new() -> Self {
        Self(Arc::new(AtomicU8::new(QUEUED)))
    }

    fn start(&self) -> bool {
        self.0.compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    fn withdraw(&self) -> bool {
        self.0.compare_exchange(QUEUED, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

/// Withdraws the write when the caller's future is dropped before the writer started it (a
/// client that went away). The writer's own copy is not one of these.
struct CallerClaim(Withdrawable);

impl Drop for CallerClaim {
    fn drop(&mut self) {
        self.0.withdraw();
    }
}

/// Counts a write from the moment it is queued until it has been answered or dropped unrun.
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
        configure(&writer, opts.synchronous).map_err(db_err)?;
        super::migrate::apply(&mut writer)?;
        // Checkpoints run on their own thread (below), not inside a commit of the writer: an
        // automatic checkpoint every 1,000 pages stalled every write behind it for milliseconds.
        writer.pragma_update(None, "wal_autocheckpoint", 0).map_err(db_err)?;
        writer.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024).map_err(db_err)?;
        let catch_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkpointer = Checkpointer::start(path, opts.synchronous, catch_up.clone())?;

        let mut readers = Vec::with_capacity(opts.read_connections);
        for _ in 0..opts.read_connections.max(1) {
            let c = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(db_err)?;
            configure(&c, opts.synchronous).map_err(db_err)?;
            readers.push(c);
        }

        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let inbox = Arc::new(Inbox {
            queued: AtomicUsize::new(0),
            capacity: opts.write_queue.max(1),
            sleeping: Default::default(),
            writer: Default::default(),
        });
        let for_writer = inbox.clone();
        let rollback_hooks: Arc<Mutex<Vec<RollbackHook>>> = Default::default();
        let hooks = rollback_hooks.clone();
        let batches = Arc::new(AtomicUsize::new(0));
        let counted = batches.clone();
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(writer, for_writer, rx, hooks, counted, catch_up))
            .map_err(|e| Error::internal(format!("cannot start the SQLite writer: {e}")))?;
        let _ = inbox.writer.set(handle.thread().clone());

        Ok(Self {
            writer: inbox,
            tx,
            checkpointer,
            writes_in_flight: Arc::new(AtomicUsize::new(0)),
            read_permits: Arc::new(Semaphore::new(readers.len())),
            readers: Arc::new(Mutex::new(readers)),
            rollback_hooks,
            batches,
            opts,
            path: path.to_owned(),
        })
    }

    /// Registers a hook that runs on the writer thread when a batch fails to commit.
    pub fn on_rollback(&self, hook: RollbackHook) {
        self.rollback_hooks.lock().push(hook);
    }

    /// Runs `f` on the writer, in its own savepoint of the next batch, and answers once that
    /// batch has committed (an error of `f` rolls back only `f`'s own changes).
    ///
    /// An error means nothing was written: the time-out (and a caller that goes away) only
    /// withdraws a write that has not started; one that has started is waited for. Otherwise a
    /// caller could be told "unavailable" about a write that commits a moment later, and act on
    /// it (the waiting room would hand the same place to the next person).
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, mut rx) = oneshot::channel();
        let in_flight = InFlight::enter(&self.writes_in_flight);
        let claim = Withdrawable::new();
        let run = move |conn: Option<&Connection>| -> Ran {
            let result = match conn {
                // The writer only asks for the answer; the outcome it passes is the reason.
                None => Err(Error::unavailable("database", "the write could not start")),
                Some(conn) => match std::panic::catch_unwind(AssertUnwindSafe(|| f(conn))) {
                    Ok(r) => r,
                    Err(_) => Err(Error::internal("a database write panicked")),
                },
            };
            let ok = result.is_ok();
            Ran {
                ok,
                answer: Box::new(move |committed| {
                    let _ = tx.send(committed.and(result));
                    drop(in_flight);
                }),
            }
        };
        let job = Job { claim: claim.clone(), queued: Instant::now(), run: Box::new(run) };
        let claim = CallerClaim(claim);
        self.writer.push(job, &self.tx)?;
        let dropped = |_| Error::unavailable("database", "the writer dropped the request");
        let result = match tokio::time::timeout(self.opts.timeout, &mut rx).await {
            Ok(result) => result.map_err(dropped)?,
            Err(_) if claim.0.withdraw() => Err(Error::unavailable("database", "timed out waiting for the writer")),
            // Already running: its batch commits (or fails) within SQLite's own busy time-out.
            Err(_) => rx.await.map_err(dropped)?,
        };
        drop(claim);
        result
    }

    /// Batches the writer has run so far.
    pub fn batches(&self) -> usize {
        self.batches.load(Ordering::Relaxed)
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

/// Copies the write-ahead log back into the database file every `CHECKPOINT_EVERY`, on a
/// connection of its own. PASSIVE checkpoints never block the writer or readers; they copy what
/// no reader still needs, and the writer starts the log over once everything was copied. Under
/// a steady stream of reads that moment may never come (every reader pins a recent frame), and
/// the log grew to gigabytes in the resource matrix; so once it is larger than `WAL_LIMIT` a
/// TRUNCATE checkpoint waits for the readers of the moment, copies everything and empties the
/// file: a pause of milliseconds for writes instead of a disk that fills up.
///
/// Under a steady stream of writes and no readers the log never starts over either: a
/// checkpoint running beside the writer never quite catches up with it, and the TRUNCATE then
/// stopped every write while it copied and synced (the join benchmark's p99, issue 12). So once
/// the log is larger than `WAL_LIMIT`, after its own PASSIVE round the checkpointer asks the
/// writer (`catch_up`) to run one PASSIVE checkpoint itself between two batches: no frame is
/// added meanwhile, so it copies only what came in since, and the writer's next transaction
/// starts the log over. The TRUNCATE stays for when readers keep the log in use, at
/// `4 × WAL_LIMIT`.
struct Checkpointer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::Thread,
}

const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
const WAL_LIMIT: u64 = 64 * 1024 * 1024;

impl Checkpointer {
    fn start(path: &Path, sync: Synchronous, catch_up: Arc<std::sync::atomic::AtomicBool>) -> Result<Self> {
        let conn = Connection::open(path).map_err(db_err)?;
        configure(&conn, sync).map_err(db_err)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let took = metrics::histogram!("boxoffice_db_checkpoint_duration_seconds");
                while !stopped.load(Ordering::Acquire) {
                    std::thread::park_timeout(CHECKPOINT_EVERY);
                    let started = Instant::now();
                    let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                    let large = size > 4 * WAL_LIMIT;
                    let mode = if large { "TRUNCATE" } else { "PASSIVE" };
                    match conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(())) {
                        Err(e) => tracing::warn!(error = %e, mode, "WAL checkpoint failed; trying again shortly"),
                        Ok(()) if large => metrics::counter!("boxoffice_db_wal_truncations_total").increment(1),
                        Ok(()) => {}
                    }
                    took.record(started.elapsed().as_secs_f64());
                    if size > WAL_LIMIT && !large {
                        catch_up.store(true, Ordering::Release);
                    }
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the SQLite checkpointer: {e}")))?;
        Ok(Self { stop, thread: handle.thread().clone() })
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Tests: keeps the writer busy with a write until the returned sender is used, so that the
/// writes queued meanwhile run as one batch. Returns once the busy write has started.
#[cfg(test)]
pub(crate) async fn occupy_writer(db: &Arc<Db>) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<Result<()>>) {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (running, is_running) = oneshot::channel::<()>();
    let blocker = tokio::spawn({
        let db = db.clone();
        async move {
            db.write(move |_| {
                let _ = running.send(());
                let _ = wait.recv();
                Ok(())
            })
            .await
        }
    });
    is_running.await.expect("the busy write started");
    (release, blocker)
}

impl Drop for Db {
    fn drop(&mut self) {
        // With the only sender gone, the writer finishes what was queued, then its thread ends
        // and the file is closed.
        let (dead, _) = std::sync::mpsc::channel();
        drop(std::mem::replace(&mut self.tx, dead));
        self.writer.wake_writer();
        self.checkpointer.stop();
    }
}

fn writer_loop(
    conn: Connection,
    inbox: Arc<Inbox>,
    rx: std::sync::mpsc::Receiver<Job>,
    hooks: Arc<Mutex<Vec<RollbackHook>>>,
    batches: Arc<AtomicUsize>,
    catch_up: Arc<std::sync::atomic::AtomicBool>,
) {
    let catch_up_seconds = metrics::histogram!("boxoffice_db_wal_catch_up_seconds");
    let batch_sizes = metrics::histogram!("boxoffice_db_commit_batch_size");
    let commit_seconds = metrics::histogram!("boxoffice_db_commit_duration_seconds");
    let wait = metrics::histogram!("boxoffice_db_pool_wait_seconds", "kind" => "write");
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while inbox.take(&rx, &mut batch) {
        // Writes whose callers gave up while they waited are dropped unrun.
        batch.retain(|j| j.claim.start());
        if batch.is_empty() {
            continue;
        }
        let started = Instant::now();
        for j in &batch {
            wait.record(started.duration_since(j.queued).as_secs_f64());
        }
        batch_sizes.record(batch.len() as f64);
        batches.fetch_add(1, Ordering::Relaxed);
        let answers = run_batch(&conn, &mut batch, &hooks);
        commit_seconds.record(started.elapsed().as_secs_f64());
        for (answer, outcome) in answers {
            answer(outcome);
        }
        // After the answers, so no write waits for it but the next batch (see Checkpointer).
        if catch_up.swap(false, Ordering::AcqRel) {
            let started = Instant::now();
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "the writer's WAL checkpoint failed; the checkpointer carries on");
            }
            catch_up_seconds.record(started.elapsed().as_secs_f64());
        }
    }
}

type Answer = Box<dyn FnOnce(Result<()>) + Send>;

/// Runs one batch in one transaction; returns how to answer each write.
fn run_batch(conn: &Connection, batch: &mut Vec<Job>, hooks: &Mutex<Vec<RollbackHook>>) -> Vec<(Answer, Result<()>)> {
    // Transaction control statements are prepared once and reused: parsing them for every
    // write cost more than the writes themselves.
    let exec = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map(|_| ()).map_err(db_err);
    if let Err(e) = exec("BEGIN IMMEDIATE") {
        return batch.drain(..).map(|j| ((j.run)(None).answer, Err(e.clone()))).collect();
    }
    let mut answers = Vec::with_capacity(batch.len());
    for job in batch.drain(..) {
        // Each write in its own savepoint, so a failing one takes back only its own changes.
        if let Err(e) = exec("SAVEPOINT w") {
            answers.push(((job.run)(None).answer, Err(e)));
            continue;
        }
        let ran = (job.run)(Some(conn));
        let outcome = if ran.ok { exec("RELEASE w") } else { exec("ROLLBACK TO w").and_then(|_| exec("RELEASE w")) };
        answers.push((ran.answer, outcome));
    }
    let committed = match exec("COMMIT") {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = exec("ROLLBACK");
            // Memory that mirrors what the batch wrote must forget it again.
            for hook in hooks.lock().iter() {
                hook(conn);
            }
            Err(e)
        }
    };
    answers.into_iter().map(|(a, own)| (a, committed.clone().and(own))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Code;

    fn open(dir: &tempfile::TempDir, opts: DbOptions) -> Arc<Db> {
        Arc::new(Db::open(&dir.path().join("t.db"), opts).unwrap())
    }

    async fn rows(db: &Db) -> Vec<i64> {
        db.read(|c| {
            let mut st = c.prepare("SELECT n FROM t ORDER BY n").map_err(db_err)?;
            let rows = st.query_map([], |r| r.get(0)).map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<i64>>>().map_err(db_err)
        })
        .await
        .unwrap()
    }

    /// Concurrent writes: a write that fails rolls back only itself, every caller hears its own
    /// result, and the in-flight count (the pool gauge) returns to zero.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_stay_independent_and_are_counted_out() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, DbOptions::default());
        db.write(|c| c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)").map_err(db_err)).await.unwrap();
        let writes = (0..400i64).map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |c| {
                    c.execute("INSERT INTO t (n) VALUES (?1)", [n]).map_err(db_err)?;
                    if n % 2 == 1 {
                        return Err(Error::new(Code::InvalidValue, "odd numbers are refused after inserting"));
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
                Err(e) => assert_eq!((e.code, n % 2), (Code::InvalidValue, 1)),
            }
        }
        let all = rows(&db).await;
        assert_eq!(all.len(), 200);
        assert!(all.iter().all(|n| n % 2 == 0), "a failed write's own insert was rolled back");
        assert_eq!(db.pool_stats().in_use, 0, "every finished write leaves the in-flight count");
    }

    /// Writes that arrive while the writer is busy share the next commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_waiting_together_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, DbOptions::default());
        db.write(|c| c.execute_batch("CREATE TABLE t (n INTEGER)").map_err(db_err)).await.unwrap();
        let (release, blocker) = occupy_writer(&db).await;
        let before = db.batches();
        let queued: Vec<_> = (0..100i64)
            .map(|n| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.write(move |c| c.execute("INSERT INTO t (n) VALUES (?1)", [n]).map_err(db_err)).await
                })
            })
            .collect();
        // Wait until all 100 are queued behind the blocker, then let it finish.
        while db.pool_stats().in_use < 101 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        for q in queued {
            assert_eq!(q.await.unwrap().unwrap(), 1);
        }
        assert_eq!(rows(&db).await.len(), 100);
        assert_eq!(db.batches() - before, 1, "the 100 waiting writes were committed as one batch");
    }

    /// A write that times out waiting for the writer is never applied later, so its 503 is true;
    /// one that has started is waited for.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timed_out_write_is_withdrawn_not_applied_later() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, DbOptions { timeout: Duration::from_millis(100), ..DbOptions::default() });
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
        assert_eq!(queued.unwrap_err().code, Code::DependencyUnavailable);
        release.send(()).unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), 1, "the started write finished and was reported");
        assert_eq!(rows(&db).await, vec![1], "the withdrawn write never ran");
        assert_eq!(db.pool_stats().in_use, 0);
    }

    /// When the batch's commit fails, nobody in it is told "done", and the rollback hooks run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_fails_every_write_of_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, DbOptions::default());
        db.write(|c| {
            c.execute_batch(
                "CREATE TABLE p (id INTEGER PRIMARY KEY); \
                 CREATE TABLE t (n INTEGER, p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)",
            )
            .map_err(db_err)
        })
        .await
        .unwrap();
        let hooked = Arc::new(AtomicUsize::new(0));
        let h = hooked.clone();
        db.on_rollback(Box::new(move |_| {
            h.fetch_add(1, Ordering::Relaxed);
        }));
        // A deferred foreign key fails only at COMMIT: the whole batch must fail with it.
        let r = db.write(|c| c.execute("INSERT INTO t (n, p) VALUES (1, 42)", []).map_err(db_err)).await;
        assert!(r.is_err(), "a write whose batch did not commit is not reported done");
        assert_eq!(hooked.load(Ordering::Relaxed), 1);
        assert!(rows(&db).await.is_empty());
        // The writer carries on.
        db.write(|c| c.execute("INSERT INTO t (n) VALUES (7)", []).map_err(db_err)).await.unwrap();
        assert_eq!(rows(&db).await, vec![7]);
    }

    #[test]
    fn the_chosen_durability_is_the_pragma_in_force() {
        let dir = tempfile::tempdir().unwrap();
        for (sync, want) in [(Synchronous::Full, 2), (Synchronous::Normal, 1)] {
            let path = dir.path().join(format!("{sync:?}.db"));
            let db = Db::open(&path, DbOptions { synchronous: sync, ..DbOptions::default() }).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let (writer, reader): (i64, i64) = rt.block_on(async {
                let w = db.write(|c| c.pragma_query_value(None, "synchronous", |r| r.get(0)).map_err(db_err)).await;
                let r = db.read(|c| c.pragma_query_value(None, "synchronous", |r| r.get(0)).map_err(db_err)).await;
                (w.unwrap(), r.unwrap())
            });
            assert_eq!((writer, reader), (want, want), "{sync:?}");
            let mode: String = rt
                .block_on(db.read(|c| c.pragma_query_value(None, "journal_mode", |r| r.get(0)).map_err(db_err)))
                .unwrap();
            assert_eq!(mode, "wal");
        }
    }
}
