//! The backends, one folder per deployment mode, picked as a pair from the URLs given:
//! `embedded` (SQLite + in-process waiting room) or `scaleout` (PostgreSQL + Redis).

pub mod embedded;
pub mod scaleout;

use crate::audit::AuditReport;
use crate::cli::{RedisArgs, StoreArgs};
use crate::domain::Millis;
use crate::queue::{QueueConfig, WaitingRoom};
use crate::store::Store;
use anyhow::{bail, Context};
use embedded::{DbOptions, SqliteStore};
use scaleout::{PgStore, RedisQueue};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Backends {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn WaitingRoom>,
    pub notices: Arc<dyn crate::notices::Notices>,
    /// True when other instances may write to the same store.
    pub shared: bool,
}

enum StoreUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

fn store_url(args: &StoreArgs) -> anyhow::Result<StoreUrl> {
    match &args.database_url {
        None => Ok(StoreUrl::Sqlite(args.data_dir.join("boxoffice.db"))),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(StoreUrl::Postgres(url.clone()))
        }
        Some(url) => SqliteStore::path_from_url(url)
            .map(|p| StoreUrl::Sqlite(p.to_owned()))
            .with_context(|| format!("--database-url {url:?} is neither a sqlite:// nor a postgres:// URL")),
    }
}

fn sqlite_options(args: &StoreArgs) -> DbOptions {
    DbOptions {
        read_connections: args.db_pool_size.unwrap_or(4).max(1),
        timeout: args.db_timeout,
        write_queue: args.db_write_queue,
        synchronous: args.sqlite_synchronous,
    }
}

fn open_sqlite(path: &Path, args: &StoreArgs) -> anyhow::Result<Arc<SqliteStore>> {
    let store = SqliteStore::open(path, sqlite_options(args));
    Ok(Arc::new(store.map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?))
}

async fn open_postgres(url: &str, args: &StoreArgs) -> anyhow::Result<Arc<PgStore>> {
    let pool = args.db_pool_size.unwrap_or(16) as u32;
    Ok(Arc::new(
        PgStore::connect(url, pool, args.db_timeout, args.pgbouncer)
            .await
            .map_err(|e| anyhow::anyhow!("PostgreSQL: {e}"))?,
    ))
}

/// The embedded store's file, when the URLs pick the embedded mode.
pub fn embedded_db_path(args: &StoreArgs) -> anyhow::Result<Option<PathBuf>> {
    Ok(match store_url(args)? {
        StoreUrl::Sqlite(path) => Some(path),
        StoreUrl::Postgres(_) => None,
    })
}

/// The store alone, for `migrate`, `seed` and `audit`. Opening applies pending migrations.
pub async fn open_store(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match store_url(args)? {
        StoreUrl::Sqlite(path) => open_sqlite(&path, args)?,
        StoreUrl::Postgres(url) => open_postgres(&url, args).await?,
    })
}

/// The store and the waiting room, picked from the URLs: SQLite with the in-process waiting room
/// (embedded), or PostgreSQL with Redis (scale-out). Mixed pairs are refused: instances sharing a
/// PostgreSQL store must share one line, and a Redis line in front of a private SQLite file would
/// not be shared by anything.
pub async fn open_backends(args: &StoreArgs, redis: &RedisArgs, queue: QueueConfig) -> anyhow::Result<Backends> {
    match (store_url(args)?, &redis.redis_url) {
        (StoreUrl::Sqlite(path), None) => {
            let (store, room) = embedded::open(&path, sqlite_options(args), queue)
                .await
                .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
            Ok(Backends {
                store,
                queue: Arc::new(room),
                notices: Arc::new(crate::notices::Local::default()),
                shared: false,
            })
        }
        (StoreUrl::Postgres(url), Some(redis_url)) => {
            let store = open_postgres(&url, args).await?;
            let room = RedisQueue::connect(redis_url, &redis.redis_prefix, queue, redis.redis_timeout)
                .await
                .map_err(|e| anyhow::anyhow!("Redis: {e}"))?;
            let notices = scaleout::RedisNotices::start(redis_url, &redis.redis_prefix, redis.redis_timeout)
                .map_err(|e| anyhow::anyhow!("Redis: {e}"))?;
            Ok(Backends { store, queue: Arc::new(room), notices: Arc::new(notices), shared: true })
        }
        (StoreUrl::Postgres(_), None) => {
            bail!("a postgres:// store needs --redis-url: instances that share the store must share one waiting room")
        }
        (StoreUrl::Sqlite(_), Some(_)) => {
            bail!("--redis-url needs a postgres:// --database-url: the scale-out mode is PostgreSQL + Redis")
        }
    }
}

/// Every invariant both backends can see: the store's, then the waiting room's own.
pub async fn audit(args: &StoreArgs, redis: &RedisArgs) -> anyhow::Result<AuditReport> {
    let store = open_store(args).await?;
    let mut report = store.audit(Millis::now()).await.map_err(anyhow::Error::msg)?;
    if let Some(url) = &redis.redis_url {
        // Only the queue's own checks are needed, so its admission settings do not matter here.
        let cfg = QueueConfig {
            max_active: 1,
            admission_rate: 1.0,
            claim_window: Default::default(),
            active_ttl: Default::default(),
        };
        let room = RedisQueue::connect(url, &redis.redis_prefix, cfg, redis.redis_timeout)
            .await
            .map_err(|e| anyhow::anyhow!("Redis: {e}"))?;
        report.extend(room.audit().await.map_err(anyhow::Error::msg)?);
    }
    Ok(report)
}
