//! Use cases: each checks the caller's queue token where the contract asks for one, runs its data
//! step in one store transaction, and keeps the caches and metrics in step.

pub mod admission;
pub mod catalog;
pub mod known_users;
pub mod lines;
pub mod rate_limit;
pub mod seat_map;

use crate::domain::booking::{self, PayRequest, PointsChange, PointsOp, PointsRequest, Receipt, Reservation};
use crate::domain::error::Code;
use crate::domain::line_controls::{Closed, Inventory, LineChange, LineSettings, Outflow, Paused};
use crate::domain::new_concert::NewConcert;
use crate::domain::{
    ConcertId, Error, IdempotencyKey, Millis, Points, ReservationId, Result, ScheduleId, SeatNo, UserId,
};
use crate::notices::{Notice, Notices};
use crate::queue::token::TokenSigner;
use crate::queue::{Joined, Standing, Ticket, WaitingRoom};
use crate::store::{Concert, Held, HoldRequest, LedgerEntry, ReleaseRequest, Released, Schedule, Store};
use catalog::CatalogCache;
use seat_map::{SeatChange, SeatMap, SeatMaps};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct BookingConfig {
    pub hold_ttl: Duration,
    /// Set when several instances share the store: seat snapshots older than this are reloaded.
    pub seat_snapshot_max_age: Option<Duration>,
    /// The waiting room's claim window: live updates must reach an admitted person well within it.
    pub claim_window: Duration,
    /// How often one user may ask for a queue token.
    pub join_limit: rate_limit::RateLimit,
    /// Most seats one hold may take.
    pub max_seats_per_order: usize,
    /// The waiting room's `--max-active`, which an operator may override per line.
    pub max_active: u64,
    /// Most active users per unsold seat of a concert.
    pub active_per_seat: f64,
}

pub struct App {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn WaitingRoom>,
    pub notices: Arc<dyn Notices>,
    signer: TokenSigner,
    cfg: BookingConfig,
    catalog: CatalogCache,
    users: known_users::KnownUsers,
    seats: SeatMaps,
    join_limiter: rate_limit::RateLimiter,
    /// Bumped after every admission tick that changed a line, so live subscribers re-read.
    queue_changed: tokio::sync::watch::Sender<u64>,
    /// True until the server stops; event streams end when it turns false.
    streams_open: tokio::sync::watch::Sender<bool>,
    /// The admission rate: fixed, or adapted to the booking endpoints' health.
    pub admission: admission::AdmissionControl,
    /// Each line's operator settings and inventory.
    lines: lines::Lines,
    /// One refresh at a time: a slow one must not overwrite a newer one's reading.
    refreshing: tokio::sync::Mutex<()>,
}

/// A line's draw as published (`domain::draw`).
#[derive(Debug, Clone)]
pub struct PublishedDrawView {
    pub on_sale_at: Millis,
    pub commitment: String,
    /// Revealed once the draw has run.
    pub seed: Option<String>,
    /// The entries, first place first, once the draw has run.
    pub entries: Option<Vec<String>>,
}

/// What an operator sees of one line.
#[derive(Debug, Clone)]
pub struct LineFigures {
    /// What admission may do now.
    pub outflow: Outflow,
    /// What the operator set.
    pub settings: LineSettings,
    pub inventory: Option<Inventory>,
    pub active_per_seat: f64,
    pub on_sale_at: Option<Millis>,
    pub commitment: Option<String>,
    pub stats: crate::queue::RoomStats,
}

/// A schedule with how many of its seats can be held right now.
pub struct ScheduleAvailability {
    pub schedule: Schedule,
    pub available: u32,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn WaitingRoom>,
        notices: Arc<dyn Notices>,
        signer: TokenSigner,
        cfg: BookingConfig,
        admission: admission::AdmissionControl,
    ) -> Self {
        Self {
            store,
            queue,
            notices,
            signer,
            cfg,
            catalog: CatalogCache::default(),
            users: Default::default(),
            seats: SeatMaps::new(cfg.seat_snapshot_max_age),
            join_limiter: rate_limit::RateLimiter::new(cfg.join_limit),
            queue_changed: tokio::sync::watch::channel(0).0,
            streams_open: tokio::sync::watch::channel(true).0,
            admission,
            lines: lines::Lines::new(cfg.max_active, cfg.active_per_seat),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn max_seats_per_order(&self) -> usize {
        self.cfg.max_seats_per_order
    }

    /// Loads the caches that spare the front door a database read per request.
    pub async fn warm_up(&self) -> Result<()> {
        let users = self.users.load(&*self.store).await?;
        tracing::info!(users, "known users loaded");
        // Closed lines are closed again before anyone can join them.
        self.refresh_lines().await
    }

    /// Runs one admission tick and wakes live subscribers when a line moved.
    pub async fn admission_tick(&self) -> Result<crate::queue::TickReport> {
        self.run_due_draws().await;
        let limits = self.lines.limits(self.admission.rate());
        let report = self.queue.tick(Millis::now(), &limits).await?;
        if report != crate::queue::TickReport::default() {
            self.queue_changed.send_modify(|v| *v = v.wrapping_add(1));
        }
        Ok(report)
    }

    /// Holds the draw of every line whose on-sale has started (once; several instances may try,
    /// the waiting room draws once).
    async fn run_due_draws(&self) {
        let now = Millis::now();
        for (concert, seed) in self.lines.due_draws(now) {
            match self.queue.draw(concert, &seed, now).await {
                Ok(given) => {
                    self.lines.mark_drawn(concert);
                    if let Some(n) = given {
                        metrics::counter!("boxoffice_draws_total").increment(1);
                        tracing::info!(%concert, places = n, "on-sale draw held");
                        self.queue_changed.send_modify(|v| *v = v.wrapping_add(1));
                    }
                }
                Err(e) => tracing::warn!(%concert, error = %e, "the on-sale draw failed; retrying next tick"),
            }
        }
    }

    /// The longest a live subscriber may go without re-reading its standing: a quarter of the
    /// claim window, so an admission is always heard in time to claim the slot.
    pub fn live_update_cap(&self) -> Duration {
        (self.cfg.claim_window / 4).max(Duration::from_millis(50))
    }

    /// Ends every live event stream (the server is stopping).
    pub fn stop_streams(&self) {
        self.streams_open.send_replace(false);
    }

    /// A receiver that turns false when live streams must end.
    pub fn streams_open(&self) -> tokio::sync::watch::Receiver<bool> {
        self.streams_open.subscribe()
    }

    /// A receiver that changes whenever a line may have moved.
    pub fn queue_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.queue_changed.subscribe()
    }

    // ---- waiting room ----

    pub async fn join(&self, concert: ConcertId, user: UserId) -> Result<(Joined, String)> {
        // First, before any lookup: a flood must cost as little as possible.
        if let Err(wait) = self.join_limiter.check(user, std::time::Instant::now()) {
            metrics::counter!("boxoffice_rate_limited_total", "action" => "join").increment(1);
            return Err(Error::too_many_requests(
                Code::JoinRateLimited,
                format!("user {user} asked for tokens too often; your place is kept, try again later"),
                wait,
            ));
        }
        self.catalog.concert(&*self.store, concert).await?;
        if !self.users.exists(&*self.store, user).await? {
            return Err(booking::user_not_found(user));
        }
        let outflow = self.lines.outflow(concert, self.admission.rate());
        if let Some(why) = outflow.closed {
            return Err(why.refusal(concert));
        }
        let limits = crate::queue::Limits {
            max_active: outflow.max_active,
            rate: outflow.rate,
            admit: outflow.admission_cap() > 0,
        };
        // An entry id asks for the pre-queue; the waiting room ignores it once the line is drawn,
        // and an instance that saw the draw does not ask (so a queue that lost its state, e.g.
        // Redis restarted without persistence, queues newcomers FIFO instead of pre-queueing them).
        let entry = (self.lines.on_sale_at(concert).is_some() && !self.lines.is_drawn(concert))
            .then(|| self.signer.entry_id(concert, user));
        let joined = self.queue.join(concert, user, Millis::now(), limits, entry).await?;
        if joined.created {
            metrics::counter!("boxoffice_queue_joins_total").increment(1);
        }
        let token = self.signer.sign(&joined.ticket);
        Ok((joined, token))
    }

    /// Leaves the line: the people behind move up at once (and hear it, over their live
    /// streams); leaving while admitted frees the slot for the next person.
    pub async fn leave(&self, ticket: Ticket) -> Result<crate::queue::Left> {
        let left = self.queue.leave(ticket, Millis::now()).await?;
        if left == crate::queue::Left::Active {
            // The turn is over, so a hold of it could never be paid: let its seats go now
            // rather than keep them from everyone until the hold runs out.
            self.release_live_holds(ticket).await?;
        }
        if left != crate::queue::Left::AlreadyOver {
            metrics::counter!("boxoffice_queue_left_total").increment(1);
            self.queue_changed.send_modify(|v| *v = v.wrapping_add(1));
        }
        Ok(left)
    }

    pub fn verify(&self, token: &str) -> Result<Ticket> {
        self.signer.verify(token)
    }

    /// Where the ticket stands; an ended place in a closed line says why it closed.
    pub async fn standing(&self, ticket: Ticket) -> Result<Standing> {
        let standing = self.queue.standing(ticket, Millis::now()).await?;
        self.why_ended(ticket, standing)
    }

    /// The same for the holder's own status poll or live stream, which may be answered from a
    /// copy of the line a moment old (`WaitingRoom::poll`); booking checks use `standing`.
    pub async fn poll(&self, ticket: Ticket) -> Result<Standing> {
        let standing = self.queue.poll(ticket, Millis::now()).await?;
        self.why_ended(ticket, standing)
    }

    fn why_ended(&self, ticket: Ticket, standing: Standing) -> Result<Standing> {
        if standing == Standing::Expired {
            if let Some(why) = self.lines.outflow(ticket.concert, self.admission.rate()).closed {
                return Ok(Standing::Closed(why));
            }
        }
        Ok(standing)
    }

    /// The on-sale start and the draw entry of the ticket's user, when the line has an on-sale.
    pub fn on_sale_of(&self, ticket: &Ticket) -> Option<(Millis, String)> {
        let at = self.lines.on_sale_at(ticket.concert)?;
        Some((at, self.signer.entry_id(ticket.concert, ticket.user)))
    }

    /// The line's draw as published: the commitment before the on-sale; the seed and the order
    /// of entries once it has run.
    pub async fn published_draw(&self, concert: ConcertId) -> Result<PublishedDrawView> {
        self.catalog.concert(&*self.store, concert).await?;
        let (Some(on_sale_at), Some(commitment)) = (self.lines.on_sale_at(concert), self.lines.commitment(concert))
        else {
            return Err(Error::new(Code::DrawNotFound, format!("concert {concert} has no scheduled on-sale")));
        };
        let entries = self.queue.drawn_order(concert).await?;
        let seed = entries.as_ref().and_then(|_| self.lines.seed(concert));
        Ok(PublishedDrawView { on_sale_at, commitment, seed, entries })
    }

    /// Why admission of the concert's line is paused, and when a seat may come back (the first
    /// live hold's end) when it is paused for want of seats.
    pub fn pause_of(&self, concert: ConcertId) -> Option<(Paused, Option<Millis>)> {
        let paused = self.lines.outflow(concert, self.admission.rate()).paused?;
        let back = match paused {
            Paused::NoSeats => self.lines.inventory(concert).and_then(|i| i.next_release_at),
            Paused::ByOperator => None,
        };
        Some((paused, back))
    }

    // ---- the lines' live controls ----

    /// Re-reads every line's settings and inventory, and closes or reopens lines whose state
    /// changed. Runs at start, at least twice a second, and after every operator change.
    pub async fn refresh_lines(&self) -> Result<()> {
        let _one = self.refreshing.lock().await;
        let settings = self.store.line_settings().await?;
        let inventory = self.store.inventory(Millis::now()).await?;
        let seeds = self.store.draw_seeds().await?;
        self.lines.replace(settings, inventory, seeds);
        self.apply_line_transitions().await
    }

    /// Closes lines that sold out or that the operator closed, and reopens reopened ones.
    async fn apply_line_transitions(&self) -> Result<()> {
        let mut result = Ok(());
        for (concert, closed) in self.lines.transitions(self.admission.rate()) {
            let applied = match closed {
                Some(why) => self.queue.close(concert, why, Millis::now()).await.map(|ended| {
                    if why == Closed::SoldOut {
                        metrics::counter!("boxoffice_lines_sold_out_total").increment(1);
                    }
                    tracing::info!(%concert, why = why.as_str(), ended, "line closed");
                }),
                None => self.queue.reopen(concert).await.map(|()| tracing::info!(%concert, "line reopened")),
            };
            if let Err(e) = applied {
                self.lines.unapply(concert);
                result = Err(e);
            } else {
                self.queue_changed.send_modify(|v| *v = v.wrapping_add(1));
            }
        }
        result
    }

    /// An operator's change to a line: stored and logged, then in force here at once and on
    /// every other instance within a second (a notice, and their refresh in any case).
    pub async fn change_line(&self, concert: ConcertId, change: LineChange) -> Result<(LineSettings, LineSettings)> {
        self.catalog.concert(&*self.store, concert).await?;
        if change.on_sale_at.is_some() && self.queue.drawn_order(concert).await?.is_some() {
            return Err(Error::new(Code::OnSaleStarted, "the on-sale draw has run: its start can no longer move"));
        }
        let (before, after) = self.store.change_line(concert, change, Millis::now()).await?;
        metrics::counter!("boxoffice_admin_actions_total", "action" => change.action()).increment(1);
        self.refresh_lines().await?;
        self.tell_others(concert, "a line change").await;
        Ok((before, after))
    }

    /// Tells every other instance that a concert's line changed; they refresh at once. When the
    /// notice cannot go out (Redis down), their periodic refresh still picks the change up.
    async fn tell_others(&self, concert: ConcertId, what: &str) {
        if let Err(e) = self.notices.publish(Notice::concert_changed(concert)).await {
            tracing::warn!(error = %e, "could not tell other instances about {what}");
        }
    }

    /// A line's live figures for the operator.
    pub async fn line_figures(&self, concert: ConcertId) -> Result<LineFigures> {
        self.catalog.concert(&*self.store, concert).await?;
        let stats = self.queue.stats().await?.into_iter().find(|s| s.concert == concert.get()).unwrap_or_default();
        Ok(LineFigures {
            outflow: self.lines.outflow(concert, self.admission.rate()),
            settings: self.lines.settings(concert),
            inventory: self.lines.inventory(concert),
            active_per_seat: self.lines.active_per_seat(),
            on_sale_at: self.lines.on_sale_at(concert),
            commitment: self.lines.commitment(concert),
            stats,
        })
    }

    /// Every known line's outflow and inventory, for metrics.
    pub fn line_states(&self) -> Vec<(ConcertId, Outflow, Option<Inventory>)> {
        self.lines.all(self.admission.rate())
    }

    /// Creates a concert with its dates and seat map; its line opens with the server's defaults.
    pub async fn create_concert(&self, spec: NewConcert) -> Result<(Concert, Vec<Schedule>)> {
        let created = self.store.create_concert(spec, Millis::now()).await?;
        self.catalog.invalidate();
        metrics::counter!("boxoffice_admin_actions_total", "action" => "create_concert").increment(1);
        self.refresh_lines().await?;
        self.tell_others(created.0.id, "a new concert").await;
        Ok(created)
    }

    pub async fn admin_log(&self, limit: u32) -> Result<Vec<crate::store::AdminLogEntry>> {
        self.store.admin_log(limit).await
    }

    /// Booking endpoints need an ACTIVE token: 403 with the position while waiting, 401 once ended.
    pub async fn require_active(&self, ticket: Ticket) -> Result<()> {
        match self.standing(ticket).await? {
            Standing::Active { .. } => Ok(()),
            Standing::Waiting { position, eta_seconds, retry_after } => {
                Err(Error::waiting(position, eta_seconds, retry_after))
            }
            Standing::Expired => Err(Error::token_expired()),
            Standing::Closed(why) => Err(why.refusal(ticket.concert)),
            Standing::PreQueue => {
                let starts = self.lines.on_sale_at(ticket.concert).unwrap_or(Millis(0));
                let wait = Millis::now().secs_until(starts).clamp(1, 30) as u64;
                Err(Error::new(Code::NotOnSaleYet, format!("the on-sale starts at {}", starts.rfc3339()))
                    .with_retry_after(wait))
            }
        }
    }

    fn check_concert(ticket: &Ticket, concert: ConcertId) -> Result<()> {
        if ticket.concert == concert {
            Ok(())
        } else {
            Err(Error::new(
                Code::TokenWrongConcert,
                format!("this token is for concert {}, not {concert}", ticket.concert),
            ))
        }
    }

    // ---- catalog and seats ----

    pub async fn concerts(&self) -> Result<Vec<Concert>> {
        Ok(self.catalog.get(&*self.store).await?.concerts.clone())
    }

    pub async fn schedules(&self, ticket: Ticket, concert: ConcertId) -> Result<Vec<ScheduleAvailability>> {
        self.catalog.concert(&*self.store, concert).await?;
        Self::check_concert(&ticket, concert)?;
        self.require_active(ticket).await?;
        let catalog = self.catalog.get(&*self.store).await?;
        let now = Millis::now();
        let mut out = Vec::new();
        for id in catalog.by_concert.get(&concert).into_iter().flatten() {
            let map = self.seats.get(&*self.store, *id, now).await?;
            out.push(ScheduleAvailability { schedule: catalog.schedules[id].clone(), available: map.available });
        }
        Ok(out)
    }

    pub async fn seats(&self, ticket: Ticket, schedule: ScheduleId) -> Result<Arc<SeatMap>> {
        let s = self.catalog.schedule(&*self.store, schedule).await?;
        Self::check_concert(&ticket, s.concert)?;
        self.require_active(ticket).await?;
        self.seats.get(&*self.store, schedule, Millis::now()).await
    }

    // ---- booking ----

    /// Holds 1 to `max_seats_per_order` seats of one date, all or none. Holding again exactly
    /// what one holds answers that hold again (`Held::again`).
    pub async fn hold(&self, ticket: Ticket, schedule: ScheduleId, seats: Vec<SeatNo>) -> Result<Held> {
        let seats = booking::order_seats(seats, self.cfg.max_seats_per_order)?;
        let s = self.catalog.schedule(&*self.store, schedule).await?;
        Self::check_concert(&ticket, s.concert)?;
        if let Some(beyond) = seats.iter().find(|n| n.get() > s.seat_count) {
            return Err(booking::seat_not_found(schedule, *beyond));
        }
        self.require_active(ticket).await?;
        let now = Millis::now();
        // A crowd on one seat (the hot-seat storm) would otherwise cost a write per attempt. A
        // seat the user holds themself is left to the store, which answers the hold again.
        let taken: Vec<i32> =
            seats.iter().filter(|n| self.seats.known_taken(schedule, **n, ticket.user, now)).map(|n| n.get()).collect();
        if !taken.is_empty() {
            metrics::counter!("boxoffice_holds_refused_early_total").increment(1);
            return Err(booking::seats_taken(&seats, taken));
        }
        let req = HoldRequest {
            user: ticket.user,
            concert: s.concert,
            schedule,
            seats,
            now,
            expires_at: now.plus(self.cfg.hold_ttl),
        };
        match self.store.hold(req).await {
            Ok(held) => {
                let r = &held.reservation;
                for seat in &r.seats {
                    let change = SeatChange::Held { until: r.expires_at, reservation: r.id, holder: r.user };
                    self.seats.apply(schedule, seat.seat_no, change);
                }
                if !held.again {
                    self.lines.held(s.concert, r.seats.len() as u64, r.expires_at);
                    metrics::counter!("boxoffice_holds_created_total").increment(1);
                    metrics::counter!("boxoffice_seats_held_total").increment(r.seats.len() as u64);
                }
                Ok(held)
            }
            Err(e) => {
                if e.code == Code::SeatUnavailable {
                    // Someone else (maybe another instance) took it: our snapshot may be behind.
                    self.seats.invalidate(schedule);
                }
                Err(e)
            }
        }
    }

    /// Lets go of a hold: its seats are free at once, here and (through a notice) on every
    /// other instance. Any token of its owner will do, so a fan can let go after their turn.
    pub async fn release(&self, ticket: Ticket, reservation: ReservationId) -> Result<Released> {
        let released =
            self.store.release(ReleaseRequest { user: ticket.user, reservation, now: Millis::now() }).await?;
        if released.freed {
            let r = &released.reservation;
            for seat in &r.seats {
                self.seats.apply(r.schedule, seat.seat_no, SeatChange::Released);
            }
            if let Ok(s) = self.catalog.schedule(&*self.store, r.schedule).await {
                self.lines.released(s.concert, r.seats.len() as u64);
            }
            metrics::counter!("boxoffice_holds_released_total").increment(1);
            // Other instances' snapshots show the seats held: they must hear of it. If Redis is
            // down they still reload their snapshots within their maximum age.
            if let Err(e) = self.notices.publish(Notice::seats_freed(r.schedule)).await {
                tracing::warn!(error = %e, "could not tell other instances about released seats");
            }
        }
        Ok(released)
    }

    async fn release_live_holds(&self, ticket: Ticket) -> Result<()> {
        let catalog = self.catalog.get(&*self.store).await?;
        let now = Millis::now();
        for r in self.store.reservations_of(ticket.user, 20).await? {
            let of_concert = catalog.schedules.get(&r.schedule).is_some_and(|s| s.concert == ticket.concert);
            if of_concert && r.is_live_hold(now) {
                self.release(ticket, r.id).await?;
            }
        }
        Ok(())
    }

    /// The reservations and purchases of the token's user, newest first. Any validly signed
    /// token proves who asks, so a fan sees their tickets after paying ended the token.
    pub async fn my_reservations(&self, ticket: Ticket, limit: u32) -> Result<Vec<Reservation>> {
        self.store.reservations_of(ticket.user, limit).await
    }

    /// Applies notices from other instances to this one's caches, until the server stops.
    pub fn spawn_notice_listener(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        let mut feed = self.notices.subscribe();
        tokio::spawn(async move {
            loop {
                match feed.recv().await {
                    Ok(Notice::SeatsFreed { schedule }) => app.seats.invalidate(ScheduleId::from_trusted(schedule)),
                    Ok(Notice::ConcertChanged { .. }) => {
                        app.catalog.invalidate();
                        if let Err(e) = app.refresh_lines().await {
                            tracing::warn!(error = %e, "refreshing lines after a notice failed");
                        }
                    }
                    Ok(Notice::Resync) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        app.seats.invalidate_all()
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }

    pub async fn reservation(&self, ticket: Ticket, id: ReservationId) -> Result<Reservation> {
        self.require_active(ticket).await?;
        let r = self
            .store
            .reservation(id)
            .await?
            .ok_or_else(|| booking::reservation_not_found(id))?
            .owned_by(ticket.user)?;
        Ok(r)
    }

    /// Pays with points. A replay of an Idempotency-Key answers as the first call did, even after
    /// the payment ended the token; anything new needs an ACTIVE token.
    pub async fn pay(&self, ticket: Ticket, reservation: ReservationId, key: IdempotencyKey) -> Result<Receipt> {
        if let Err(e) = self.require_active(ticket).await {
            // The token may have ended because this very payment went through (and, if it sold
            // the last seat, closed the line): answer the replay.
            if matches!(e.code, Code::TokenExpired | Code::SoldOut | Code::LineClosed) {
                if let Some(receipt) = self.store.payment_replay(ticket.user, &key).await? {
                    booking::check_replay(&receipt.reservation_id.to_string(), &reservation.to_string())?;
                    return Ok(receipt);
                }
            }
            return Err(e);
        }
        let r = self
            .store
            .reservation(reservation)
            .await?
            .ok_or_else(|| booking::reservation_not_found(reservation))?
            .owned_by(ticket.user)?;
        let s = self.catalog.schedule(&*self.store, r.schedule).await?;
        Self::check_concert(&ticket, s.concert)?;
        let now = Millis::now();
        let receipt = self.store.pay(PayRequest { user: ticket.user, reservation, key, now }).await?;
        for seat in &r.seats {
            self.seats.apply(r.schedule, seat.seat_no, SeatChange::Sold);
        }
        metrics::counter!("boxoffice_payments_total").increment(1);
        metrics::counter!("boxoffice_points_used_total").increment(receipt.amount as u64);
        self.queue.finish(ticket, now).await?;
        // The last seat sold closes the line at once, here; others hear of it by notice. Under
        // the refresh lock, so a refresh that read the store before this sale cannot undo it.
        let refreshing = self.refreshing.lock().await;
        self.lines.sold(s.concert, r.seats.len() as u64);
        let sold_out = self.lines.outflow(s.concert, self.admission.rate()).closed == Some(Closed::SoldOut);
        if sold_out {
            if let Err(e) = self.apply_line_transitions().await {
                tracing::warn!(error = %e, "closing a sold-out line failed; the next refresh retries");
            }
        }
        drop(refreshing);
        if sold_out {
            self.tell_others(s.concert, "a sell-out").await;
        }
        Ok(receipt)
    }

    // ---- points ----

    pub async fn balance(&self, user: UserId) -> Result<Points> {
        self.store.balance(user).await
    }

    pub async fn move_points(
        &self,
        user: UserId,
        op: PointsOp,
        amount: Points,
        key: Option<IdempotencyKey>,
    ) -> Result<PointsChange> {
        let change = self.store.move_points(PointsRequest { user, op, amount, key, now: Millis::now() }).await?;
        let name = match op {
            PointsOp::Charge => "boxoffice_points_charged_total",
            PointsOp::Use => "boxoffice_points_used_total",
        };
        metrics::counter!(name).increment(amount.get() as u64);
        Ok(change)
    }

    pub async fn history(&self, user: UserId, limit: u32) -> Result<Vec<LedgerEntry>> {
        self.store.history(user, limit).await
    }
}
