//! Adaptive admission: the waiting room lets people in as fast as the booking endpoints can
//! serve them within their SLO. Booking requests are observed into per-second histograms; once a
//! second the controller reads the last window and steps the rate with AIMD
//! (`domain::queue_policy::next_admission_rate`).

use crate::domain::queue_policy::{next_admission_rate, AdmissionSlo, Health};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const BUCKETS: usize = 100;
/// Bucket i holds latencies up to 0.1 ms × 1.15^i (up to ~100 s).
fn bucket_of(seconds: f64) -> usize {
    let ms = (seconds * 1000.0).max(0.1);
    ((ms / 0.1).ln() / 1.15f64.ln()).ceil().clamp(0.0, (BUCKETS - 1) as f64) as usize
}
fn upper_bound(i: usize) -> f64 {
    0.1 * 1.15f64.powi(i as i32) / 1000.0
}

struct Second {
    at: u64,
    counts: [u32; BUCKETS],
    requests: u64,
    errors: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct AdaptiveConfig {
    pub slo: AdmissionSlo,
    /// How far back the controller looks.
    pub window: Duration,
}

pub struct AdmissionControl {
    cfg: Option<AdaptiveConfig>,
    fixed_rate: f64,
    started: Instant,
    state: Mutex<State>,
}

struct State {
    seconds: VecDeque<Second>,
    rate: f64,
    last_step: Option<Instant>,
}

impl AdmissionControl {
    /// `cfg` None means a fixed rate.
    pub fn new(fixed_rate: f64, cfg: Option<AdaptiveConfig>) -> Self {
        let rate = cfg.map_or(fixed_rate, |c| c.slo.max_rate);
        Self {
            cfg,
            fixed_rate,
            started: Instant::now(),
            state: Mutex::new(State { seconds: VecDeque::new(), rate, last_step: None }),
        }
    }

    /// Records one answered booking request.
    pub fn observe(&self, seconds: f64, server_error: bool) {
        let Some(cfg) = self.cfg else { return };
        let now = self.started.elapsed().as_secs();
        let mut st = self.state.lock();
        if st.seconds.back().is_none_or(|s| s.at != now) {
            st.seconds.push_back(Second { at: now, counts: [0; BUCKETS], requests: 0, errors: 0 });
            let keep = cfg.window.as_secs().max(1) + 1;
            while st.seconds.front().is_some_and(|s| s.at + keep <= now) {
                st.seconds.pop_front();
            }
        }
        let s = st.seconds.back_mut().expect("pushed above");
        s.counts[bucket_of(seconds)] += 1;
        s.requests += 1;
        s.errors += server_error as u64;
    }

    fn health(&self, st: &State, window: Duration) -> Health {
        let now = self.started.elapsed().as_secs();
        let from = now.saturating_sub(window.as_secs().max(1));
        let mut counts = [0u64; BUCKETS];
        let (mut requests, mut errors) = (0, 0);
        for s in st.seconds.iter().filter(|s| s.at >= from) {
            for (c, n) in counts.iter_mut().zip(s.counts.iter()) {
                *c += *n as u64;
            }
            requests += s.requests;
            errors += s.errors;
        }
        let target = (requests as f64 * 0.99).ceil() as u64;
        let mut seen = 0;
        let mut p99 = 0.0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target && requests > 0 {
                p99 = upper_bound(i);
                break;
            }
        }
        Health {
            requests,
            p99_seconds: p99,
            error_rate: if requests > 0 { errors as f64 / requests as f64 } else { 0.0 },
        }
    }

    /// The admission rate to use now; adaptive control steps it at most once a second.
    pub fn rate(&self) -> f64 {
        let Some(cfg) = self.cfg else { return self.fixed_rate };
        let mut st = self.state.lock();
        if st.last_step.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return st.rate;
        }
        st.last_step = Some(Instant::now());
        let health = self.health(&st, cfg.window);
        let (next, why) = next_admission_rate(st.rate, health, cfg.slo);
        if next != st.rate {
            metrics::counter!("boxoffice_admission_rate_changes_total", "reason" => why.as_str()).increment(1);
            tracing::info!(
                from = st.rate,
                to = next,
                reason = why.as_str(),
                p99 = health.p99_seconds,
                errors = health.error_rate,
                "admission rate changed"
            );
        }
        st.rate = next;
        metrics::gauge!("boxoffice_admission_target_rate").set(next);
        metrics::gauge!("boxoffice_admission_booking_p99_seconds").set(health.p99_seconds);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_latencies() {
        for ms in [0.05, 0.3, 1.0, 7.5, 120.0, 2500.0] {
            let s = ms / 1000.0;
            let i = bucket_of(s);
            assert!(upper_bound(i) >= s * 0.999, "{ms} ms in bucket {i} up to {}", upper_bound(i));
            assert!(i == 0 || upper_bound(i - 1) < s * 1.001, "{ms} ms is in the smallest bucket that holds it");
        }
    }

    #[test]
    fn reads_p99_and_errors_of_the_window() {
        let cfg = AdaptiveConfig {
            slo: AdmissionSlo { min_rate: 1.0, max_rate: 100.0, p99_seconds: 0.25, error_rate: 0.01 },
            window: Duration::from_secs(5),
        };
        let c = AdmissionControl::new(100.0, Some(cfg));
        for i in 0..1000 {
            c.observe(if i < 980 { 0.002 } else { 0.8 }, i % 100 == 0);
        }
        let st = c.state.lock();
        let h = c.health(&st, cfg.window);
        assert_eq!(h.requests, 1000);
        assert!((0.7..1.0).contains(&h.p99_seconds), "the slowest 2 % set p99: {}", h.p99_seconds);
        assert!((h.error_rate - 0.01).abs() < 1e-9);
        drop(st);
        assert_eq!(c.rate(), 70.0, "p99 over the SLO backs off");
        assert_eq!(AdmissionControl::new(42.0, None).rate(), 42.0);
    }
}
