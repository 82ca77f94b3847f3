//! Per-schedule seat snapshots, so seat lookups never touch the database.
//!
//! A snapshot holds the stored rows and the JSON answers built from them. Holds expire by the
//! clock alone, so a snapshot whose earliest hold has run out is rebuilt from its own rows; only a
//! write changes the rows, and every write through this process patches the snapshot in place.

use crate::domain::seat::SeatState;
use crate::domain::{Millis, ReservationId, Result, ScheduleId, SeatNo, SeatStatus, UserId};
use crate::store::{SeatRow, Store};
use bytes::Bytes;
use parking_lot::RwLock;
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct SeatMap {
    pub schedule: ScheduleId,
    pub available: u32,
    /// The JSON body of `GET /schedules/{id}/seats` and of its `?status=AVAILABLE` variant.
    pub all_json: Bytes,
    pub available_json: Bytes,
    /// The same two bodies gzipped, made by the first reader that accepts gzip: a snapshot is
    /// read many times between writes, so one compression serves all of them (a 500-seat map is
    /// ~30 KB of JSON and ~10 times smaller gzipped, and sending it was most of a lookup's cost).
    all_gzip: OnceLock<Bytes>,
    available_gzip: OnceLock<Bytes>,
    /// The snapshot's statuses are right until this instant (the earliest live hold's expiry).
    valid_until: Millis,
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatView {
    pub seat_no: i32,
    pub price: i64,
    pub status: SeatStatus,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatsView {
    pub schedule_id: i64,
    pub seats: Vec<SeatView>,
}

impl SeatMap {
    fn build(schedule: ScheduleId, rows: Vec<SeatRow>, now: Millis) -> Self {
        let rows = &rows;
        let mut views = Vec::with_capacity(rows.len());
        let mut valid_until = Millis(i64::MAX);
        for r in rows {
            let status = r.state.status(now);
            if let (SeatStatus::Held, SeatState::Held { until, .. }) = (status, r.state) {
                valid_until = valid_until.min(until);
            }
            views.push(SeatView { seat_no: r.seat_no.get(), price: r.price.get(), status });
        }
        let all = SeatsView { schedule_id: schedule.get(), seats: views };
        let available = SeatsView {
            schedule_id: schedule.get(),
            seats: all.seats.iter().filter(|s| s.status == SeatStatus::Available).copied().collect(),
        };
        Self {
            schedule,
            available: available.seats.len() as u32,
            all_json: Bytes::from(serde_json::to_vec(&all).expect("seat views serialise")),
            available_json: Bytes::from(serde_json::to_vec(&available).expect("seat views serialise")),
            all_gzip: OnceLock::new(),
            available_gzip: OnceLock::new(),
            valid_until,
        }
    }

    /// The JSON body, plain or gzipped.
    pub fn body(&self, only_available: bool, gzip: bool) -> Bytes {
        let (plain, packed) = if only_available {
            (&self.available_json, &self.available_gzip)
        } else {
            (&self.all_json, &self.all_gzip)
        };
        if gzip {
            packed.get_or_init(|| gzip_bytes(plain)).clone()
        } else {
            plain.clone()
        }
    }
}

fn gzip_bytes(plain: &[u8]) -> Bytes {
    // The fastest level: the JSON is repetitive, so it already shrinks ~10x, and a snapshot that
    // changes with every hold is compressed again after each one.
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(plain.len() / 8), flate2::Compression::fast());
    enc.write_all(plain).expect("writing to a Vec cannot fail");
    Bytes::from(enc.finish().expect("writing to a Vec cannot fail"))
}

#[derive(Default)]
struct Slot {
    /// Bumped by every write, so a load that raced with a write does not overwrite its patch.
    generation: u64,
    /// The stored rows as this process last knew them, patched by its own writes, and when they
    /// were loaded.
    rows: Option<(Arc<Vec<SeatRow>>, Instant)>,
    /// The answers built from `rows`; dropped by a write and rebuilt by the next read, so a burst
    /// of writes costs one rebuild, not one per write.
    built: Option<Arc<SeatMap>>,
}

#[derive(Default)]
pub struct SeatMaps {
    slots: RwLock<HashMap<ScheduleId, Slot>>,
    /// When other instances write to the same store, rows older than this are reloaded.
    max_age: Option<Duration>,
}

/// A change this process just committed to one seat.
#[derive(Debug, Clone, Copy)]
pub enum SeatChange {
    Held { until: Millis, reservation: ReservationId, holder: UserId },
    Sold,
    Released,
}

impl SeatMaps {
    pub fn new(max_age: Option<Duration>) -> Self {
        Self { slots: Default::default(), max_age }
    }

    pub async fn get(&self, store: &dyn Store, schedule: ScheduleId, now: Millis) -> Result<Arc<SeatMap>> {
        let fresh = |loaded: &Instant| self.max_age.is_none_or(|age| loaded.elapsed() < age);
        let (generation, rows) = {
            let slots = self.slots.read();
            match slots.get(&schedule) {
                Some(slot) => {
                    let rows = slot.rows.clone().filter(|(_, loaded)| fresh(loaded));
                    if let Some(map) = slot.built.as_ref().filter(|m| now < m.valid_until && rows.is_some()) {
                        return Ok(map.clone());
                    }
                    (slot.generation, rows)
                }
                None => (0, None),
            }
        };
        let rows = match rows {
            // Only the clock moved, or a write of ours patched the rows: no query needed.
            Some(rows) => rows,
            None => (Arc::new(store.seats(schedule).await?), Instant::now()),
        };
        let map = Arc::new(SeatMap::build(schedule, rows.0.as_ref().clone(), now));
        let mut slots = self.slots.write();
        let slot = slots.entry(schedule).or_default();
        if slot.generation == generation {
            slot.rows = Some(rows);
            slot.built = Some(map.clone());
        }
        Ok(map)
    }

    /// Applies a committed write to the rows (if loaded); the answers are rebuilt on the next read.
    pub fn apply(&self, schedule: ScheduleId, seat: SeatNo, change: SeatChange) {
        let mut slots = self.slots.write();
        let slot = slots.entry(schedule).or_default();
        slot.generation += 1;
        slot.built = None;
        let Some((rows, _)) = slot.rows.as_mut() else { return };
        if let Some(row) = Arc::make_mut(rows).iter_mut().find(|r| r.seat_no == seat) {
            row.state = match change {
                SeatChange::Held { until, reservation, holder } => {
                    SeatState::Held { until, reservation, holder: Some(holder) }
                }
                SeatChange::Sold => SeatState::Sold,
                SeatChange::Released => SeatState::Available,
            };
        }
    }

    /// True when the rows this process holds show the seat sold, or held beyond `now`. Sold is
    /// final; a hold ends early only by a sale or by its holder's release, and a release (on
    /// any instance) drops this snapshot at once (`invalidate`, through the change feed). So
    /// the answer is the store's, and a hold on such a seat can be refused without a database
    /// write. Unknown rows say false: ask the store.
    pub fn known_taken(&self, schedule: ScheduleId, seat: SeatNo, user: UserId, now: Millis) -> bool {
        let slots = self.slots.read();
        let Some((rows, _)) = slots.get(&schedule).and_then(|s| s.rows.as_ref()) else { return false };
        // Rows are loaded ordered by seat number, 1..N.
        let row = rows.get(seat.get() as usize - 1).filter(|r| r.seat_no == seat);
        row.is_some_and(|r| r.state.taken_from(user, now))
    }

    /// Drops every snapshot (notices may have been missed).
    pub fn invalidate_all(&self) {
        let schedules: Vec<ScheduleId> = self.slots.read().keys().copied().collect();
        for s in schedules {
            self.invalidate(s);
        }
    }

    /// Drops a snapshot so the next read loads it from the store.
    pub fn invalidate(&self, schedule: ScheduleId) {
        let mut slots = self.slots.write();
        let slot = slots.entry(schedule).or_default();
        slot.generation += 1;
        slot.rows = None;
        slot.built = None;
    }
}
