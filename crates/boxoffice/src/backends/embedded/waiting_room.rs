//! The embedded waiting room: lines held in process memory, every change journalled in the same
//! SQLite file as the bookings (`queue_entries`), so that a restart reloads exactly who waits
//! where and who is active.
//!
//! Places are sequence numbers handed out per concert without gaps; people leave the waiting part
//! of a line from its front (admitted) or from anywhere (they left), and a position counts only
//! the people still ahead (`line::WaitingLine`).
//!
//! **Every change runs on the SQLite writer** (`Db::write`), as one write of a group commit: it
//! writes its journal rows and then applies the same change to memory, on the writer thread,
//! which runs one write at a time. So changes are serialised without a lock held across an
//! await, thousands of joins share one commit, and each caller is answered only once its batch
//! is durable. A write that fails rolls back before it touches memory; a batch whose commit
//! fails reloads the lines from the journal (the rollback hook), so memory never keeps a change
//! the journal does not have.

use super::db::Db;
use super::line::WaitingLine;
use super::sqlite_error::db_err;
use crate::domain::line_controls::Closed;
use crate::domain::queue_policy::{admission_step, eta_seconds, retry_after_seconds, smoothed_rate};
use crate::domain::{ConcertId, Error, Millis, Result, UserId};
use crate::queue::{
    EndReason, Joined, Left, Limits, LineLimits, QueueConfig, RoomStats, Standing, TickReport, Ticket, WaitingRoom,
};
use async_trait::async_trait;
use parking_lot::RwLock;
use rusqlite::{params, Connection};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
enum Active {
    /// Admitted but not seen since: must show up before `claim_deadline`.
    Admitted {
        claim_deadline: Millis,
        until: Millis,
    },
    Claimed {
        until: Millis,
    },
}

impl Active {
    /// When this turn ends unless something happens first: the claim deadline while unclaimed.
    fn due(&self) -> Millis {
        match *self {
            Active::Admitted { claim_deadline, until } => claim_deadline.min(until),
            Active::Claimed { until } => until,
        }
    }
}

/// The people admitted, with an index by when each turn runs out, so that a tick finds the
/// no-shows and timed-out users without looking at everyone active. (It used to scan them all,
/// on the writer, every tick: with 500,000 active that was most of the writer's time, issue 12.)
#[derive(Default)]
struct ActiveSet {
    by_seq: HashMap<u64, (UserId, Active)>,
    due: std::collections::BTreeSet<(Millis, u64)>,
}

impl ActiveSet {
    fn insert(&mut self, seq: u64, entry: (UserId, Active)) {
        if let Some((_, old)) = self.by_seq.insert(seq, entry) {
            self.due.remove(&(old.due(), seq));
        }
        self.due.insert((entry.1.due(), seq));
    }

    fn remove(&mut self, seq: &u64) -> Option<(UserId, Active)> {
        let entry = self.by_seq.remove(seq)?;
        self.due.remove(&(entry.1.due(), *seq));
        Some(entry)
    }

    fn get(&self, seq: &u64) -> Option<&(UserId, Active)> {
        self.by_seq.get(seq)
    }

    fn contains_key(&self, seq: &u64) -> bool {
        self.by_seq.contains_key(seq)
    }

    fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// The turns that have run out by `now`: (no-shows, timed out), in order of running out.
    fn ended_by(&self, now: Millis) -> (Vec<u64>, Vec<u64>) {
        let (mut no_shows, mut timed_out) = (Vec::new(), Vec::new());
        for &(_, seq) in self.due.range(..=(now, u64::MAX)) {
            match self.by_seq.get(&seq) {
                Some((_, Active::Admitted { .. })) => no_shows.push(seq),
                Some((_, Active::Claimed { .. })) => timed_out.push(seq),
                None => {}
            }
        }
        (no_shows, timed_out)
    }
}

#[derive(Default)]
struct Line {
    /// The waiting part: places after the last admitted one, some perhaps left empty.
    waiting: WaitingLine,
    active: ActiveSet,
    by_user: HashMap<UserId, u64>,
    /// The admission token bucket: allowance carried, and when it was last filled.
    carry: f64,
    filled_at: Option<Millis>,
    /// Set while the line is closed: new places are refused. Not journalled: the app closes
    /// the line again from its settings before it serves (`App::warm_up`).
    closed: Option<Closed>,
    /// The pre-queue: people who joined before the on-sale, with their draw entry ids.
    pre: HashMap<UserId, String>,
    /// The on-sale draw has run: joins queue FIFO behind the people it placed. Its published
    /// order is kept here, so that it shows from the moment the places it gave do (a read
    /// connection would not see it before the writer's batch commits).
    drawn: Option<Arc<Vec<String>>>,
    /// Measured admissions per second; None until the first informative tick.
    rate: Option<f64>,
}

impl Line {
    /// The ticket with its place: a pre-queue token (place 0) has the place the draw gave its
    /// user; one still in the pre-queue, or whose user has no place, has none.
    fn placed(&self, t: Ticket) -> std::result::Result<Ticket, Standing> {
        if t.seq != 0 {
            return Ok(t);
        }
        if self.pre.contains_key(&t.user) {
            return Err(Standing::PreQueue);
        }
        match self.by_user.get(&t.user) {
            Some(&seq) => Ok(Ticket { seq, ..t }),
            None => Err(Standing::Expired),
        }
    }

    fn standing(&self, t: &Ticket, now: Millis, cfg: &QueueConfig) -> Standing {
        let t = &match self.placed(*t) {
            Ok(t) => t,
            Err(s) => return s,
        };
        if self.waiting.user_at(t.seq) == Some(t.user) {
            let position = self.waiting.position(t.seq);
            let eta = eta_seconds(position, self.rate.unwrap_or(cfg.admission_rate));
            return Standing::Waiting {
                position,
                eta_seconds: eta,
                retry_after: retry_after_seconds(eta, cfg.claim_window),
            };
        }
        match self.active.get(&t.seq) {
            Some((user, Active::Admitted { claim_deadline, until }))
                if *user == t.user && *claim_deadline > now && *until > now =>
            {
                Standing::Active { until: *until }
            }
            Some((user, Active::Claimed { until })) if *user == t.user && *until > now => {
                Standing::Active { until: *until }
            }
            _ => Standing::Expired,
        }
    }

    /// Seconds since the admission bucket was last filled; None before its first use.
    fn since_filled(&self, now: Millis) -> Option<f64> {
        self.filled_at.map(|t| ((now.0 - t.0).max(0) as f64) / 1000.0)
    }
}

type SharedLine = Arc<RwLock<Line>>;

struct Rooms {
    cfg: QueueConfig,
    lines: RwLock<HashMap<ConcertId, SharedLine>>,
    /// The latest instant a change was stamped with (only the writer thread touches it).
    clock: parking_lot::Mutex<Millis>,
}

impl Rooms {
    /// The instant of a change, taken when it runs on the writer and never earlier than the
    /// one before: changes run in the order of their places, and so must their timestamps (the
    /// audit proves FIFO from them), whichever caller looked at the clock first.
    fn now(&self) -> Millis {
        let mut last = self.clock.lock();
        *last = (*last).max(Millis::now());
        *last
    }

    fn line(&self, concert: ConcertId) -> SharedLine {
        if let Some(l) = self.lines.read().get(&concert) {
            return l.clone();
        }
        self.lines.write().entry(concert).or_default().clone()
    }

    fn existing(&self, concert: ConcertId) -> Option<SharedLine> {
        self.lines.read().get(&concert).cloned()
    }
}

/// The waiting room of the embedded mode.
pub struct EmbeddedWaitingRoom {
    db: Arc<Db>,
    rooms: Arc<Rooms>,
}

impl EmbeddedWaitingRoom {
    /// Rebuilds every line from the journal, and keeps memory in step with it from then on.
    pub async fn open(cfg: QueueConfig, db: Arc<Db>) -> Result<Self> {
        let lines = db.read(load).await?;
        let rooms = Arc::new(Rooms {
            cfg,
            lines: RwLock::new(lines.into_iter().map(|(c, l)| (c, Arc::new(RwLock::new(l)))).collect()),
            clock: parking_lot::Mutex::new(Millis(0)),
        });
        let reload = rooms.clone();
        db.on_rollback(Box::new(move |conn| match load(conn) {
            Ok(mut fresh) => {
                let mut lines = reload.lines.write();
                for (concert, line) in lines.iter() {
                    *line.write() = fresh.remove(concert).unwrap_or_default();
                }
                for (concert, line) in fresh {
                    lines.insert(concert, Arc::new(RwLock::new(line)));
                }
                tracing::warn!("a journal commit failed; the waiting room was reloaded from the journal");
            }
            Err(e) => tracing::error!(error = %e, "reloading the waiting room after a failed commit"),
        }));
        Ok(Self { db, rooms })
    }
}

/// Every live entry, rebuilt into lines.
fn load(c: &Connection) -> Result<HashMap<ConcertId, Line>> {
    let mut lines: HashMap<ConcertId, Line> = HashMap::new();
    let mut s = c.prepare("SELECT concert_id, MAX(seq) FROM queue_entries GROUP BY concert_id").map_err(db_err)?;
    let max_seq: HashMap<ConcertId, u64> = s
        .query_map([], |r| Ok((ConcertId::from_trusted(r.get(0)?), r.get::<_, i64>(1)? as u64)))
        .and_then(|rows| rows.collect())
        .map_err(db_err)?;
    for (concert, seq) in &max_seq {
        lines.entry(*concert).or_default().waiting = WaitingLine::after(*seq);
    }
    let mut s = c.prepare("SELECT concert_id, user_id, entry_id FROM queue_pre").map_err(db_err)?;
    let pre: Vec<(i64, i64, String)> =
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).and_then(|rows| rows.collect()).map_err(db_err)?;
    for (concert, user, entry) in pre {
        lines.entry(ConcertId::from_trusted(concert)).or_default().pre.insert(UserId::from_trusted(user), entry);
    }
    let mut s = c.prepare("SELECT concert_id, entries FROM queue_draws").map_err(db_err)?;
    let drawn: Vec<(i64, String)> =
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).and_then(|rows| rows.collect()).map_err(db_err)?;
    for (concert, entries) in drawn {
        let entries = serde_json::from_str(&entries).map_err(|e| Error::internal(format!("stored draw: {e}")))?;
        lines.entry(ConcertId::from_trusted(concert)).or_default().drawn = Some(Arc::new(entries));
    }
    let mut s = c
        .prepare(
            "SELECT concert_id, seq, user_id, state, claim_deadline, claimed_at, active_until \
             FROM queue_entries WHERE state IN ('WAITING', 'ACTIVE') ORDER BY concert_id, seq",
        )
        .map_err(db_err)?;
    type Row = (i64, i64, i64, String, Option<i64>, Option<i64>, Option<i64>);
    let rows: Vec<Row> = s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .and_then(|rows| rows.collect())
        .map_err(db_err)?;
    let mut waiting: HashMap<ConcertId, Vec<(u64, UserId)>> = HashMap::new();
    for (concert, seq, user, state, claim_deadline, claimed_at, until) in rows {
        let (concert, seq, user) = (ConcertId::from_trusted(concert), seq as u64, UserId::from_trusted(user));
        let line = lines.entry(concert).or_default();
        line.by_user.insert(user, seq);
        let until = Millis(until.unwrap_or(0));
        match (state.as_str(), claimed_at) {
            ("WAITING", _) => waiting.entry(concert).or_default().push((seq, user)),
            (_, Some(_)) => {
                line.active.insert(seq, (user, Active::Claimed { until }));
            }
            (_, None) => {
                let claim_deadline = Millis(claim_deadline.unwrap_or(0));
                line.active.insert(seq, (user, Active::Admitted { claim_deadline, until }));
            }
        }
    }
    for (concert, ws) in waiting {
        let line = lines.get_mut(&concert).expect("every entry's concert has a line");
        let (first, last) = (ws[0].0, max_seq[&concert]);
        // Places are issued without gaps and leave the waiting part from the front, or by
        // leaving the line: every place from the first waiting one to the last issued is
        // waiting, or was left (an empty slot again).
        let mut s = c
            .prepare(
                "SELECT seq FROM queue_entries WHERE concert_id = ?1 AND seq > ?2 \
                 AND state = 'EXPIRED' AND end_reason = 'LEFT' AND admitted_at IS NULL",
            )
            .map_err(db_err)?;
        let left: HashSet<u64> = s
            .query_map(params![concert.get(), first as i64], |r| Ok(r.get::<_, i64>(0)? as u64))
            .and_then(|rows| rows.collect())
            .map_err(db_err)?;
        let mut line_part = WaitingLine::after(first - 1);
        let mut next = ws.iter().peekable();
        for seq in first..=last {
            match next.peek() {
                Some((s, user)) if *s == seq => {
                    line_part.push(*user);
                    next.next();
                }
                _ if left.contains(&seq) => line_part.push_left(),
                _ => {
                    return Err(Error::internal(format!(
                        "queue journal for concert {concert} has a gap at place {seq} in its waiting line"
                    )))
                }
            }
        }
        line.waiting = line_part;
    }
    Ok(lines)
}

// ---- the journal's statements; each runs inside a write of the group commit ----

fn end_entries(t: &Connection, concert: ConcertId, seqs: &[u64], why: EndReason, at: Millis) -> Result<()> {
    let mut s = t
        .prepare_cached(
            "UPDATE queue_entries SET state = 'EXPIRED', ended_at = ?3, end_reason = ?4 \
             WHERE concert_id = ?1 AND seq = ?2 AND state = 'ACTIVE'",
        )
        .map_err(db_err)?;
    for seq in seqs {
        s.execute(params![concert.get(), *seq as i64, at.0, why.as_str()]).map_err(db_err)?;
    }
    Ok(())
}

/// One admission batch: places `first..=last` become active. `active_after` and `max_active`
/// are kept so the audit can prove the limit held.
struct Admission {
    /// The places admitted, in order; `last` is the last place passed (empty slots included).
    places: Vec<(u64, UserId)>,
    first: u64,
    last: u64,
    at: Millis,
    claim_deadline: Millis,
    until: Millis,
    active_after: u64,
    max_active: u64,
}

fn admit(t: &Connection, concert: ConcertId, a: &Admission) -> Result<()> {
    t.prepare_cached(
        "UPDATE queue_entries SET state = 'ACTIVE', admitted_at = ?4, claim_deadline = ?5, active_until = ?6, \
         active_after = ?7, max_active = ?8 \
         WHERE concert_id = ?1 AND seq BETWEEN ?2 AND ?3 AND state = 'WAITING'",
    )
    .and_then(|mut s| {
        s.execute(params![
            concert.get(),
            a.first as i64,
            a.last as i64,
            a.at.0,
            a.claim_deadline.0,
            a.until.0,
            a.active_after as i64,
            a.max_active as i64
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

impl Rooms {
    /// The next `n` people from the front of the line, as an admission at `now`.
    fn admission(&self, line: &Line, n: u64, now: Millis, max_active: u64) -> Admission {
        let (places, last) = line.waiting.peek_front(n);
        Admission {
            first: line.waiting.base() + 1,
            last,
            at: now,
            claim_deadline: now.plus(self.cfg.claim_window),
            until: now.plus(self.cfg.active_ttl),
            active_after: line.active.len() as u64 + places.len() as u64,
            max_active,
            places,
        }
    }

    /// Moves the admitted places from the front of the waiting line into the active set.
    fn apply_admission(line: &mut Line, a: &Admission) {
        let (taken, _) = line.waiting.take_front(a.places.len() as u64);
        debug_assert_eq!(taken, a.places, "the places admitted are the ones planned");
        for (seq, user) in taken {
            line.active.insert(seq, (user, Active::Admitted { claim_deadline: a.claim_deadline, until: a.until }));
        }
    }

    fn remove_active(line: &mut Line, seqs: &[u64]) {
        for seq in seqs {
            if let Some((user, _)) = line.active.remove(seq) {
                if line.by_user.get(&user) == Some(seq) {
                    line.by_user.remove(&user);
                }
            }
        }
    }

    /// Runs on the writer. A user with a live place gets it back; otherwise a new place at the
    /// back, admitted at once when nobody waits ahead, a slot is free and the bucket allows.
    fn join(
        &self,
        t: &Connection,
        concert: ConcertId,
        user: UserId,
        limits: Limits,
        entry: Option<String>,
    ) -> Result<Joined> {
        let now = self.now();
        let handle = self.line(concert);
        let mut line = handle.write();
        if let Some(why) = line.closed {
            return Err(why.refusal(concert));
        }
        let ended = match line.by_user.get(&user).copied() {
            Some(seq) => {
                let ticket = Ticket { concert, user, seq };
                let standing = line.standing(&ticket, now, &self.cfg);
                if standing != Standing::Expired {
                    return Ok(Joined { ticket, standing, created: false });
                }
                Some(seq)
            }
            None => None,
        };
        // An ended place (not swept yet) is closed before the new one opens.
        if let Some(old) = ended {
            let why = match line.active.get(&old) {
                Some((_, Active::Claimed { .. })) => EndReason::TimedOut,
                _ => EndReason::NoShow,
            };
            end_entries(t, concert, &[old], why, now)?;
        }
        // Before the draw, a join with an entry id waits in the pre-queue, without a place.
        if let Some(entry) = entry.filter(|_| line.drawn.is_none()) {
            let pre_ticket = Ticket { concert, user, seq: 0 };
            if line.pre.contains_key(&user) {
                return Ok(Joined { ticket: pre_ticket, standing: Standing::PreQueue, created: false });
            }
            t.prepare_cached(
                "INSERT INTO queue_pre (concert_id, user_id, entry_id, joined_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![concert.get(), user.get(), entry, now.0]))
            .map_err(db_err)?;
            if let Some(old) = ended {
                Self::remove_active(&mut line, &[old]);
            }
            line.pre.insert(user, entry);
            return Ok(Joined { ticket: pre_ticket, standing: Standing::PreQueue, created: true });
        }
        let seq = line.waiting.next_seq();
        t.prepare_cached(
            "INSERT INTO queue_entries (concert_id, seq, user_id, state, joined_at) VALUES (?1, ?2, ?3, 'WAITING', ?4)",
        )
        .and_then(|mut s| s.execute(params![concert.get(), seq as i64, user.get(), now.0]))
        .map_err(db_err)?;
        // Admit at once when this person is first in line and there is room: waiting for the
        // next tick would only cost them a poll, and nobody is passed over.
        let mut bucket = None;
        if line.waiting.is_empty() {
            let live = line.active.len() - usize::from(ended.is_some_and(|s| line.active.contains_key(&s)));
            let free = limits.free(live as u64);
            // A bucket never used yet starts full (a second's worth, within the cap).
            let elapsed = line.since_filled(now).unwrap_or(1.0);
            let (n, carry) = admission_step(line.carry, limits.rate, elapsed, free, 1);
            if n == 1 {
                bucket = Some(carry);
            }
        }
        let admission = bucket.map(|_| Admission {
            places: vec![(seq, user)],
            first: seq,
            last: seq,
            at: now,
            claim_deadline: now.plus(self.cfg.claim_window),
            until: now.plus(self.cfg.active_ttl),
            active_after: line.active.len() as u64 + 1,
            max_active: limits.max_active,
        });
        if let Some(a) = &admission {
            admit(t, concert, a)?;
        }
        // Journal written: now memory. Nothing below can fail.
        if let Some(old) = ended {
            Self::remove_active(&mut line, &[old]);
        }
        line.waiting.push(user);
        line.by_user.insert(user, seq);
        if let (Some(a), Some(carry)) = (&admission, bucket) {
            Self::apply_admission(&mut line, a);
            line.carry = carry;
            line.filled_at = Some(now);
        }
        let ticket = Ticket { concert, user, seq };
        let standing = line.standing(&ticket, now, &self.cfg);
        Ok(Joined { ticket, standing, created: true })
    }

    /// Runs on the writer: the first look after admission claims the slot.
    fn claim(&self, t: &Connection, ticket: Ticket) -> Result<Standing> {
        let now = self.now();
        let Some(handle) = self.existing(ticket.concert) else { return Ok(Standing::Expired) };
        let mut line = handle.write();
        let ticket = match line.placed(ticket) {
            Ok(t) => t,
            Err(s) => return Ok(s),
        };
        let until = match line.active.get(&ticket.seq) {
            Some((u, Active::Admitted { claim_deadline, until }))
                if *u == ticket.user && *claim_deadline > now && *until > now =>
            {
                *until
            }
            _ => return Ok(line.standing(&ticket, now, &self.cfg)),
        };
        t.prepare_cached("UPDATE queue_entries SET claimed_at = ?3 WHERE concert_id = ?1 AND seq = ?2")
            .and_then(|mut s| s.execute(params![ticket.concert.get(), ticket.seq as i64, now.0]))
            .map_err(db_err)?;
        line.active.insert(ticket.seq, (ticket.user, Active::Claimed { until }));
        Ok(Standing::Active { until })
    }

    /// Runs on the writer: ends an active ticket (after payment).
    fn finish(&self, t: &Connection, ticket: Ticket) -> Result<()> {
        let now = self.now();
        let Some(handle) = self.existing(ticket.concert) else { return Ok(()) };
        let mut line = handle.write();
        let Ok(ticket) = line.placed(ticket) else { return Ok(()) };
        if !matches!(line.active.get(&ticket.seq), Some((u, _)) if *u == ticket.user) {
            return Ok(());
        }
        end_entries(t, ticket.concert, &[ticket.seq], EndReason::Paid, now)?;
        Self::remove_active(&mut line, &[ticket.seq]);
        Ok(())
    }

    /// Runs on the writer: the ticket's holder leaves the line, from wherever they are.
    fn leave(&self, t: &Connection, ticket: Ticket) -> Result<Left> {
        let now = self.now();
        let Some(handle) = self.existing(ticket.concert) else { return Ok(Left::AlreadyOver) };
        let mut line = handle.write();
        if ticket.seq == 0 && line.pre.contains_key(&ticket.user) {
            t.prepare_cached("DELETE FROM queue_pre WHERE concert_id = ?1 AND user_id = ?2")
                .and_then(|mut s| s.execute(params![ticket.concert.get(), ticket.user.get()]))
                .map_err(db_err)?;
            line.pre.remove(&ticket.user);
            return Ok(Left::Waiting);
        }
        let Ok(ticket) = line.placed(ticket) else { return Ok(Left::AlreadyOver) };
        let was = if line.waiting.user_at(ticket.seq) == Some(ticket.user) {
            Left::Waiting
        } else if matches!(line.active.get(&ticket.seq), Some((u, _)) if *u == ticket.user) {
            Left::Active
        } else {
            return Ok(Left::AlreadyOver);
        };
        t.prepare_cached(
            "UPDATE queue_entries SET state = 'EXPIRED', ended_at = ?3, end_reason = 'LEFT' \
             WHERE concert_id = ?1 AND seq = ?2 AND state IN ('WAITING', 'ACTIVE')",
        )
        .and_then(|mut s| s.execute(params![ticket.concert.get(), ticket.seq as i64, now.0]))
        .map_err(db_err)?;
        match was {
            Left::Waiting => {
                line.waiting.leave(ticket.seq);
                if line.by_user.get(&ticket.user) == Some(&ticket.seq) {
                    line.by_user.remove(&ticket.user);
                }
            }
            _ => Self::remove_active(&mut line, &[ticket.seq]),
        }
        Ok(was)
    }

    /// Runs on the writer: everyone waiting goes home with `why`, and new places are refused.
    fn close(&self, t: &Connection, concert: ConcertId, why: Closed) -> Result<u64> {
        let now = self.now();
        let handle = self.line(concert);
        let mut line = handle.write();
        let ended = t
            .prepare_cached(
                "UPDATE queue_entries SET state = 'EXPIRED', ended_at = ?2, end_reason = ?3 \
                 WHERE concert_id = ?1 AND state = 'WAITING'",
            )
            .and_then(|mut s| s.execute(params![concert.get(), now.0, why.as_str()]))
            .map_err(db_err)?;
        let pre = t
            .prepare_cached("DELETE FROM queue_pre WHERE concert_id = ?1")
            .and_then(|mut s| s.execute([concert.get()]))
            .map_err(db_err)?;
        line.pre.clear();
        let ended = ended + pre;
        let (gone, _) = line.waiting.take_front(u64::MAX);
        for (seq, user) in gone {
            if line.by_user.get(&user) == Some(&seq) {
                line.by_user.remove(&user);
            }
        }
        line.closed = Some(why);
        Ok(ended as u64)
    }

    /// Runs on the writer: the line's on-sale draw (`domain::draw`), once.
    fn draw(&self, t: &Connection, concert: ConcertId, seed: &str) -> Result<Option<u64>> {
        let now = self.now();
        let handle = self.line(concert);
        let mut line = handle.write();
        if line.drawn.is_some() {
            return Ok(None);
        }
        let by_entry: HashMap<&str, UserId> = line.pre.iter().map(|(u, e)| (e.as_str(), *u)).collect();
        let mut given = Vec::new();
        let mut stale = Vec::new();
        for entry in crate::domain::draw::order(seed, line.pre.values().cloned()) {
            let user = by_entry[entry.as_str()];
            match line.by_user.get(&user) {
                // A live place from before the on-sale was set is kept.
                Some(&seq) if line.standing(&Ticket { concert, user, seq }, now, &self.cfg) != Standing::Expired => {
                    continue
                }
                Some(&seq) => stale.push(seq),
                None => {}
            }
            given.push((entry, user));
        }
        end_entries(t, concert, &stale, EndReason::NoShow, now)?;
        let first = line.waiting.next_seq();
        {
            let mut ins = t
                .prepare_cached(
                    "INSERT INTO queue_entries (concert_id, seq, user_id, state, joined_at) \
                     VALUES (?1, ?2, ?3, 'WAITING', ?4)",
                )
                .map_err(db_err)?;
            for (i, (_, user)) in given.iter().enumerate() {
                ins.execute(params![concert.get(), (first + i as u64) as i64, user.get(), now.0]).map_err(db_err)?;
            }
        }
        let order: Vec<String> = given.iter().map(|(e, _)| e.clone()).collect();
        let entries = serde_json::to_string(&order).map_err(|e| Error::internal(e.to_string()))?;
        t.prepare_cached("DELETE FROM queue_pre WHERE concert_id = ?1")
            .and_then(|mut s| s.execute([concert.get()]))
            .map_err(db_err)?;
        t.prepare_cached("INSERT INTO queue_draws (concert_id, seed, drawn_at, entries) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![concert.get(), seed, now.0, entries]))
            .map_err(db_err)?;
        // Journal written: now memory.
        Self::remove_active(&mut line, &stale);
        for (_, user) in &given {
            let seq = line.waiting.push(*user);
            line.by_user.insert(*user, seq);
        }
        line.pre.clear();
        line.drawn = Some(Arc::new(order));
        Ok(Some(given.len() as u64))
    }

    /// Runs on the writer: one admission tick over every line. Every line's statements run
    /// first and memory changes only after all of them succeeded, so a failure leaves memory
    /// as the rolled-back journal has it.
    fn tick(&self, t: &Connection, limits: &LineLimits) -> Result<TickReport> {
        let now = self.now();
        struct Plan {
            line: SharedLine,
            no_shows: Vec<u64>,
            timed_out: Vec<u64>,
            admitted: u64,
            carry: f64,
            elapsed: f64,
            waiting: u64,
            admission: Option<Admission>,
            rate: f64,
        }
        let lines: Vec<_> = self.lines.read().iter().map(|(c, l)| (*c, l.clone())).collect();
        let mut plans = Vec::with_capacity(lines.len());
        for (concert, handle) in lines {
            let line = handle.read();
            // 1. Drop no-shows and users whose time is up, so their slots go to the next people.
            let (no_shows, timed_out) = line.active.ended_by(now);
            end_entries(t, concert, &no_shows, EndReason::NoShow, now)?;
            end_entries(t, concert, &timed_out, EndReason::TimedOut, now)?;
            // 2. Admit from the front while there is room and allowance.
            let ended = (no_shows.len() + timed_out.len()) as u64;
            let live = line.active.len() as u64 - ended;
            let limits = limits.of(concert);
            let (rate, free) = (limits.rate, limits.free(live));
            // A bucket never used yet starts full; the measured pace starts from the next tick.
            let since = line.since_filled(now);
            let elapsed = since.unwrap_or(0.0);
            let waiting = line.waiting.len();
            let (admitted, carry) = admission_step(line.carry, rate, since.unwrap_or(1.0), free, waiting);
            let admission = (admitted > 0).then(|| {
                let mut a = self.admission(&line, admitted, now, limits.max_active);
                a.active_after -= ended;
                a
            });
            if let Some(a) = &admission {
                admit(t, concert, a)?;
            }
            drop(line);
            plans.push(Plan { line: handle, no_shows, timed_out, admitted, carry, elapsed, waiting, admission, rate });
        }
        // Every statement ran: now memory.
        let mut report = TickReport::default();
        for p in plans {
            let mut line = p.line.write();
            Self::remove_active(&mut line, &p.no_shows);
            Self::remove_active(&mut line, &p.timed_out);
            line.carry = p.carry;
            line.filled_at = Some(now);
            line.rate = smoothed_rate(line.rate, p.rate, p.admitted, p.elapsed, p.admitted == p.waiting);
            if let Some(a) = &p.admission {
                Self::apply_admission(&mut line, a);
            }
            report.no_shows += p.no_shows.len() as u64;
            report.timed_out += p.timed_out.len() as u64;
            report.admitted += p.admitted;
        }
        Ok(report)
    }
}

#[async_trait]
impl WaitingRoom for EmbeddedWaitingRoom {
    async fn join(
        &self,
        concert: ConcertId,
        user: UserId,
        now: Millis,
        limits: Limits,
        entry: Option<String>,
    ) -> Result<Joined> {
        // A live place, or one in the pre-queue, is answered from memory: no write.
        if let Some(handle) = self.rooms.existing(concert) {
            let line = handle.read();
            if line.pre.contains_key(&user) && line.closed.is_none() {
                let ticket = Ticket { concert, user, seq: 0 };
                return Ok(Joined { ticket, standing: Standing::PreQueue, created: false });
            }
            if let Some(&seq) = line.by_user.get(&user) {
                let ticket = Ticket { concert, user, seq };
                let standing = line.standing(&ticket, now, &self.rooms.cfg);
                if standing != Standing::Expired {
                    return Ok(Joined { ticket, standing, created: false });
                }
            }
        }
        let rooms = self.rooms.clone();
        self.db.write(move |t| rooms.join(t, concert, user, limits, entry)).await
    }

    async fn standing(&self, ticket: Ticket, now: Millis) -> Result<Standing> {
        let Some(handle) = self.rooms.existing(ticket.concert) else { return Ok(Standing::Expired) };
        {
            let line = handle.read();
            let s = line.standing(&ticket, now, &self.rooms.cfg);
            let seq = line.placed(ticket).map_or(0, |t| t.seq);
            let unclaimed = matches!(line.active.get(&seq), Some((_, Active::Admitted { .. })));
            if !(unclaimed && matches!(s, Standing::Active { .. })) {
                return Ok(s);
            }
        }
        let rooms = self.rooms.clone();
        self.db.write(move |t| rooms.claim(t, ticket)).await
    }

    async fn finish(&self, ticket: Ticket, _now: Millis) -> Result<()> {
        let rooms = self.rooms.clone();
        self.db.write(move |t| rooms.finish(t, ticket)).await
    }

    async fn leave(&self, ticket: Ticket, _now: Millis) -> Result<Left> {
        let rooms = self.rooms.clone();
        self.db.write(move |t| rooms.leave(t, ticket)).await
    }

    async fn tick(&self, _now: Millis, limits: &LineLimits) -> Result<TickReport> {
        let rooms = self.rooms.clone();
        let limits = limits.clone();
        self.db.write(move |t| rooms.tick(t, &limits)).await
    }

    async fn close(&self, concert: ConcertId, why: Closed, _now: Millis) -> Result<u64> {
        let rooms = self.rooms.clone();
        self.db.write(move |t| rooms.close(t, concert, why)).await
    }

    async fn reopen(&self, concert: ConcertId) -> Result<()> {
        if let Some(line) = self.rooms.existing(concert) {
            line.write().closed = None;
        }
        Ok(())
    }

    async fn draw(&self, concert: ConcertId, seed: &str, _now: Millis) -> Result<Option<u64>> {
        if self.rooms.existing(concert).is_some_and(|l| l.read().drawn.is_some()) {
            return Ok(None);
        }
        let (rooms, seed) = (self.rooms.clone(), seed.to_owned());
        self.db.write(move |t| rooms.draw(t, concert, &seed)).await
    }

    async fn drawn_order(&self, concert: ConcertId) -> Result<Option<Vec<String>>> {
        Ok(self.rooms.existing(concert).and_then(|l| l.read().drawn.as_deref().cloned()))
    }

    async fn stats(&self) -> Result<Vec<RoomStats>> {
        let lines = self.rooms.lines.read();
        let cfg = &self.rooms.cfg;
        Ok(lines
            .iter()
            .map(|(c, l)| {
                let line = l.read();
                let waiting = line.waiting.len();
                RoomStats {
                    concert: c.get(),
                    waiting,
                    active: line.active.len() as u64,
                    max_active: cfg.max_active,
                    rate_per_sec: line.rate.unwrap_or(0.0),
                    eta_last_seconds: eta_seconds(waiting, line.rate.unwrap_or(cfg.admission_rate)),
                    pre_queue: line.pre.len() as u64,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::embedded::db::DbOptions;
    use std::time::Duration;

    fn cfg() -> QueueConfig {
        QueueConfig {
            max_active: 1,
            admission_rate: 1000.0,
            claim_window: Duration::from_secs(30),
            active_ttl: Duration::from_secs(600),
        }
    }

    const LIMITS: Limits = Limits { max_active: 1, rate: 1000.0, admit: true };

    fn id(n: i64) -> (ConcertId, UserId) {
        (ConcertId::from_trusted(1), UserId::from_trusted(n))
    }

    /// The tick's index finds exactly the turns that ran out, and follows a claim (the deadline
    /// moves from the claim window to the end of the turn) and a removal.
    #[test]
    fn active_set_finds_the_turns_that_ran_out() {
        let u = UserId::from_trusted(9);
        let mut set = ActiveSet::default();
        set.insert(1, (u, Active::Admitted { claim_deadline: Millis(100), until: Millis(1000) }));
        set.insert(2, (u, Active::Admitted { claim_deadline: Millis(300), until: Millis(1000) }));
        set.insert(3, (u, Active::Claimed { until: Millis(200) }));
        set.insert(4, (u, Active::Admitted { claim_deadline: Millis(50), until: Millis(1000) }));
        assert_eq!(set.ended_by(Millis(99)), (vec![4], vec![]));
        assert_eq!(set.ended_by(Millis(250)), (vec![4, 1], vec![3]));
        // Seat 2 claims before its deadline: now it runs until 1000.
        set.insert(2, (u, Active::Claimed { until: Millis(1000) }));
        set.remove(&4);
        assert_eq!(set.ended_by(Millis(999)), (vec![1], vec![3]));
        assert_eq!(set.ended_by(Millis(1000)), (vec![1], vec![3, 2]));
        assert_eq!(set.len(), 3);
        assert_eq!(set.due.len(), 3, "one index entry per active place");
    }

    /// Joins that share a batch whose commit fails are all refused, memory forgets them, and the
    /// next join takes the place right after the last one committed: no hole, no reuse.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn joins_of_a_failed_batch_leave_no_hole() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("q.db"), DbOptions::default()).unwrap());
        // A write that fails only at COMMIT (a deferred foreign key), to sink a whole batch.
        db.write(|c| {
            c.execute_batch("CREATE TABLE bomb (u INTEGER REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED)")
                .map_err(db_err)
        })
        .await
        .unwrap();
        let room = Arc::new(EmbeddedWaitingRoom::open(cfg(), db.clone()).await.unwrap());
        let now = Millis::now();
        let (c, u1) = id(1);
        assert!(matches!(room.join(c, u1, now, LIMITS, None).await.unwrap().standing, Standing::Active { .. }));
        let second = room.join(c, id(2).1, now, LIMITS, None).await.unwrap();
        assert_eq!((second.ticket.seq, second.standing.position()), (2, Some(1)));

        // Hold the writer, queue three joins and the bomb behind it, then let them run as one batch.
        let (release, blocker) = crate::backends::embedded::db::occupy_writer(&db).await;
        let mut doomed = Vec::new();
        for u in [3, 4] {
            let room = room.clone();
            doomed.push(tokio::spawn(async move { room.join(c, id(u).1, now, LIMITS, None).await }));
        }
        let bomb = tokio::spawn({
            let db = db.clone();
            async move { db.write(|c| c.execute("INSERT INTO bomb (u) VALUES (999999)", []).map_err(db_err)).await }
        });
        let room5 = room.clone();
        doomed.push(tokio::spawn(async move { room5.join(c, id(5).1, now, LIMITS, None).await }));
        while db.pool_stats().in_use < 5 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        assert!(bomb.await.unwrap().is_err());
        for j in doomed {
            assert!(j.await.unwrap().is_err(), "a join whose batch did not commit is not answered as joined");
        }
        // Memory was reloaded from the journal: the line is exactly what was committed.
        let stats = room.stats().await.unwrap();
        assert_eq!((stats[0].waiting, stats[0].active), (1, 1));
        let next = room.join(c, id(6).1, now, LIMITS, None).await.unwrap();
        assert_eq!(
            (next.ticket.seq, next.standing.position()),
            (3, Some(2)),
            "the next place follows the last committed"
        );
        // And a restart agrees with memory.
        let reopened = EmbeddedWaitingRoom::open(cfg(), db.clone()).await.unwrap();
        let again = reopened.join(c, id(6).1, now, LIMITS, None).await.unwrap();
        assert_eq!((again.ticket.seq, again.created), (3, false));
    }
}
