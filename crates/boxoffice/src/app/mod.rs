//! Use cases: each checks the caller's queue token where the contract asks for one, runs its data
//! step in one store transaction, and keeps the caches and metrics in step.

pub mod admission;
pub mod catalog;
pub mod known_users;
pub mod rate_limit;
pub mod seat_map;

use crate::domain::booking::{self, PayRequest, PointsChange, PointsOp, PointsRequest, Receipt, Reservation};
use crate::domain::error::Code;
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
        }
    }

    pub fn max_seats_per_order(&self) -> usize {
        self.cfg.max_seats_per_order
    }

    /// Loads the caches that spare the front door a database read per request.
    pub async fn warm_up(&self) -> Result<()> {
        let users = self.users.load(&*self.store).await?;
        tracing::info!(users, "known users loaded");
        Ok(())
    }

    /// Runs one admission tick and wakes live subscribers when a line moved.
    pub async fn admission_tick(&self) -> Result<crate::queue::TickReport> {
        let report = self.queue.tick(Millis::now(), self.admission.rate()).await?;
        if report != crate::queue::TickReport::default() {
            self.queue_changed.send_modify(|v| *v = v.wrapping_add(1));
        }
        Ok(report)
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
        let joined = self.queue.join(concert, user, Millis::now()).await?;
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

    pub async fn standing(&self, ticket: Ticket) -> Result<Standing> {
        self.queue.standing(ticket, Millis::now()).await
    }

    /// Booking endpoints need an ACTIVE token: 403 with the position while waiting, 401 once ended.
    pub async fn require_active(&self, ticket: Ticket) -> Result<()> {
        match self.standing(ticket).await? {
            Standing::Active { .. } => Ok(()),
            Standing::Waiting { position, eta_seconds, retry_after } => {
                Err(Error::waiting(position, eta_seconds, retry_after))
            }
            Standing::Expired => Err(Error::token_expired()),
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
                    Ok(Notice::ConcertChanged { .. }) => {}
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
            // The token may have ended because this very payment went through: answer the replay.
            if e.code == Code::TokenExpired {
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
