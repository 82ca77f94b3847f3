//! Per-user request budgets: a token bucket per user, so a few people (or scripts) flooding an
//! endpoint get 429 with Retry-After while everybody else is served as before.
//!
//! Budgets are per instance: behind N instances a user may reach N times the rate. That bounds
//! the damage of a flood from a few users, which is the point; per-address limits belong in the
//! proxy (deploy/nginx/nginx.conf).

use crate::domain::UserId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second per user; 0 turns the limit off.
    pub per_second: f64,
    /// Requests a user may make at once after being idle.
    pub burst: u32,
}

impl RateLimit {
    pub const OFF: RateLimit = RateLimit { per_second: 0.0, burst: 0 };
}

const SHARDS: usize = 16;
/// A shard this large drops its idle (full) buckets, so memory stays bounded by active users.
const PRUNE_AT: usize = 4096;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    limit: RateLimit,
    shards: Vec<Mutex<HashMap<UserId, Bucket>>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self { limit, shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }

    /// Takes one request from `user`'s budget, or says how long until one is available.
    pub fn check(&self, user: UserId, now: Instant) -> Result<(), Duration> {
        let RateLimit { per_second, burst } = self.limit;
        if per_second <= 0.0 {
            return Ok(());
        }
        let cap = f64::from(burst.max(1));
        let refill = |b: &Bucket| (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second).min(cap);
        let mut shard = self.shards[user.get() as usize % SHARDS].lock();
        if shard.len() >= PRUNE_AT {
            shard.retain(|_, b| refill(b) < cap);
        }
        let b = shard.entry(user).or_insert(Bucket { tokens: cap, at: now });
        b.tokens = refill(b);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: i64) -> UserId {
        UserId::parse(n).unwrap()
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let l = RateLimiter::new(RateLimit { per_second: 2.0, burst: 3 });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check(user(1), t0).is_ok());
        }
        let wait = l.check(user(1), t0).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500), "{wait:?}");
        // Other users have their own budget.
        assert!(l.check(user(2), t0).is_ok());
        // Half a second later one more request is allowed, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.check(user(1), t1).is_ok());
        assert!(l.check(user(1), t1).is_err());
    }

    #[test]
    fn off_never_refuses() {
        let l = RateLimiter::new(RateLimit::OFF);
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| l.check(user(1), t0).is_ok()));
    }

    #[test]
    fn idle_buckets_are_pruned() {
        let l = RateLimiter::new(RateLimit { per_second: 100.0, burst: 1 });
        let t0 = Instant::now();
        for n in 1..=(SHARDS * PRUNE_AT * 2) as i64 {
            let _ = l.check(user(n), t0 + Duration::from_millis(n as u64));
        }
        let kept: usize = l.shards.iter().map(|s| s.lock().len()).sum();
        assert!(kept <= SHARDS * PRUNE_AT, "{kept} buckets kept");
    }
}
