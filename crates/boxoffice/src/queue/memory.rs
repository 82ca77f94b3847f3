//! The embedded waiting room: lines held in process memory, every change written ahead to a
//! journal (the SQLite store) so that a restart reloads exactly who waits where and who is active.
//!
//! Places are sequence numbers handed out per concert without gaps, and people leave the waiting
//! part of a line only from its front, so a position is `seq - admitted_upto`: O(1) per poll.

use super::{EndReason, Joined, QueueConfig, RoomStats, Standing, TickReport, Ticket, WaitingRoom};
use crate::domain::queue_policy::{admission_allowance, eta_seconds, retry_after_seconds, smoothed_rate};
use crate::domain::{ConcertId, Error, Millis, Result, UserId};
use async_trait::async_trait;
use parking_lot::RwLock;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// A live entry as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub concert: ConcertId,
    pub seq: u64,
    pub user: UserId,
    pub phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    /// Admitted but not yet seen since.
    Admitted {
        claim_deadline: Millis,
        until: Millis,
    },
    Claimed {
        until: Millis,
    },
}

/// One admission batch: places `first..=last` of a concert's line become active.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    pub concert: ConcertId,
    pub first: u64,
    pub last: u64,
    pub at: Millis,
    pub claim_deadline: Millis,
    pub until: Millis,
    /// Active users in the room once this batch is in, and the limit it was admitted under:
    /// kept so the audit can prove the limit held.
    pub active_after: u64,
    pub max_active: u64,
}

#[async_trait]
pub trait QueueJournal: Send + Sync + 'static {
    /// Every live (waiting or active) entry, and the highest place ever issued per concert.
    async fn load(&self) -> Result<(Vec<JournalEntry>, HashMap<ConcertId, u64>)>;
    async fn joined(&self, concert: ConcertId, seq: u64, user: UserId, at: Millis) -> Result<()>;
    async fn admitted(&self, a: Admission) -> Result<()>;
    async fn claimed(&self, concert: ConcertId, seq: u64, at: Millis) -> Result<()>;
    async fn ended(&self, concert: ConcertId, seqs: Vec<u64>, why: EndReason, at: Millis) -> Result<()>;
}

#[derive(Debug, Clone, Copy)]
enum Active {
    Admitted { claim_deadline: Millis, until: Millis },
    Claimed { until: Millis },
}

#[derive(Default)]
struct Line {
    /// Every place up to this one has left the waiting part of the line.
    admitted_upto: u64,
    /// Users at places `admitted_upto + 1 ..`, in order.
    waiting: VecDeque<UserId>,
    active: HashMap<u64, (UserId, Active)>,
    by_user: HashMap<UserId, u64>,
    carry: f64,
    /// Measured admissions per second; None until the first informative tick.
    rate: Option<f64>,
    last_tick: Option<Millis>,
}

impl Line {
    fn next_seq(&self) -> u64 {
        self.admitted_upto + self.waiting.len() as u64 + 1
    }

    fn waiting_user(&self, seq: u64) -> Option<UserId> {
        let idx = seq.checked_sub(self.admitted_upto + 1)?;
        self.waiting.get(idx as usize).copied()
    }

    fn standing(&self, t: &Ticket, now: Millis, cfg: &QueueConfig) -> Standing {
        if self.waiting_user(t.seq) == Some(t.user) {
            let position = t.seq - self.admitted_upto;
            let rate = self.rate.unwrap_or(cfg.admission_rate);
            let eta = eta_seconds(position, rate);
            return Standing::Waiting {
                position,
                eta_seconds: eta,
                retry_after: retry_after_seconds(eta, cfg.claim_window),
            };
        }
        match self.active.get(&t.seq) {
            Some((user, Active::Admitted { claim_deadline, until })) if *user == t.user => {
                if *claim_deadline > now && *until > now {
                    Standing::Active { until: *until }
                } else {
                    Standing::Expired
                }
            }
            Some((user, Active::Claimed { until })) if *user == t.user && *until > now => {
                Standing::Active { until: *until }
            }
            _ => Standing::Expired,
        }
    }
}

/// A concert's line: reads take the short `line` lock; changes are serialised by `writer`, which
/// is held across the journal write so the journal and memory never disagree in order.
#[derive(Default)]
struct Room {
    writer: tokio::sync::Mutex<()>,
    line: RwLock<Line>,
}

/// The waiting room of the embedded mode. Changes (join, finish) run as their own tasks: a
/// client that disconnects drops its request's future, and a journal write that went through
/// must never be left without the memory update that follows it (the next join would reuse its
/// place number).
pub struct MemoryQueue(Arc<Rooms>);

struct Rooms {
    cfg: QueueConfig,
    journal: Arc<dyn QueueJournal>,
    rooms: RwLock<HashMap<ConcertId, Arc<Room>>>,
}

impl MemoryQueue {
    /// Rebuilds every line from the journal.
    pub async fn open(cfg: QueueConfig, journal: Arc<dyn QueueJournal>) -> Result<Self> {
        Ok(Self(Arc::new(Rooms::open(cfg, journal).await?)))
    }

    async fn detached<T, Fut>(&self, change: impl FnOnce(Arc<Rooms>) -> Fut) -> Result<T>
    where
        T: Send + 'static,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        tokio::spawn(change(self.0.clone()))
            .await
            .map_err(|e| crate::domain::Error::internal(format!("waiting-room task failed: {e}")))?
    }
}

#[async_trait]
impl WaitingRoom for MemoryQueue {
    async fn join(&self, concert: ConcertId, user: UserId, now: Millis) -> Result<Joined> {
        self.detached(move |r| async move { r.join(concert, user, now).await }).await
    }

    async fn standing(&self, ticket: Ticket, now: Millis) -> Result<Standing> {
        // Inline: the hot path. Its one write (the claim) is idempotent, so a claim journalled
        // but not applied is simply made again by the next look.
        self.0.standing(ticket, now).await
    }

    async fn finish(&self, ticket: Ticket, now: Millis) -> Result<()> {
        self.detached(move |r| async move { r.finish(ticket, now).await }).await
    }

    async fn tick(&self, now: Millis, rate: f64) -> Result<TickReport> {
        self.0.tick(now, rate).await
    }

    async fn stats(&self) -> Result<Vec<RoomStats>> {
        self.0.stats().await
    }
}

impl Rooms {
    async fn open(cfg: QueueConfig, journal: Arc<dyn QueueJournal>) -> Result<Self> {
        let (entries, max_seq) = journal.load().await?;
        let mut lines: HashMap<ConcertId, Line> = HashMap::new();
        for (concert, seq) in &max_seq {
            lines.entry(*concert).or_default().admitted_upto = *seq;
        }
        let mut waiting: HashMap<ConcertId, Vec<(u64, UserId)>> = HashMap::new();
        for e in entries {
            let line = lines.entry(e.concert).or_default();
            line.by_user.insert(e.user, e.seq);
            match e.phase {
                Phase::Waiting => waiting.entry(e.concert).or_default().push((e.seq, e.user)),
                Phase::Admitted { claim_deadline, until } => {
                    line.active.insert(e.seq, (e.user, Active::Admitted { claim_deadline, until }));
                }
                Phase::Claimed { until } => {
                    line.active.insert(e.seq, (e.user, Active::Claimed { until }));
                }
            }
        }
        for (concert, mut ws) in waiting {
            ws.sort_unstable();
            let line = lines.get_mut(&concert).expect("every entry's concert has a line");
            let first = ws[0].0;
            // Places are issued without gaps and leave from the front, so the waiting part
            // of a line is always the contiguous tail up to the highest place issued.
            let contiguous = ws.iter().enumerate().all(|(i, (s, _))| *s == first + i as u64)
                && ws.last().map(|w| w.0) == max_seq.get(&concert).copied();
            if !contiguous {
                return Err(Error::internal(format!(
                    "queue journal for concert {concert} has gaps in its waiting line"
                )));
            }
            line.admitted_upto = first - 1;
            line.waiting = ws.into_iter().map(|(_, u)| u).collect();
        }
        let rooms = lines
            .into_iter()
            .map(|(c, line)| (c, Arc::new(Room { writer: Default::default(), line: RwLock::new(line) })))
            .collect();
        Ok(Self { cfg, journal, rooms: RwLock::new(rooms) })
    }

    fn room(&self, concert: ConcertId) -> Arc<Room> {
        if let Some(r) = self.rooms.read().get(&concert) {
            return r.clone();
        }
        self.rooms.write().entry(concert).or_default().clone()
    }

    fn existing_room(&self, concert: ConcertId) -> Option<Arc<Room>> {
        self.rooms.read().get(&concert).cloned()
    }

    async fn tick_room(
        &self,
        concert: ConcertId,
        room: &Room,
        now: Millis,
        rate: f64,
        report: &mut TickReport,
    ) -> Result<()> {
        let _w = room.writer.lock().await;
        // 1. Drop no-shows and users whose time is up, so their slots go to the next people.
        let (no_shows, timed_out) = {
            let line = room.line.read();
            let mut no_shows = Vec::new();
            let mut timed_out = Vec::new();
            for (seq, (_, a)) in &line.active {
                match a {
                    Active::Admitted { claim_deadline, until } if *claim_deadline <= now || *until <= now => {
                        no_shows.push(*seq)
                    }
                    Active::Claimed { until } if *until <= now => timed_out.push(*seq),
                    _ => {}
                }
            }
            (no_shows, timed_out)
        };
        for (seqs, why) in [(no_shows, EndReason::NoShow), (timed_out, EndReason::TimedOut)] {
            if seqs.is_empty() {
                continue;
            }
            self.journal.ended(concert, seqs.clone(), why, now).await?;
            let mut line = room.line.write();
            for seq in &seqs {
                if let Some((user, _)) = line.active.remove(seq) {
                    line.by_user.remove(&user);
                }
            }
            match why {
                EndReason::NoShow => report.no_shows += seqs.len() as u64,
                _ => report.timed_out += seqs.len() as u64,
            }
        }
        // 2. Admit from the front while there is room and allowance.
        let admission = {
            let mut line = room.line.write();
            let elapsed = line.last_tick.map_or(0.0, |t| ((now.0 - t.0).max(0) as f64) / 1000.0);
            line.last_tick = Some(now);
            let (allowed, carry) = admission_allowance(line.carry, rate, elapsed);
            let free = self.cfg.max_active.saturating_sub(line.active.len() as u64);
            let n = allowed.min(free).min(line.waiting.len() as u64);
            // Unused allowance is not banked while the room is full or empty.
            line.carry = if n == allowed { carry } else { 0.0 };
            let line_was_limit = line.waiting.len() as u64 <= allowed.min(free);
            line.rate = smoothed_rate(line.rate, rate, n, elapsed, line_was_limit);
            (n > 0).then(|| Admission {
                concert,
                first: line.admitted_upto + 1,
                last: line.admitted_upto + n,
                at: now,
                claim_deadline: now.plus(self.cfg.claim_window),
                until: now.plus(self.cfg.active_ttl),
                active_after: line.active.len() as u64 + n,
                max_active: self.cfg.max_active,
            })
        };
        if let Some(a) = admission {
            self.journal.admitted(a).await?;
            let mut line = room.line.write();
            for seq in a.first..=a.last {
                let user = line.waiting.pop_front().expect("admitted places were waiting");
                line.active.insert(seq, (user, Active::Admitted { claim_deadline: a.claim_deadline, until: a.until }));
            }
            line.admitted_upto = a.last;
            report.admitted += a.last - a.first + 1;
        }
        Ok(())
    }
}

/// The changes themselves, each serialised per concert by its room's writer lock.
impl Rooms {
    async fn join(&self, concert: ConcertId, user: UserId, now: Millis) -> Result<Joined> {
        let room = self.room(concert);
        let _w = room.writer.lock().await;
        let existing = {
            let line = room.line.read();
            line.by_user.get(&user).map(|&seq| {
                let ticket = Ticket { concert, user, seq };
                (ticket, line.standing(&ticket, now, &self.cfg))
            })
        };
        // A live place is returned as it is; an ended one (expired, not yet swept) is replaced.
        if let Some((ticket, standing)) = existing {
            if standing != Standing::Expired {
                return Ok(Joined { ticket, standing, created: false });
            }
        }
        let seq = room.line.read().next_seq();
        if let Some((ticket, _)) = existing {
            let why = match room.line.read().active.get(&ticket.seq) {
                Some((_, Active::Claimed { .. })) => EndReason::TimedOut,
                _ => EndReason::NoShow,
            };
            self.journal.ended(concert, vec![ticket.seq], why, now).await?;
            let mut line = room.line.write();
            line.active.remove(&ticket.seq);
            line.by_user.remove(&user);
        }
        self.journal.joined(concert, seq, user, now).await?;
        let mut line = room.line.write();
        line.waiting.push_back(user);
        line.by_user.insert(user, seq);
        let ticket = Ticket { concert, user, seq };
        let standing = line.standing(&ticket, now, &self.cfg);
        Ok(Joined { ticket, standing, created: true })
    }

    async fn standing(&self, ticket: Ticket, now: Millis) -> Result<Standing> {
        let Some(room) = self.existing_room(ticket.concert) else {
            return Ok(Standing::Expired);
        };
        let needs_claim = {
            let line = room.line.read();
            let s = line.standing(&ticket, now, &self.cfg);
            let unclaimed = matches!(line.active.get(&ticket.seq), Some((_, Active::Admitted { .. })));
            if !(unclaimed && matches!(s, Standing::Active { .. })) {
                return Ok(s);
            }
            true
        };
        debug_assert!(needs_claim);
        let _w = room.writer.lock().await;
        // Look again under the writer lock: a tick may have dropped the entry meanwhile.
        let until = match room.line.read().active.get(&ticket.seq) {
            Some((u, Active::Admitted { claim_deadline, until }))
                if *u == ticket.user && *claim_deadline > now && *until > now =>
            {
                *until
            }
            _ => return Ok(room.line.read().standing(&ticket, now, &self.cfg)),
        };
        self.journal.claimed(ticket.concert, ticket.seq, now).await?;
        room.line.write().active.insert(ticket.seq, (ticket.user, Active::Claimed { until }));
        Ok(Standing::Active { until })
    }

    async fn finish(&self, ticket: Ticket, now: Millis) -> Result<()> {
        let Some(room) = self.existing_room(ticket.concert) else {
            return Ok(());
        };
        let _w = room.writer.lock().await;
        let live = matches!(room.line.read().active.get(&ticket.seq), Some((u, _)) if *u == ticket.user);
        if !live {
            return Ok(());
        }
        self.journal.ended(ticket.concert, vec![ticket.seq], EndReason::Paid, now).await?;
        let mut line = room.line.write();
        line.active.remove(&ticket.seq);
        line.by_user.remove(&ticket.user);
        Ok(())
    }

    async fn tick(&self, now: Millis, rate: f64) -> Result<TickReport> {
        let rooms: Vec<_> = self.rooms.read().iter().map(|(c, r)| (*c, r.clone())).collect();
        let mut report = TickReport::default();
        for (concert, room) in rooms {
            self.tick_room(concert, &room, now, rate, &mut report).await?;
        }
        Ok(report)
    }

    async fn stats(&self) -> Result<Vec<RoomStats>> {
        let rooms = self.rooms.read();
        Ok(rooms
            .iter()
            .map(|(c, r)| {
                let line = r.line.read();
                let waiting = line.waiting.len() as u64;
                RoomStats {
                    concert: c.get(),
                    waiting,
                    active: line.active.len() as u64,
                    max_active: self.cfg.max_active,
                    rate_per_sec: line.rate.unwrap_or(0.0),
                    eta_last_seconds: eta_seconds(waiting, line.rate.unwrap_or(self.cfg.admission_rate)),
                }
            })
            .collect())
    }
}
