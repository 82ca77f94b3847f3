//! Each instance's copy of every line's front, so that a status poll from someone waiting needs
//! no Redis round trip (issue 19). The token carries the place; the view carries how far
//! admission has got (`head`), the measured pace, and the places behind the head whose people
//! left. Every admission tick refreshes it from the tick script's own reply, so the copy is one
//! tick old at most (another instance's admissions and leaves show up at this instance's next
//! tick); the leavers come in that reply only when someone left since (a version that leave.lua
//! bumps), so a tick costs Redis the same however long the line. Whatever the view cannot answer
//! goes to Redis: a place at or before the head or within the margin of it (admitted, ended or
//! passed, or perhaps about to be: the first look claims the slot, a write), a place not issued or
//! from an earlier life of the line, a pre-queue token, a closed line, a view older than
//! `MAX_AGE` (Redis is down or slow: polls then answer 503 as before), or a place behind leavers
//! the view does not hold.

use crate::domain::ConcertId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Older than this, a view is not trusted: the ticks that refresh it are failing.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// Most leavers behind the head one tick reply carries; past it the line is polled in Redis.
pub const MAX_LEFT: usize = 10_000;

/// A line's front as one tick's reply gives it.
#[derive(Debug, Clone, Copy)]
pub struct Front {
    /// The last place admission reached (admitted, or passed because its person left).
    pub head: u64,
    /// Places issued so far: no token past it is from this line.
    pub issued: u64,
    /// The measured pace in thousandths per second, -1 before the first measurement.
    pub rate_milli: i64,
    /// The line was closed: its places all ended, so Redis answers.
    pub closed: bool,
    /// Which set of leavers this is (leave.lua bumps it).
    pub left_version: i64,
    /// The most people admission can let in before the view is too old to trust: people no
    /// further back than this are asked about in Redis, where they may be admitted already.
    pub margin: u64,
    pub at: Instant,
}

/// One line as the last tick saw it.
#[derive(Debug, Clone)]
struct LineView {
    front: Front,
    /// Places after the head whose people left, ascending.
    left: Vec<u64>,
    /// Every leaver before this place is in `left` (u64::MAX when the reply held them all; the
    /// last one held when it did not, 0 when they must be read again).
    known_below: u64,
    /// Places up to here belong to an earlier life of the line: Redis lost or rewound its data
    /// (head or places issued went back), so a token this low may be from before. Redis answers.
    floor: u64,
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
    /// The leavers' version this instance holds, to send with the next tick (None: send them).
    /// A line with more leavers than one reply holds keeps its version while it still holds
    /// most of them, so a long line is not read again every tick.
    pub fn left_version(&self, concert: ConcertId) -> Option<i64> {
        let lines = self.lines.read();
        let v = lines.get(&concert)?;
        let enough = v.known_below == u64::MAX || (v.known_below > 0 && v.left.len() >= MAX_LEFT / 2);
        enough.then_some(v.front.left_version)
    }

    /// Takes a tick's reply: the leavers when they changed, otherwise the ones held, less those
    /// the head has passed.
    pub fn refresh(&self, concert: ConcertId, front: Front, leavers: Option<Vec<u64>>) {
        let mut lines = self.lines.write();
        let old = lines.remove(&concert);
        let regressed = old.as_ref().is_some_and(|o| front.head < o.front.head || front.issued < o.front.issued);
        let mut floor = old.as_ref().map_or(0, |o| o.floor);
        if regressed {
            floor = floor.max(old.as_ref().map_or(0, |o| o.front.issued));
        }
        let (mut left, known_below) = match (leavers, old) {
            (Some(mut l), _) => {
                let known_below = if l.len() <= MAX_LEFT { u64::MAX } else { l[MAX_LEFT - 1] };
                l.truncate(MAX_LEFT);
                (l, known_below)
            }
            (None, Some(old)) if !regressed => (old.left, old.known_below),
            // Nothing held to go on (a version from an earlier life may match by chance).
            (None, _) => (Vec::new(), 0),
        };
        left.retain(|&s| s > front.head);
        left.sort_unstable();
        lines.insert(concert, LineView { front, left, known_below, floor });
    }

    /// Forgets the line until its next tick (it was closed, reopened or drawn here).
    pub fn forget(&self, concert: ConcertId) {
        self.lines.write().remove(&concert);
    }

    /// Someone left from `seq` through this instance: the people behind move up at once here.
    pub fn left(&self, concert: ConcertId, seq: u64) {
        if let Some(v) = self.lines.write().get_mut(&concert) {
            if seq > v.front.head {
                if let Err(i) = v.left.binary_search(&seq) {
                    v.left.insert(i, seq);
                }
            }
        }
    }

    pub fn look(&self, concert: ConcertId, seq: u64, now: Instant) -> Local {
        let lines = self.lines.read();
        let Some(v) = lines.get(&concert) else { return Local::Unknown };
        let f = &v.front;
        if seq == 0
            || seq <= f.head.max(v.floor)
            || seq > f.issued
            || seq >= v.known_below
            || f.closed
            || now.duration_since(f.at) > MAX_AGE
        {
            return Local::Unknown;
        }
        let ahead = v.left.partition_point(|&s| s < seq);
        if v.left.get(ahead) == Some(&seq) {
            // This person left (the token is over): Redis says so.
            return Local::Unknown;
        }
        let passed = f.head + ahead as u64;
        if seq - passed <= f.margin {
            return Local::Unknown;
        }
        Local::Waiting { passed, rate_milli: f.rate_milli }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concert() -> ConcertId {
        ConcertId::parse(1).unwrap()
    }

    fn front(head: u64, at: Instant) -> Front {
        Front { head, issued: 1_000_000, rate_milli: 2500, closed: false, left_version: 1, margin: 0, at }
    }

    #[test]
    fn counts_the_admitted_and_the_leavers_ahead() {
        let v = LineViews::default();
        let now = Instant::now();
        v.refresh(concert(), front(10, now), Some(vec![12, 15]));
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
        // Within the margin (admission may have reached them since the tick), Redis answers.
        v.refresh(concert(), Front { margin: 3, ..front(10, now) }, Some(vec![12, 15]));
        assert_eq!(v.look(concert(), 14, now), Local::Unknown, "position 3");
        assert_eq!(v.look(concert(), 16, now), Local::Waiting { passed: 12, rate_milli: 2500 }, "position 4");
        v.refresh(concert(), front(10, now), Some(vec![12, 15]));
        v.left(concert(), 18);
        // A tick with no new leavers keeps the ones held, less those the head passed.
        assert_eq!(v.left_version(concert()), Some(1));
        v.refresh(concert(), front(13, now), None);
        assert_eq!(v.look(concert(), 20, now), Local::Waiting { passed: 15, rate_milli: 2500 });
        assert_eq!(v.look(concert(), 14, now), Local::Waiting { passed: 13, rate_milli: 2500 });
        // New leavers replace the set.
        v.refresh(concert(), Front { left_version: 2, ..front(13, now) }, Some(vec![16]));
        assert_eq!(v.look(concert(), 20, now), Local::Waiting { passed: 14, rate_milli: 2500 });
        assert_eq!(v.left_version(concert()), Some(2));
    }

    #[test]
    fn stale_closed_incomplete_or_unknown_lines_go_to_redis() {
        let v = LineViews::default();
        let then = Instant::now();
        assert_eq!(v.look(concert(), 5, then), Local::Unknown);
        v.refresh(concert(), front(1, then), Some(vec![]));
        assert_eq!(v.look(concert(), 5, then + MAX_AGE + Duration::from_millis(1)), Local::Unknown);
        v.refresh(concert(), Front { closed: true, ..front(1, then) }, Some(vec![]));
        assert_eq!(v.look(concert(), 5, then), Local::Unknown);
        v.refresh(concert(), front(1, then), Some((2..=MAX_LEFT as u64 + 2).collect()));
        assert_eq!(v.look(concert(), MAX_LEFT as u64 + 10, then), Local::Unknown, "leavers ahead not all held");
        assert_eq!(v.look(concert(), 5, then), Local::Unknown, "a leaver");
        assert_eq!(v.left_version(concert()), Some(1), "most are held: not read again every tick");
        v.refresh(concert(), front(MAX_LEFT as u64 / 2 + 10, then), None);
        assert_eq!(v.left_version(concert()), None, "fewer than half held: read them again");
        v.refresh(concert(), front(1, then), Some(vec![]));
        v.forget(concert());
        assert_eq!(v.look(concert(), 5, then), Local::Unknown);
        // A line first seen with no leavers in the reply (its version already known elsewhere
        // cannot happen: a forgotten line sends no version) is not trusted.
        v.refresh(concert(), front(1, then), None);
        assert_eq!(v.look(concert(), 5, then), Local::Unknown);
    }

    /// Redis lost the line (flushed, or restored from an older copy): tokens from before must
    /// not read WAITING from the new line's figures.
    #[test]
    fn a_line_that_went_back_sends_its_old_places_to_redis() {
        let v = LineViews::default();
        let now = Instant::now();
        v.refresh(concert(), Front { issued: 50, ..front(10, now) }, Some(vec![]));
        assert_eq!(v.look(concert(), 40, now), Local::Waiting { passed: 10, rate_milli: 2500 });
        assert_eq!(v.look(concert(), 51, now), Local::Unknown, "not issued");
        v.refresh(concert(), Front { issued: 5, left_version: 0, ..front(0, now) }, None);
        assert_eq!(v.look(concert(), 40, now), Local::Unknown);
        assert_eq!(v.left_version(concert()), None, "the leavers are read again");
        v.refresh(concert(), Front { issued: 100, left_version: 0, ..front(0, now) }, Some(vec![]));
        assert_eq!(v.look(concert(), 40, now), Local::Unknown, "below the old line's places");
        assert_eq!(v.look(concert(), 70, now), Local::Waiting { passed: 0, rate_milli: 2500 });
    }
}
