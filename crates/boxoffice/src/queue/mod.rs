//! The waiting room: the port and its backends. Tokens are signed here (`token`), independently
//! of where the queue lives.

pub mod token;

use crate::audit::AuditCheck;
use crate::domain::line_controls::Closed;
use crate::domain::{ConcertId, Millis, Result, UserId};
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::Duration;

/// What a verified token says: who, for which concert, and which place in line it was issued.
/// A token from the pre-queue has place 0: the backend finds the place the draw gave its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket {
    pub concert: ConcertId,
    pub user: UserId,
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Joined before the on-sale: no place until the draw.
    PreQueue,
    Waiting {
        position: u64,
        eta_seconds: u64,
        retry_after: u64,
    },
    Active {
        until: Millis,
    },
    Expired,
    /// The line was closed (sold out, or by the operator) while this person was in it. The
    /// queue backends answer `Expired`; the app knows why and says so.
    Closed(Closed),
}

impl Standing {
    /// The place in line, while waiting.
    pub fn position(&self) -> Option<u64> {
        match self {
            Standing::Waiting { position, .. } => Some(*position),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    pub ticket: Ticket,
    pub standing: Standing,
    /// False when the user already had a live place in this line and got it back.
    pub created: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// Most users ACTIVE at once, per concert.
    pub max_active: u64,
    /// Admissions per second, per concert (the ceiling when admission is adaptive); also the
    /// pace ETAs assume before one is measured.
    pub admission_rate: f64,
    /// How long an admitted user has to show up before the slot goes to the next person.
    pub claim_window: Duration,
    /// How long an ACTIVE token lasts from admission.
    pub active_ttl: Duration,
}

/// What admission may do in one line now (`domain::line_controls::Outflow`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Most people active at once.
    pub max_active: u64,
    pub rate: f64,
    /// False while admission is paused or the line closed: nobody is admitted.
    pub admit: bool,
}

impl Limits {
    /// Free slots with `live` people active.
    pub fn free(&self, live: u64) -> u64 {
        if self.admit {
            self.max_active.saturating_sub(live)
        } else {
            0
        }
    }
}

/// The limits of every line, for one admission tick.
#[derive(Debug, Clone, PartialEq)]
pub struct LineLimits {
    /// For a line with no entry of its own.
    pub default: Limits,
    pub lines: HashMap<ConcertId, Limits>,
}

impl LineLimits {
    /// The same limits for every line.
    pub fn uniform(default: Limits) -> Self {
        Self { default, lines: HashMap::new() }
    }

    pub fn of(&self, concert: ConcertId) -> Limits {
        self.lines.get(&concert).copied().unwrap_or(self.default)
    }
}

/// One room's figures, for metrics and the admission log.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RoomStats {
    pub concert: i64,
    pub waiting: u64,
    pub active: u64,
    pub max_active: u64,
    /// Measured admissions per second (0 before the first measurement).
    pub rate_per_sec: f64,
    /// ETA of the last person in line.
    pub eta_last_seconds: u64,
    /// People in the pre-queue, waiting for the draw.
    pub pre_queue: u64,
}

/// What one admission tick did, summed over rooms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    pub admitted: u64,
    /// Admitted users who never came back within the claim window.
    pub no_shows: u64,
    /// Active users whose time ran out.
    pub timed_out: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Paid,
    NoShow,
    TimedOut,
    Left,
}

/// Where a person was when they left the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// In line: the people behind moved up.
    Waiting,
    /// Admitted: the slot went back to the line.
    Active,
    /// The token had already ended: nothing changed.
    AlreadyOver,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Paid => "PAID",
            EndReason::NoShow => "NO_SHOW",
            EndReason::TimedOut => "TIMED_OUT",
            EndReason::Left => "LEFT",
        }
    }
}

#[async_trait]
pub trait WaitingRoom: Send + Sync + 'static {
    /// Joins the concert's line, or returns the user's live place in it.
    /// A new place is admitted at once when nobody waits ahead and `limits` allow. A closed
    /// line refuses new places (`Code::SoldOut` or `Code::LineClosed`).
    /// With `entry` (the line has a scheduled on-sale), a join before the line's draw goes to
    /// the pre-queue under that entry id, with place 0.
    async fn join(
        &self,
        concert: ConcertId,
        user: UserId,
        now: Millis,
        limits: Limits,
        entry: Option<String>,
    ) -> Result<Joined>;
    /// Where the ticket stands. The first look after admission claims the slot.
    async fn standing(&self, ticket: Ticket, now: Millis) -> Result<Standing>;
    /// Where the ticket stands, for its holder's status poll: a backend may answer someone still
    /// waiting from a copy a moment old (the position, and rarely the admission, may lag by that
    /// moment; architecture.md says when).
    /// Booking checks use `standing`, never this.
    async fn poll(&self, ticket: Ticket, now: Millis) -> Result<Standing> {
        self.standing(ticket, now).await
    }
    /// Ends an active ticket (after payment); a no-op for one already ended.
    async fn finish(&self, ticket: Ticket, now: Millis) -> Result<()>;
    /// The ticket's holder leaves the line, waiting or admitted.
    async fn leave(&self, ticket: Ticket, now: Millis) -> Result<Left>;
    /// Drops no-shows and timed-out users, then admits from the front of each line within its
    /// limits.
    async fn tick(&self, now: Millis, limits: &LineLimits) -> Result<TickReport>;
    /// Ends everyone waiting in the line and refuses new places until `reopen`; people already
    /// admitted keep their turn. Returns how many were waiting. Closing a closed line again
    /// ends anyone who slipped in and changes nothing else.
    async fn close(&self, concert: ConcertId, why: Closed, now: Millis) -> Result<u64>;
    /// Takes new places again (the operator reopened the line).
    async fn reopen(&self, concert: ConcertId) -> Result<()>;
    /// The on-sale draw, once per line (`domain::draw`): every pre-queue entry gets a place at
    /// the back of the line, in the order `seed` gives. Returns how many got a place, or None
    /// when the line was drawn already (by this or another instance).
    async fn draw(&self, concert: ConcertId, seed: &str, now: Millis) -> Result<Option<u64>>;
    /// The drawn order of entries, first place first, once the draw has run.
    async fn drawn_order(&self, concert: ConcertId) -> Result<Option<Vec<String>>>;
    async fn stats(&self) -> Result<Vec<RoomStats>>;
    /// Queue invariants this backend can check on its own (FIFO, the active limit). The embedded
    /// queue's journal is audited with the store, so it has none of its own.
    async fn audit(&self) -> Result<Vec<AuditCheck>> {
        Ok(Vec::new())
    }
}
