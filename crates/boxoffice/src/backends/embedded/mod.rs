//! The embedded mode: everything it needs, in one SQLite file. The store, the in-process waiting
//! room and its journal share one writer thread that commits in groups (`db.rs`).

mod audit;
pub mod backup;
pub mod db;
mod line;
mod migrate;
mod seed;
mod sqlite_error;
mod store;
mod waiting_room;

pub use db::{DbOptions, Synchronous};
pub use store::SqliteStore;
pub use waiting_room::EmbeddedWaitingRoom;

use crate::domain::Result;
use crate::queue::QueueConfig;
use std::path::Path;
use std::sync::Arc;

/// The store and the waiting room on one database file.
pub async fn open(path: &Path, opts: DbOptions, queue: QueueConfig) -> Result<(Arc<SqliteStore>, EmbeddedWaitingRoom)> {
    let store = Arc::new(SqliteStore::open(path, opts)?);
    let room = EmbeddedWaitingRoom::open(queue, store.db.clone()).await?;
    Ok((store, room))
}
