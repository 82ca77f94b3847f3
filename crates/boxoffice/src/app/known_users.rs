//! Which user ids exist, kept in memory so that a join costs no database read. Users are only
//! ever added (by seeding), never removed, so a yes is final: the set is loaded once at start as
//! ranges of ids, and an id it does not know is asked of the store (and remembered when found,
//! so users seeded later are picked up on their first join).

use crate::domain::{Result, UserId};
use crate::store::Store;
use parking_lot::RwLock;
use roaring::RoaringTreemap;

#[derive(Default)]
pub struct KnownUsers {
    ids: RwLock<RoaringTreemap>,
}

impl KnownUsers {
    /// Loads every existing id; a failure leaves the set empty (each join then asks the store).
    pub async fn load(&self, store: &dyn Store) -> Result<u64> {
        let mut set = RoaringTreemap::new();
        for (first, last) in store.user_id_ranges().await? {
            set.insert_range(first.get() as u64..=last.get() as u64);
        }
        let n = set.len();
        *self.ids.write() = set;
        Ok(n)
    }

    pub async fn exists(&self, store: &dyn Store, user: UserId) -> Result<bool> {
        if self.ids.read().contains(user.get() as u64) {
            return Ok(true);
        }
        let found = store.user_exists(user).await?;
        if found {
            self.ids.write().insert(user.get() as u64);
        }
        Ok(found)
    }
}
