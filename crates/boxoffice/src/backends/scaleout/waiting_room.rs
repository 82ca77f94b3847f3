//! The scale-out waiting room: every line lives in Redis and every operation is one Lua script
//! call (one round trip), atomic across all instances. Keys are `<prefix>c:<concert>:<part>`.
//! Status polls from people waiting are the exception: each instance answers them from its own
//! view of the line's front (`line_view`), refreshed by every admission tick.

use super::line_view::{self, Front, LineViews, Local};
use crate::audit::AuditCheck;
use crate::domain::error::Code;
use crate::domain::line_controls::Closed;
use crate::domain::queue_policy::{eta_seconds, retry_after_seconds};
use crate::domain::{ConcertId, Error, Millis, Result, UserId};
use crate::queue::{
    Joined, Left, Limits, LineLimits, QueueConfig, RoomStats, Standing, TickReport, Ticket, WaitingRoom,
};
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::Script;
use std::future::Future;
use std::time::Duration;

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(include_str!("lua/common.lua"), "\n", include_str!($file)))
    };
}

pub struct RedisQueue {
    cfg: QueueConfig,
    client: redis::Client,
    /// The shared multiplexed connection; dropped on any connection error or time-out so the
    /// next call dials afresh. (A fault drill showed redis's own ConnectionManager staying in its
    /// reconnect back-off long after Redis came back under load.)
    conn: parking_lot::Mutex<Option<MultiplexedConnection>>,
    prefix: String,
    timeout: Duration,
    join: Script,
    status: Script,
    finish: Script,
    leave: Script,
    tick: Script,
    stats: Script,
    close: Script,
    draw: Script,
    views: LineViews,
    /// `boxoffice_queue_status_total{answered}`, made once: polls are the hot path.
    polls_local: metrics::Counter,
    polls_redis: metrics::Counter,
}

/// admitted, no-shows, timed out, then the line's front for the local view (tick.lua).
type TickReply = (u64, u64, u64, u64, i64, i64, i64, i64, Vec<u64>, u64);

fn redis_err(e: redis::RedisError) -> Error {
    if e.kind() == redis::ErrorKind::ResponseError || e.kind() == redis::ErrorKind::TypeError {
        Error::internal(format!("redis: {e}"))
    } else {
        Error::unavailable("queue", e)
    }
}

impl RedisQueue {
    pub async fn connect(url: &str, prefix: &str, cfg: QueueConfig, timeout: Duration) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| Error::new(Code::InvalidRedisUrl, e.to_string()))?;
        let me = Self {
            cfg,
            client,
            conn: parking_lot::Mutex::new(None),
            prefix: prefix.to_owned(),
            timeout,
            join: script!("lua/join.lua"),
            status: script!("lua/status.lua"),
            finish: script!("lua/finish.lua"),
            leave: script!("lua/leave.lua"),
            tick: script!("lua/tick.lua"),
            stats: script!("lua/stats.lua"),
            close: script!("lua/close.lua"),
            draw: script!("lua/draw.lua"),
            views: LineViews::default(),
            polls_local: metrics::counter!("boxoffice_queue_status_total", "answered" => "local"),
            polls_redis: metrics::counter!("boxoffice_queue_status_total", "answered" => "redis"),
        };
        // Fail at start if Redis cannot be reached at all; later outages are answered with 503.
        me.connection().await?;
        Ok(me)
    }

    async fn connection(&self) -> Result<MultiplexedConnection> {
        if let Some(c) = self.conn.lock().clone() {
            return Ok(c);
        }
        let c = self.bounded(self.client.get_multiplexed_async_connection()).await?;
        *self.conn.lock() = Some(c.clone());
        Ok(c)
    }

    /// Runs a command on the shared connection; a connection error or time-out drops it.
    async fn on_conn<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection().await?;
        let result = self.bounded(f(conn)).await;
        if result.as_ref().is_err_and(|e| e.kind() == crate::domain::error::ErrorKind::Unavailable) {
            *self.conn.lock() = None;
        }
        result
    }

    fn key(&self, concert: ConcertId, part: &str) -> String {
        format!("{}c:{}:{}", self.prefix, concert, part)
    }

    fn keys(&self, concert: ConcertId, parts: &[&str]) -> Vec<String> {
        parts
            .iter()
            .map(|p| if *p == "rooms" { format!("{}rooms", self.prefix) } else { self.key(concert, p) })
            .collect()
    }

    /// Every call gives up after the timeout: a Redis that is down or stalled means 503, not a hang.
    async fn bounded<T>(&self, f: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r.map_err(redis_err),
            Err(_) => Err(Error::unavailable("queue", "Redis did not answer in time")),
        }
    }

    async fn invoke<T: redis::FromRedisValue>(
        &self,
        name: &'static str,
        script: &Script,
        keys: Vec<String>,
        args: &[String],
    ) -> Result<T> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        for a in args {
            inv.arg(a);
        }
        let started = std::time::Instant::now();
        let result = self.on_conn(|mut conn| async move { inv.invoke_async(&mut conn).await }).await;
        metrics::histogram!("boxoffice_redis_call_duration_seconds", "script" => name)
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("boxoffice_redis_errors_total").increment(1);
        }
        result
    }

    fn waiting(&self, seq: u64, head: u64, rate_milli: i64) -> Standing {
        let position = seq.saturating_sub(head).max(1);
        // -1 means not measured yet: use the configured pace.
        let rate = if rate_milli >= 0 { rate_milli as f64 / 1000.0 } else { self.cfg.admission_rate };
        let eta = eta_seconds(position, rate);
        Standing::Waiting { position, eta_seconds: eta, retry_after: retry_after_seconds(eta, self.cfg.claim_window) }
    }

    async fn rooms(&self) -> Result<Vec<ConcertId>> {
        let key = format!("{}rooms", self.prefix);
        let ids: Vec<i64> = self
            .on_conn(|mut conn| async move { redis::cmd("SMEMBERS").arg(key).query_async(&mut conn).await })
            .await?;
        Ok(ids.into_iter().filter_map(|i| ConcertId::parse(i).ok()).collect())
    }
}

#[async_trait]
impl WaitingRoom for RedisQueue {
    async fn join(
        &self,
        concert: ConcertId,
        user: UserId,
        _now: Millis,
        limits: Limits,
        entry: Option<String>,
    ) -> Result<Joined> {
        let keys = self.keys(
            concert,
            &[
                "seq", "head", "wait", "act", "users", "due", "rooms", "bucket", "log", "max", "left", "closed",
                "drawn", "pre",
            ],
        );
        let args = [
            concert.to_string(),
            user.to_string(),
            limits.max_active.to_string(),
            limits.rate.to_string(),
            self.cfg.claim_window.as_millis().to_string(),
            self.cfg.active_ttl.as_millis().to_string(),
            u8::from(limits.admit).to_string(),
            entry.unwrap_or_default(),
        ];
        let (seq, created, state, until, head, rate): (u64, i64, String, i64, u64, i64) =
            self.invoke("join", &self.join, keys, &args).await?;
        if let Some(why) = Closed::parse(&state) {
            return Err(why.refusal(concert));
        }
        let ticket = Ticket { concert, user, seq };
        let standing = match state.as_str() {
            "ACTIVE" => Standing::Active { until: Millis(until) },
            "PRE_QUEUE" => Standing::PreQueue,
            _ => self.waiting(seq, head, rate),
        };
        Ok(Joined { ticket, standing, created: created == 1 })
    }

    async fn poll(&self, t: Ticket, now: Millis) -> Result<Standing> {
        if let Local::Waiting { passed, rate_milli } = self.views.look(t.concert, t.seq, std::time::Instant::now()) {
            self.polls_local.increment(1);
            return Ok(self.waiting(t.seq, passed, rate_milli));
        }
        self.polls_redis.increment(1);
        self.standing(t, now).await
    }

    async fn standing(&self, t: Ticket, _now: Millis) -> Result<Standing> {
        let keys = self.keys(t.concert, &["head", "wait", "act", "due", "bucket", "left", "users", "pre"]);
        let (state, until, head, rate, seq): (String, i64, u64, i64, u64) =
            self.invoke("status", &self.status, keys, &[t.seq.to_string(), t.user.to_string()]).await?;
        Ok(match state.as_str() {
            "PRE_QUEUE" => Standing::PreQueue,
            "WAITING" => self.waiting(seq, head, rate),
            "ACTIVE" => Standing::Active { until: Millis(until) },
            _ => Standing::Expired,
        })
    }

    async fn finish(&self, t: Ticket, _now: Millis) -> Result<()> {
        let keys = self.keys(t.concert, &["act", "users", "due"]);
        let _: i64 = self.invoke("finish", &self.finish, keys, &[t.seq.to_string(), t.user.to_string()]).await?;
        Ok(())
    }

    async fn leave(&self, t: Ticket, _now: Millis) -> Result<Left> {
        let keys = self.keys(t.concert, &["wait", "act", "users", "due", "left", "pre", "leftv"]);
        let was: String = self.invoke("leave", &self.leave, keys, &[t.seq.to_string(), t.user.to_string()]).await?;
        Ok(match was.as_str() {
            "WAITING" => {
                self.views.left(t.concert, t.seq);
                Left::Waiting
            }
            "ACTIVE" => Left::Active,
            _ => Left::AlreadyOver,
        })
    }

    async fn tick(&self, _now: Millis, limits: &LineLimits) -> Result<TickReport> {
        let mut report = TickReport::default();
        for concert in self.rooms().await? {
            let limits = limits.of(concert);
            let args = [
                limits.max_active.to_string(),
                limits.rate.to_string(),
                self.cfg.claim_window.as_millis().to_string(),
                self.cfg.active_ttl.as_millis().to_string(),
                u8::from(limits.admit).to_string(),
                line_view::MAX_LEFT.to_string(),
                self.views.left_version(concert).map_or_else(|| "-".to_owned(), |v| v.to_string()),
            ];
            let keys = self.keys(
                concert,
                &["seq", "head", "wait", "act", "users", "due", "bucket", "log", "max", "left", "closed", "leftv"],
            );
            let at = std::time::Instant::now();
            let (admitted, no_shows, timed_out, head, rate_milli, closed, left_version, changed, left, issued): TickReply =
                self.invoke("tick", &self.tick, keys, &args).await?;
            // However far admission gets before the next tick, it admits at most the bucket's
            // carry (one second's worth) and a second's pace at this instance's limits: anyone
            // further back is still waiting (architecture.md names the exceptions).
            let margin = if limits.admit { 2 * limits.rate.max(1.0).ceil() as u64 } else { 0 };
            let front = Front { head, issued, rate_milli, closed: closed == 1, left_version, margin, at };
            self.views.refresh(concert, front, (changed == 1).then_some(left));
            report.admitted += admitted;
            report.no_shows += no_shows;
            report.timed_out += timed_out;
        }
        Ok(report)
    }

    async fn close(&self, concert: ConcertId, why: Closed, _now: Millis) -> Result<u64> {
        let keys = self.keys(concert, &["seq", "head", "wait", "users", "left", "closed", "log", "pre"]);
        // Before and after: a tick's reply that lands in between would bring the line back.
        self.views.forget(concert);
        let ended = self.invoke("close", &self.close, keys, &[why.as_str().to_owned()]).await;
        self.views.forget(concert);
        ended
    }

    async fn reopen(&self, concert: ConcertId) -> Result<()> {
        let key = self.key(concert, "closed");
        self.views.forget(concert);
        let _: i64 =
            self.on_conn(|mut conn| async move { redis::cmd("DEL").arg(key).query_async(&mut conn).await }).await?;
        Ok(())
    }

    async fn draw(&self, concert: ConcertId, seed: &str, _now: Millis) -> Result<Option<u64>> {
        // Every instance computes the same order from the same seed; the script gives places
        // once, and refuses when the pre-queue changed since it was read (then read it again).
        for _ in 0..20 {
            let pre_key = self.key(concert, "pre");
            let pre: Vec<(String, String)> = self
                .on_conn(|mut conn| async move { redis::cmd("HGETALL").arg(pre_key).query_async(&mut conn).await })
                .await?;
            let user_of: std::collections::HashMap<&str, &str> =
                pre.iter().map(|(u, e)| (e.as_str(), u.as_str())).collect();
            let mut args = Vec::with_capacity(pre.len() * 2);
            for entry in crate::domain::draw::order(seed, pre.iter().map(|(_, e)| e.clone())) {
                args.push(user_of[entry.as_str()].to_owned());
                args.push(entry);
            }
            let keys = self.keys(concert, &["seq", "users", "wait", "pre", "drawn", "order"]);
            self.views.forget(concert);
            let given: i64 = self.invoke("draw", &self.draw, keys, &args).await?;
            self.views.forget(concert);
            match given {
                -1 => return Ok(None),
                -2 => continue,
                n => return Ok(Some(n as u64)),
            }
        }
        Err(Error::unavailable("queue", "the pre-queue kept changing during the draw"))
    }

    async fn drawn_order(&self, concert: ConcertId) -> Result<Option<Vec<String>>> {
        let (drawn, order) = (self.key(concert, "drawn"), self.key(concert, "order"));
        let (exists, entries): (bool, Vec<String>) = self
            .on_conn(
                |mut conn| async move { redis::pipe().exists(drawn).lrange(order, 0, -1).query_async(&mut conn).await },
            )
            .await?;
        Ok(exists.then_some(entries))
    }

    async fn stats(&self) -> Result<Vec<RoomStats>> {
        let mut out = Vec::new();
        for concert in self.rooms().await? {
            let keys = self.keys(concert, &["seq", "head", "act", "bucket", "left", "pre"]);
            let (waiting, active, rate, pre_queue): (u64, u64, i64, u64) =
                self.invoke("stats", &self.stats, keys, &[]).await?;
            let measured = (rate >= 0).then(|| rate as f64 / 1000.0);
            out.push(RoomStats {
                concert: concert.get(),
                waiting,
                active,
                max_active: self.cfg.max_active,
                rate_per_sec: measured.unwrap_or(0.0),
                eta_last_seconds: eta_seconds(waiting, measured.unwrap_or(self.cfg.admission_rate)),
                pre_queue,
            });
        }
        Ok(out)
    }

    async fn audit(&self) -> Result<Vec<AuditCheck>> {
        let mut fifo = Vec::new();
        let mut limit = Vec::new();
        for concert in self.rooms().await? {
            let (log_key, act_key, max_key, head_key, wait_key) = (
                self.key(concert, "log"),
                self.key(concert, "act"),
                self.key(concert, "max"),
                self.key(concert, "head"),
                self.key(concert, "wait"),
            );
            let (log, active, max, head, waiting): (Vec<String>, u64, Option<u64>, Option<u64>, Vec<u64>) = self
                .on_conn(|mut conn| async move {
                    redis::pipe()
                        .lrange(log_key, 0, -1)
                        .hlen(act_key)
                        .get(max_key)
                        .get(head_key)
                        .hkeys(wait_key)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
            // Batches must follow each other without gaps or overlap, in time order, within the limit.
            let mut expect_first: Option<u64> = None;
            let mut last_at = 0u64;
            for entry in &log {
                // A closed line passed places without admitting them (close.lua).
                if let Some(passed) = entry.strip_prefix("x:") {
                    let f: Vec<u64> = passed.split(':').filter_map(|x| x.parse().ok()).collect();
                    match f[..] {
                        [first, last, at] if expect_first.is_none_or(|e| e == first) && last >= first => {
                            expect_first = Some(last + 1);
                            last_at = last_at.max(at);
                        }
                        _ => fifo.push(format!("concert {concert}: closing entry {entry:?} out of order")),
                    }
                    continue;
                }
                let f: Vec<u64> = entry.split(':').filter_map(|x| x.parse().ok()).collect();
                let [first, last, at, active_after, max_active] = f[..] else {
                    fifo.push(format!("concert {concert}: unreadable admission log entry {entry:?}"));
                    continue;
                };
                if expect_first.is_some_and(|e| e != first) || last < first || at < last_at {
                    fifo.push(format!("concert {concert}: admission batch {first}..{last} out of order"));
                }
                if active_after > max_active {
                    limit.push(format!(
                        "concert {concert}: {active_after} active after admitting {first}..{last}, limit {max_active}"
                    ));
                }
                expect_first = Some(last + 1);
                last_at = at;
            }
            let head = head.unwrap_or(0);
            if let Some(s) = waiting.iter().find(|s| **s <= head) {
                fifo.push(format!("concert {concert}: place {s} still waiting behind admitted place {head}"));
            }
            if let Some(max) = max.filter(|m| active > *m) {
                limit.push(format!("concert {concert}: {active} active now, limit {max}"));
            }
        }
        Ok(vec![
            AuditCheck { name: "admission_is_fifo", ok: fifo.is_empty(), violations: fifo },
            AuditCheck { name: "active_users_within_limit", ok: limit.is_empty(), violations: limit },
        ])
    }
}
