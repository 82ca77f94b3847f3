//! Each line's live state as this instance knows it: the operator's settings and the concert's
//! inventory, refreshed from the store (`App::refresh_lines`, at least twice a second and on every
//! operator change) and adjusted at once by this instance's own holds, releases and sales. From
//! them `domain::line_controls::outflow` decides what admission may do.

use crate::domain::line_controls::{outflow, Closed, Inventory, LineSettings, Outflow};
use crate::domain::{ConcertId, Millis};
use crate::queue::{Limits, LineLimits};
use crate::store::DrawSeed;
use parking_lot::RwLock;
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
struct LineState {
    settings: LineSettings,
    inventory: Option<Inventory>,
    /// The close last applied to the waiting room, so each change is applied once.
    applied: Option<Closed>,
    /// The on-sale draw's seed, once an on-sale is set.
    seed: Option<DrawSeed>,
    /// The waiting room said the draw has run.
    drawn: bool,
}

pub struct Lines {
    default_max_active: u64,
    active_per_seat: f64,
    state: RwLock<HashMap<ConcertId, LineState>>,
}

/// A line whose closed state changed and must be applied to the waiting room.
pub type Transition = (ConcertId, Option<Closed>);

impl Lines {
    pub fn new(default_max_active: u64, active_per_seat: f64) -> Self {
        Self { default_max_active, active_per_seat, state: RwLock::new(HashMap::new()) }
    }

    pub fn active_per_seat(&self) -> f64 {
        self.active_per_seat
    }

    pub fn outflow(&self, concert: ConcertId, default_rate: f64) -> Outflow {
        let st = self.state.read().get(&concert).cloned().unwrap_or_default();
        self.outflow_of(&st, default_rate)
    }

    fn outflow_of(&self, st: &LineState, default_rate: f64) -> Outflow {
        outflow(st.settings, self.default_max_active, default_rate, st.inventory, self.active_per_seat)
    }

    pub fn all(&self, default_rate: f64) -> Vec<(ConcertId, Outflow, Option<Inventory>)> {
        self.state.read().iter().map(|(c, st)| (*c, self.outflow_of(st, default_rate), st.inventory)).collect()
    }

    /// What the operator set, as last read (the defaults for a line without settings).
    pub fn settings(&self, concert: ConcertId) -> LineSettings {
        self.state.read().get(&concert).map(|s| s.settings).unwrap_or_default()
    }

    /// When the line's on-sale starts, if one is set.
    pub fn on_sale_at(&self, concert: ConcertId) -> Option<Millis> {
        self.state.read().get(&concert).and_then(|s| s.settings.on_sale_at)
    }

    /// The published commitment of the line's draw seed.
    pub fn commitment(&self, concert: ConcertId) -> Option<String> {
        self.state.read().get(&concert).and_then(|s| s.seed.as_ref().map(|d| d.commitment.clone()))
    }

    /// The seed, to publish once the draw has run.
    pub fn seed(&self, concert: ConcertId) -> Option<String> {
        self.state.read().get(&concert).and_then(|s| s.seed.as_ref().map(|d| d.seed.clone()))
    }

    /// Lines whose on-sale has started and whose draw this instance has not seen run, with seeds.
    pub fn due_draws(&self, now: Millis) -> Vec<(ConcertId, String)> {
        self.state
            .read()
            .iter()
            .filter(|(_, s)| !s.drawn && s.settings.on_sale_at.is_some_and(|t| t <= now))
            .filter_map(|(c, s)| s.seed.as_ref().map(|d| (*c, d.seed.clone())))
            .collect()
    }

    /// Whether this instance has seen the line's draw run.
    pub fn is_drawn(&self, concert: ConcertId) -> bool {
        self.state.read().get(&concert).is_some_and(|s| s.drawn)
    }

    pub fn mark_drawn(&self, concert: ConcertId) {
        self.state.write().entry(concert).or_default().drawn = true;
    }

    pub fn inventory(&self, concert: ConcertId) -> Option<Inventory> {
        self.state.read().get(&concert).and_then(|s| s.inventory)
    }

    /// Every line's limits for an admission tick.
    pub fn limits(&self, default_rate: f64) -> LineLimits {
        let lines = self
            .state
            .read()
            .iter()
            .map(|(c, st)| {
                let o = self.outflow_of(st, default_rate);
                (*c, Limits { max_active: o.max_active, rate: o.rate, admit: o.admission_cap() > 0 })
            })
            .collect();
        LineLimits { default: Limits { max_active: self.default_max_active, rate: default_rate, admit: true }, lines }
    }

    /// Replaces what the store says; lines it no longer mentions keep only what was applied.
    pub fn replace(
        &self,
        settings: Vec<(ConcertId, LineSettings)>,
        inventory: Vec<(ConcertId, Inventory)>,
        seeds: Vec<(ConcertId, DrawSeed)>,
    ) {
        let mut state = self.state.write();
        for (c, seed) in seeds {
            state.entry(c).or_default().seed = Some(seed);
        }
        for st in state.values_mut() {
            st.settings = LineSettings::default();
            st.inventory = None;
        }
        for (c, s) in settings {
            state.entry(c).or_default().settings = s;
        }
        for (c, inv) in inventory {
            state.entry(c).or_default().inventory = Some(inv);
        }
    }

    /// Lines whose closed state differs from what the waiting room was last told; each is
    /// reported once (it counts as applied from here on).
    pub fn transitions(&self, default_rate: f64) -> Vec<Transition> {
        let mut state = self.state.write();
        let mut out = Vec::new();
        for (c, st) in state.iter_mut() {
            let closed = self.outflow_of(st, default_rate).closed;
            if closed != st.applied {
                st.applied = closed;
                out.push((*c, closed));
            }
        }
        out
    }

    /// A close that could not be applied is tried again at the next refresh.
    pub fn unapply(&self, concert: ConcertId) {
        if let Some(st) = self.state.write().get_mut(&concert) {
            st.applied = None;
        }
    }

    fn adjust(&self, concert: ConcertId, f: impl FnOnce(&mut Inventory)) {
        if let Some(inv) = self.state.write().get_mut(&concert).and_then(|s| s.inventory.as_mut()) {
            f(inv);
        }
    }

    /// This instance held `n` seats until `until`: they are not free until the next refresh
    /// says otherwise, and may come back when the hold runs out.
    pub fn held(&self, concert: ConcertId, n: u64, until: Millis) {
        self.adjust(concert, |i| {
            i.free = i.free.saturating_sub(n);
            i.next_release_at = Some(i.next_release_at.map_or(until, |t| t.min(until)));
        });
    }

    pub fn released(&self, concert: ConcertId, n: u64) {
        self.adjust(concert, |i| i.free = (i.free + n).min(i.unsold));
    }

    pub fn sold(&self, concert: ConcertId, n: u64) {
        self.adjust(concert, |i| {
            i.unsold = i.unsold.saturating_sub(n);
            i.free = i.free.min(i.unsold);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::line_controls::Paused;

    #[test]
    fn local_sales_close_the_line_once() {
        let lines = Lines::new(100, 2.0);
        let c = ConcertId::from_trusted(1);
        lines.replace(vec![], vec![(c, Inventory { unsold: 2, free: 2, next_release_at: None })], vec![]);
        assert!(lines.transitions(10.0).is_empty());
        assert_eq!(lines.limits(10.0).of(c), Limits { max_active: 4, rate: 10.0, admit: true });
        lines.held(c, 2, Millis(5));
        assert_eq!(lines.inventory(c).unwrap().next_release_at, Some(Millis(5)));
        assert_eq!(lines.outflow(c, 10.0).paused, Some(Paused::NoSeats));
        assert!(!lines.limits(10.0).of(c).admit);
        lines.sold(c, 2);
        assert_eq!(lines.transitions(10.0), vec![(c, Some(Closed::SoldOut))]);
        assert!(lines.transitions(10.0).is_empty(), "reported once");
        let other = ConcertId::from_trusted(2);
        assert_eq!(lines.limits(10.0).of(other), Limits { max_active: 100, rate: 10.0, admit: true });
    }
}
