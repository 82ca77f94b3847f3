//! A line's live controls: what the operator set (limits, pause, close) and what the inventory
//! allows, combined into what admission may do now. Pure rules; the store keeps the settings,
//! the app applies the outcome to the waiting room.

use super::{Code, ConcertId, Error, Millis};
use serde::{Deserialize, Serialize};

/// What an operator set for one concert's line. `None` means the server's start-up setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineSettings {
    pub max_active: Option<u64>,
    pub admission_rate: Option<f64>,
    pub paused: bool,
    pub closed: bool,
    /// When the on-sale starts: joins before it go to the pre-queue, drawn at this instant.
    pub on_sale_at: Option<Millis>,
}

/// One operator action on a line: only the fields given change.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LineChange {
    pub max_active: Option<u64>,
    pub admission_rate: Option<f64>,
    pub paused: Option<bool>,
    pub closed: Option<bool>,
    pub on_sale_at: Option<Millis>,
}

impl LineChange {
    pub fn is_empty(&self) -> bool {
        *self == LineChange::default()
    }

    /// The settings after this change.
    pub fn apply(&self, before: LineSettings) -> LineSettings {
        LineSettings {
            max_active: self.max_active.or(before.max_active),
            admission_rate: self.admission_rate.or(before.admission_rate),
            paused: self.paused.unwrap_or(before.paused),
            closed: self.closed.unwrap_or(before.closed),
            on_sale_at: self.on_sale_at.or(before.on_sale_at),
        }
    }

    /// The audit log's name for it: the one thing changed, or `change` for several.
    pub fn action(&self) -> &'static str {
        match (self.max_active, self.admission_rate, self.paused, self.closed, self.on_sale_at) {
            (None, None, Some(true), None, None) => "pause",
            (None, None, Some(false), None, None) => "resume",
            (None, None, None, Some(true), None) => "close",
            (None, None, None, Some(false), None) => "reopen",
            (Some(_), None, None, None, None) => "set_max_active",
            (None, Some(_), None, None, None) => "set_admission_rate",
            (None, None, None, None, Some(_)) => "schedule_on_sale",
            _ => "change",
        }
    }
}

/// A concert's seats, over all its dates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Not sold: free or held.
    pub unsold: u64,
    /// Free to hold now (available, or held by a hold that has run out).
    pub free: u64,
    /// When the first live hold runs out: when a seat may come back.
    pub next_release_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Closed {
    /// Every seat is sold.
    SoldOut,
    /// The operator closed the line.
    #[serde(rename = "LINE_CLOSED")]
    ByOperator,
}

impl Closed {
    /// The refusal of a new place in a closed line.
    pub fn refusal(self, concert: ConcertId) -> Error {
        match self {
            Closed::SoldOut => Error::new(Code::SoldOut, format!("every seat of concert {concert} is sold")),
            Closed::ByOperator => Error::new(Code::LineClosed, format!("the line of concert {concert} is closed")),
        }
    }

    /// The journal's end reason for the people it sent home.
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::SoldOut => "SOLD_OUT",
            Closed::ByOperator => "LINE_CLOSED",
        }
    }

    pub fn parse(s: &str) -> Option<Closed> {
        match s {
            "SOLD_OUT" => Some(Closed::SoldOut),
            "LINE_CLOSED" => Some(Closed::ByOperator),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Paused {
    /// The operator paused admission.
    #[serde(rename = "OPERATOR")]
    ByOperator,
    /// No seat is free, but holds are live: seats may come back when they run out.
    NoSeats,
}

/// What admission may do for one line now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outflow {
    /// The active limit, after the inventory cap.
    pub max_active: u64,
    pub rate: f64,
    pub paused: Option<Paused>,
    pub closed: Option<Closed>,
}

impl Outflow {
    /// The most people admission may have active: 0 while paused or closed.
    pub fn admission_cap(&self) -> u64 {
        if self.paused.is_some() || self.closed.is_some() {
            0
        } else {
            self.max_active
        }
    }
}

/// Combines the operator's settings, the server's defaults and the inventory. Sold out wins over
/// an operator close; an operator pause over the seats' own pause. The active limit never
/// exceeds `active_per_seat` people per unsold seat (rounded up), so admission cannot let in
/// far more people than there are seats left. No inventory (a concert without dates) caps
/// nothing.
pub fn outflow(
    settings: LineSettings,
    default_max_active: u64,
    default_rate: f64,
    inventory: Option<Inventory>,
    active_per_seat: f64,
) -> Outflow {
    let mut max_active = settings.max_active.unwrap_or(default_max_active);
    let mut closed = settings.closed.then_some(Closed::ByOperator);
    let mut paused = settings.paused.then_some(Paused::ByOperator);
    if let Some(inv) = inventory {
        if inv.unsold == 0 {
            closed = Some(Closed::SoldOut);
        } else if inv.free == 0 && paused.is_none() {
            paused = Some(Paused::NoSeats);
        }
        let cap = (inv.unsold as f64 * active_per_seat.max(0.0)).ceil().max(1.0) as u64;
        max_active = max_active.min(cap);
    }
    Outflow { max_active, rate: settings.admission_rate.unwrap_or(default_rate), paused, closed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(unsold: u64, free: u64) -> Option<Inventory> {
        Some(Inventory { unsold, free, next_release_at: None })
    }

    #[test]
    fn changes_only_what_is_given() {
        let before = LineSettings { max_active: Some(10), paused: true, ..Default::default() };
        let after = LineChange { admission_rate: Some(5.0), paused: Some(false), ..Default::default() }.apply(before);
        assert_eq!(after, LineSettings { max_active: Some(10), admission_rate: Some(5.0), ..Default::default() });
        assert_eq!(LineChange { paused: Some(true), ..Default::default() }.action(), "pause");
        assert_eq!(LineChange { closed: Some(false), ..Default::default() }.action(), "reopen");
        assert_eq!(LineChange { max_active: Some(3), paused: Some(true), ..Default::default() }.action(), "change");
    }

    #[test]
    fn the_inventory_caps_closes_and_pauses() {
        let s = LineSettings::default();
        let o = outflow(s, 1000, 50.0, inv(10, 4), 2.0);
        assert_eq!((o.max_active, o.rate, o.paused, o.closed), (20, 50.0, None, None));
        assert_eq!(outflow(s, 1000, 50.0, inv(3, 3), 0.5).max_active, 2, "rounded up");
        assert_eq!(outflow(s, 1000, 50.0, inv(1, 1), 0.1).max_active, 1, "one seat left admits someone");
        let none_free = outflow(s, 1000, 50.0, inv(5, 0), 2.0);
        assert_eq!((none_free.paused, none_free.admission_cap()), (Some(Paused::NoSeats), 0));
        let sold = outflow(s, 1000, 50.0, inv(0, 0), 2.0);
        assert_eq!((sold.closed, sold.paused, sold.admission_cap()), (Some(Closed::SoldOut), None, 0));
        assert_eq!(outflow(s, 7, 50.0, None, 2.0).max_active, 7, "no dates, no cap");
    }

    #[test]
    fn the_operator_overrides_the_defaults() {
        let s = LineSettings { max_active: Some(3), admission_rate: Some(1.5), paused: true, ..Default::default() };
        let o = outflow(s, 1000, 50.0, inv(100, 0), 2.0);
        assert_eq!((o.max_active, o.rate, o.paused), (3, 1.5, Some(Paused::ByOperator)));
        let closed = LineSettings { closed: true, ..s };
        assert_eq!(outflow(closed, 1000, 50.0, inv(100, 100), 2.0).closed, Some(Closed::ByOperator));
        assert_eq!(outflow(closed, 1000, 50.0, inv(0, 0), 2.0).closed, Some(Closed::SoldOut), "sold out wins");
        assert_eq!(outflow(closed, 1000, 50.0, inv(100, 100), 2.0).admission_cap(), 0);
    }
}
