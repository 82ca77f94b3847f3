//! Concerts and their dates change only when someone seeds, so they are cached and reloaded at
//! most every few seconds (or at once when an unknown id is asked for).

use crate::domain::error::Code;
use crate::domain::{ConcertId, Error, Result, ScheduleId};
use crate::store::{Concert, Schedule, Store};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAX_AGE: Duration = Duration::from_secs(5);

pub struct Catalog {
    pub concerts: Vec<Concert>,
    pub schedules: HashMap<ScheduleId, Schedule>,
    pub by_concert: HashMap<ConcertId, Vec<ScheduleId>>,
    loaded: Instant,
}

#[derive(Default)]
pub struct CatalogCache {
    current: RwLock<Option<Arc<Catalog>>>,
}

impl CatalogCache {
    pub async fn get(&self, store: &dyn Store) -> Result<Arc<Catalog>> {
        if let Some(c) = self.current.read().as_ref().filter(|c| c.loaded.elapsed() < MAX_AGE) {
            return Ok(c.clone());
        }
        self.reload(store).await
    }

    async fn reload(&self, store: &dyn Store) -> Result<Arc<Catalog>> {
        let concerts = store.concerts().await?;
        let list = store.schedules().await?;
        let mut by_concert: HashMap<ConcertId, Vec<ScheduleId>> = HashMap::new();
        for s in &list {
            by_concert.entry(s.concert).or_default().push(s.id);
        }
        let catalog = Arc::new(Catalog {
            concerts,
            schedules: list.into_iter().map(|s| (s.id, s)).collect(),
            by_concert,
            loaded: Instant::now(),
        });
        *self.current.write() = Some(catalog.clone());
        Ok(catalog)
    }

    /// Forgets the cached catalog: the next read loads it (a concert was just created).
    pub fn invalidate(&self) {
        *self.current.write() = None;
    }

    /// Looks up with one reload on a miss, so data seeded a moment ago is found.
    async fn find<T>(&self, store: &dyn Store, pick: impl Fn(&Catalog) -> Option<T>) -> Result<Option<T>> {
        let c = self.get(store).await?;
        if let Some(v) = pick(&c) {
            return Ok(Some(v));
        }
        if c.loaded.elapsed() < Duration::from_millis(200) {
            return Ok(None);
        }
        Ok(pick(&*self.reload(store).await?))
    }

    pub async fn concert(&self, store: &dyn Store, id: ConcertId) -> Result<Concert> {
        self.find(store, |c| c.concerts.iter().find(|x| x.id == id).cloned())
            .await?
            .ok_or_else(|| Error::new(Code::ConcertNotFound, format!("no concert {id}")))
    }

    pub async fn schedule(&self, store: &dyn Store, id: ScheduleId) -> Result<Schedule> {
        self.find(store, |c| c.schedules.get(&id).cloned())
            .await?
            .ok_or_else(|| Error::new(Code::ScheduleNotFound, format!("no schedule {id}")))
    }
}
