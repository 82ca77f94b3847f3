//! Notices between instances: the port, and its two kinds. When something changes that other
//! instances cache (a hold let go early, an operator's setting), the instance that made the
//! change publishes a notice and every instance hears it. Embedded: one process, so a notice
//! goes only to its own listeners. Scale-out: Redis pub/sub (`backends::scaleout::notices`).

use crate::domain::{ConcertId, Result, ScheduleId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// Seats of this date became free before their hold ran out: cached seat maps are stale.
    SeatsFreed { schedule: i64 },
    /// A concert's on-sale settings changed.
    ConcertChanged { concert: i64 },
    /// Notices may have been missed (the feed reconnected): drop every cache they keep right.
    Resync,
}

impl Notice {
    pub fn seats_freed(s: ScheduleId) -> Self {
        Notice::SeatsFreed { schedule: s.get() }
    }
    pub fn concert_changed(c: ConcertId) -> Self {
        Notice::ConcertChanged { concert: c.get() }
    }
}

#[async_trait]
pub trait Notices: Send + Sync + 'static {
    /// Tells every instance (this one included, eventually).
    async fn publish(&self, notice: Notice) -> Result<()>;
    /// Notices from every instance.
    fn subscribe(&self) -> broadcast::Receiver<Notice>;
}

/// One process: a notice reaches this process's listeners only.
pub struct Local(broadcast::Sender<Notice>);

impl Default for Local {
    fn default() -> Self {
        Self(broadcast::channel(1024).0)
    }
}

#[async_trait]
impl Notices for Local {
    async fn publish(&self, notice: Notice) -> Result<()> {
        let _ = self.0.send(notice);
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.0.subscribe()
    }
}
