//! Per-schedule seat snapshots, so seat lookups never touch the database.
//!
//! A snapshot holds the stored rows and the JSON answers built from them. Holds expire by the
//! clock alone, so a snapshot whose earliest hold has run out is rebuilt from its own rows; only a
//! write changes the rows, and every write through this process patches the snapshot in place.

use crate::domain::{Millis, Result, ScheduleId, SeatNo, SeatStatus};
use crate::store::{SeatRow, Store};
use bytes::Bytes;
use parking_lot::RwLock;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug)]
pub struct SeatMap {
    pub schedule: ScheduleId,
    rows: Vec<SeatRow>,
    pub available: u32,
    /// The JSON body of `GET /schedules/{id}/seats` and of its `?status=AVAILABLE` variant.
    pub all_json: Bytes,
    pub available_json: Bytes,
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
        let mut views = Vec::with_capacity(rows.len());
        let mut valid_until = Millis(i64::MAX);
        for r in &rows {
            let status = SeatStatus::effective(r.sold, r.held_until, now);
            if let (SeatStatus::Held, Some(until)) = (status, r.held_until) {
                valid_until = valid_until.min(until);
            }
            views.push(SeatView {
                seat_no: r.seat_no.get(),
                price: r.price.get(),
                status,
            });
        }
        let all = SeatsView {
            schedule_id: schedule.get(),
            seats: views,
        };
        let available = SeatsView {
            schedule_id: schedule.get(),
            seats: all
                .seats
                .iter()
                .filter(|s| s.status == SeatStatus::Available)
                .copied()
                .collect(),
        };
        Self {
            schedule,
            available: available.seats.len() as u32,
            all_json: Bytes::from(serde_json::to_vec(&all).expect("seat views serialise")),
            available_json: Bytes::from(
                serde_json::to_vec(&available).expect("seat views serialise"),
            ),
            rows,
            valid_until,
        }
    }
}

#[derive(Default)]
struct Slot {
    /// Bumped by every write, so a load that raced with a write does not overwrite its patch.
    generation: u64,
    map: Option<Arc<SeatMap>>,
}

#[derive(Default)]
pub struct SeatMaps {
    slots: RwLock<HashMap<ScheduleId, Slot>>,
}

/// A change this process just committed to one seat.
#[derive(Debug, Clone, Copy)]
pub enum SeatChange {
    Held { until: Millis },
    Sold,
}

impl SeatMaps {
    pub async fn get(
        &self,
        store: &dyn Store,
        schedule: ScheduleId,
        now: Millis,
    ) -> Result<Arc<SeatMap>> {
        let generation = {
            let slots = self.slots.read();
            let slot = slots.get(&schedule);
            if let Some(map) = slot.and_then(|s| s.map.as_ref()) {
                if now < map.valid_until {
                    return Ok(map.clone());
                }
            }
            slot.map_or(0, |s| s.generation)
        };
        let stale_rows = self
            .slots
            .read()
            .get(&schedule)
            .and_then(|s| s.map.as_ref().map(|m| m.rows.clone()));
        let rows = match stale_rows {
            // Only the clock moved: rebuild from the rows we have.
            Some(rows) => rows,
            None => store.seats(schedule).await?,
        };
        let map = Arc::new(SeatMap::build(schedule, rows, now));
        let mut slots = self.slots.write();
        let slot = slots.entry(schedule).or_default();
        if slot.generation == generation {
            slot.map = Some(map.clone());
        }
        Ok(map)
    }

    /// Applies a committed write to the snapshot (if one is loaded).
    pub fn apply(&self, schedule: ScheduleId, seat: SeatNo, change: SeatChange, now: Millis) {
        let mut slots = self.slots.write();
        let slot = slots.entry(schedule).or_default();
        slot.generation += 1;
        let Some(old) = slot.map.take() else { return };
        let mut rows = old.rows.clone();
        if let Some(row) = rows.iter_mut().find(|r| r.seat_no == seat) {
            match change {
                SeatChange::Held { until } => row.held_until = Some(until),
                SeatChange::Sold => {
                    row.sold = true;
                    row.held_until = None;
                }
            }
        }
        slot.map = Some(Arc::new(SeatMap::build(schedule, rows, now)));
    }

    /// Drops a snapshot so the next read loads it from the store.
    pub fn invalidate(&self, schedule: ScheduleId) {
        let mut slots = self.slots.write();
        let slot = slots.entry(schedule).or_default();
        slot.generation += 1;
        slot.map = None;
    }
}
