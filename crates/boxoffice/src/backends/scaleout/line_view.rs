//! Each instance's copy of every line's front, so that a status poll from someone waiting needs
//! no Redis round trip (issue 19). The token carries the place; the view carries how far
//! admission has got (`head`), the measured pace, and the places behind the head whose people
//! left. Every admission tick refreshes it from the tick script's own reply, so the copy is one
//! tick old at most (another instance's admissions and leaves show up at this instance's next
//! tick). Whatever the view cannot answer for certain goes to Redis: a place at or before the
//! head (admitted, ended or passed: the first look claims the slot, a write), a pre-queue token,
//! a closed line, a view older than `MAX_AGE` (Redis is down or slow: polls then answer 503 as
//! before), or a line whose leavers did not fit in one reply.

use crate::domain::ConcertId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Older than this, a view is not trusted: the ticks that refresh it are failing.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// Most leavers behind the head one tick reply carries; past it the line is polled in Redis.
pub const MAX_LEFT: usize = 10_000;

/// One line as the last tick saw it.
#[derive(Debug, Clone)]
pub struct LineView {
    /// The last place admission reached (admitted, or passed because its person left).
    pub head: u64,
    /// The measured pace in thousandths per second, -1 before the first measurement.
    pub rate_milli: i64,
    /// Places after the head whose people left, ascending.
    pub left: Vec<u64>,
    /// The line was closed: its places all ended, so Redis answers.
    pub closed: bool,
    /// False when the leavers did not fit in the reply.
    pub complete: bool,
    pub at: Instant,
}

/// What the view says of a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// Still waiting: this many places ahead have been admitted or left (status.lua's `head`).
    Waiting { passed: u64, rate_milli: i64 },
    /// The view cannot tell: ask Redis.
    Unknown,
}

#[derive(Default)]
pub struct LineViews {
    lines: parking_lot::RwLock<HashMap<ConcertId, LineView>>,
}

impl LineViews {
    pub fn replace(&self, concert: ConcertId, view: LineView) {
        self.lines.write().insert(concert, view);
    }

    /// Forgets the line until its next tick (it was closed, reopened or drawn here).
    pub fn forget(&self, concert: ConcertId) {
        self.lines.write().remove(&concert);
    }

    /// Someone left from `seq` through this instance: the people behind move up at once here.
    pub fn left(&self, concert: ConcertId, seq: u64) {
        if let Some(v) = self.lines.write().get_mut(&concert) {
            if seq > v.head {
                if let Err(i) = v.left.binary_search(&seq) {
                    v.left.insert(i, seq);
                }
            }
        }
    }

    pub fn look(&self, concert: ConcertId, seq: u64, now: Instant) -> Local {
        let lines = self.lines.read();
        let Some(v) = lines.get(&concert) else { return Local::Unknown };
        if seq == 0 || seq <= v.head || v.closed || !v.complete || now.duration_since(v.at) > MAX_AGE {
            return Local::Unknown;
        }
        let ahead = v.left.partition_point(|&s| s < seq);
        if v.left.get(ahead) == Some(&seq) {
            // This person left (the token is over): Redis says so.
            return Local::Unknown;
        }
        Local::Waiting { passed: v.head + ahead as u64, rate_milli: v.rate_milli }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concert() -> ConcertId {
        ConcertId::parse(1).unwrap()
    }

    fn view(head: u64, left: Vec<u64>, at: Instant) -> LineView {
        LineView { head, rate_milli: 2500, left, closed: false, complete: true, at }
    }

    #[test]
    fn counts_the_admitted_and_the_leavers_ahead() {
        let v = LineViews::default();
        let now = Instant::now();
        v.replace(concert(), view(10, vec![12, 15], now));
        assert_eq!(v.look(concert(), 11, now), Local::Waiting { passed: 10, rate_milli: 2500 });
        assert_eq!(v.look(concert(), 13, now), Local::Waiting { passed: 11, rate_milli: 2500 });
        assert_eq!(v.look(concert(), 20, now), Local::Waiting { passed: 12, rate_milli: 2500 });
        // A leaver's own token, and someone at or before the head, are Redis's to answer.
        assert_eq!(v.look(concert(), 12, now), Local::Unknown);
        assert_eq!(v.look(concert(), 10, now), Local::Unknown);
        assert_eq!(v.look(concert(), 0, now), Local::Unknown);
        v.left(concert(), 18);
        assert_eq!(v.look(concert(), 20, now), Local::Waiting { passed: 13, rate_milli: 2500 });
        assert_eq!(v.look(concert(), 18, now), Local::Unknown);
    }

    #[test]
    fn stale_closed_incomplete_or_unknown_lines_go_to_redis() {
        let v = LineViews::default();
        let then = Instant::now();
        assert_eq!(v.look(concert(), 5, then), Local::Unknown);
        v.replace(concert(), view(1, vec![], then));
        assert_eq!(v.look(concert(), 5, then + MAX_AGE + Duration::from_millis(1)), Local::Unknown);
        v.replace(concert(), LineView { closed: true, ..view(1, vec![], then) });
        assert_eq!(v.look(concert(), 5, then), Local::Unknown);
        v.replace(concert(), LineView { complete: false, ..view(1, vec![], then) });
        assert_eq!(v.look(concert(), 5, then), Local::Unknown);
        v.replace(concert(), view(1, vec![], then));
        v.forget(concert());
        assert_eq!(v.look(concert(), 5, then), Local::Unknown);
    }
}
