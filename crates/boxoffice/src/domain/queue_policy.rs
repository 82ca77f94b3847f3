//! Waiting-room arithmetic shared by every queue backend: ETA, polling hints and the admission
//! allowance of one tick.

/// Seconds until a person at `position` is admitted at `rate_per_sec`, rounded up.
pub fn eta_seconds(position: u64, rate_per_sec: f64) -> u64 {
    if position == 0 {
        return 0;
    }
    let rate = if rate_per_sec.is_finite() && rate_per_sec > 0.01 { rate_per_sec } else { 0.01 };
    (position as f64 / rate).ceil().min(86_400.0) as u64
}

/// How long a waiting client should sleep before polling again. It grows with the ETA so that
/// people far back poll rarely, and it never exceeds half the claim window (nor 30 s), so someone
/// admitted while asleep still wakes in time to claim the slot.
pub fn retry_after_seconds(eta_seconds: u64, claim_window: std::time::Duration) -> u64 {
    let ceiling = (claim_window.as_secs() / 2).clamp(1, 30);
    (eta_seconds / 5).clamp(1, ceiling)
}

/// One step of the admission token bucket: given the carried allowance, the rate and the time
/// since the bucket was last filled, how many may be admitted now (at most `free` slots and
/// `waiting` people) and the allowance carried to the next step. The allowance is capped at one
/// second's worth (at least one person), so a paused loop or an idle line releases at most a
/// second's worth at once. The same step runs in Redis (`tick.lua`, `join.lua`).
pub fn admission_step(carry: f64, rate_per_sec: f64, elapsed_secs: f64, free: u64, waiting: u64) -> (u64, f64) {
    let budget = (carry + rate_per_sec * elapsed_secs.max(0.0)).min(rate_per_sec.max(1.0));
    let n = (budget.floor().max(0.0) as u64).min(free).min(waiting);
    (n, budget - n as f64)
}

/// Exponentially weighted rate of admissions per second, for ETAs that follow the real pace.
/// `previous` is None until the first measurement, which then starts from the configured rate.
/// A tick where the line itself was the limit (fewer people waiting than could be admitted) says
/// nothing about the pace and leaves the rate as it was, so an idle spell does not drag it to 0.
pub fn smoothed_rate(
    previous: Option<f64>,
    configured: f64,
    admitted: u64,
    elapsed_secs: f64,
    line_was_limit: bool,
) -> Option<f64> {
    if elapsed_secs <= 0.0 || line_was_limit {
        return previous;
    }
    let previous = previous.unwrap_or(configured);
    let instant = admitted as f64 / elapsed_secs;
    // Weight chosen so roughly the last ~5 s dominate at a 100 ms tick.
    let alpha = (elapsed_secs / 5.0).min(1.0);
    Some(previous + alpha * (instant - previous))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_rounds_up_and_survives_zero_rate() {
        assert_eq!(eta_seconds(0, 10.0), 0);
        assert_eq!(eta_seconds(1, 10.0), 1);
        assert_eq!(eta_seconds(25, 10.0), 3);
        assert!(eta_seconds(5, 0.0) > 0);
    }

    #[test]
    fn retry_after_grows_with_eta_and_is_bounded_by_the_claim_window() {
        let long = std::time::Duration::from_secs(300);
        assert_eq!(retry_after_seconds(0, long), 1);
        assert!(retry_after_seconds(100, long) > retry_after_seconds(10, long));
        assert_eq!(retry_after_seconds(100_000, long), 30);
        let short = std::time::Duration::from_secs(10);
        assert_eq!(retry_after_seconds(100_000, short), 5, "never sleep through half the claim window");
        assert_eq!(retry_after_seconds(100_000, std::time::Duration::from_millis(300)), 1);
    }

    #[test]
    fn rate_starts_at_the_configured_pace_and_ignores_idle_ticks() {
        assert_eq!(smoothed_rate(None, 200.0, 0, 0.1, true), None, "an empty line measures nothing");
        let r = smoothed_rate(None, 200.0, 20, 0.1, false).unwrap();
        assert!((r - 200.0).abs() < 1e-9, "a full-pace tick keeps the configured pace: {r}");
        let slower = smoothed_rate(Some(200.0), 200.0, 0, 0.1, false).unwrap();
        assert!(slower < 200.0 && slower > 190.0, "a full room slows the measured pace gradually: {slower}");
        assert_eq!(smoothed_rate(Some(50.0), 200.0, 0, 1.0, true), Some(50.0));
    }

    #[test]
    fn allowance_carries_fractions_and_caps_bursts() {
        let (n, carry) = admission_step(0.0, 15.0, 0.1, 100, 100);
        assert_eq!(n, 1);
        assert!((carry - 0.5).abs() < 1e-9);
        let (n, _) = admission_step(carry, 15.0, 0.1, 100, 100);
        assert_eq!(n, 2);
        let (n, _) = admission_step(0.0, 100.0, 60.0, 1000, 1000);
        assert_eq!(n, 100, "a long pause must not release more than one second's worth");
    }

    #[test]
    fn unused_allowance_is_kept_up_to_one_second() {
        // Nobody waiting: the allowance builds up, to at most a second's worth.
        let (n, carry) = admission_step(0.0, 20.0, 0.5, 10, 0);
        assert_eq!((n, carry), (0, 10.0));
        let (n, carry) = admission_step(carry, 20.0, 5.0, 10, 0);
        assert_eq!((n, carry), (0, 20.0));
        // A full room admits nobody and keeps the allowance; a freed slot takes one of it.
        let (n, carry) = admission_step(carry, 20.0, 0.1, 0, 50);
        assert_eq!((n, carry), (0, 20.0));
        let (n, carry) = admission_step(carry, 20.0, 0.1, 1, 50);
        assert_eq!((n, carry), (1, 19.0));
        // A slow rate still admits one person when a whole admission is due.
        assert_eq!(admission_step(0.0, 0.5, 1.0, 5, 5).0, 0);
        assert_eq!(admission_step(0.5, 0.5, 1.0, 5, 5).0, 1);
    }
}

/// Why the adaptive admission rate changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateChange {
    /// Booking p99 over the SLO: back off multiplicatively.
    LatencyOverSlo,
    /// Too many 5xx answers on booking endpoints: back off multiplicatively.
    ErrorsOverSlo,
    /// Healthy with room to spare: probe upwards additively.
    Healthy,
    /// Too little traffic in the window to judge, or healthy but near the SLO: hold.
    Hold,
}

impl RateChange {
    pub fn as_str(self) -> &'static str {
        match self {
            RateChange::LatencyOverSlo => "latency_over_slo",
            RateChange::ErrorsOverSlo => "errors_over_slo",
            RateChange::Healthy => "healthy",
            RateChange::Hold => "hold",
        }
    }
}

/// What the booking endpoints did over the last control window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    pub requests: u64,
    pub p99_seconds: f64,
    pub error_rate: f64,
}

/// Bounds and targets of adaptive admission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionSlo {
    pub min_rate: f64,
    pub max_rate: f64,
    pub p99_seconds: f64,
    pub error_rate: f64,
}

/// AIMD: halve-ish (×0.7) when booking p99 or errors break the SLO, add 5 % of the maximum when
/// healthy with p99 under 80 % of the SLO, else hold. Always within [min_rate, max_rate].
pub fn next_admission_rate(rate: f64, h: Health, slo: AdmissionSlo) -> (f64, RateChange) {
    const MIN_SAMPLE: u64 = 20;
    let (next, why) = if h.requests >= MIN_SAMPLE && h.error_rate > slo.error_rate {
        (rate * 0.7, RateChange::ErrorsOverSlo)
    } else if h.requests >= MIN_SAMPLE && h.p99_seconds > slo.p99_seconds {
        (rate * 0.7, RateChange::LatencyOverSlo)
    } else if h.requests < MIN_SAMPLE || h.p99_seconds < slo.p99_seconds * 0.8 {
        // Little traffic means the admitted people are not stressing anything: probe upwards.
        (rate + slo.max_rate * 0.05, RateChange::Healthy)
    } else {
        (rate, RateChange::Hold)
    };
    (next.clamp(slo.min_rate, slo.max_rate), why)
}

#[cfg(test)]
mod aimd_tests {
    use super::*;

    const SLO: AdmissionSlo = AdmissionSlo { min_rate: 5.0, max_rate: 100.0, p99_seconds: 0.25, error_rate: 0.01 };

    #[test]
    fn backs_off_on_latency_and_errors_and_probes_up_when_healthy() {
        let slow = Health { requests: 500, p99_seconds: 0.4, error_rate: 0.0 };
        assert_eq!(next_admission_rate(100.0, slow, SLO), (70.0, RateChange::LatencyOverSlo));
        let failing = Health { requests: 500, p99_seconds: 0.01, error_rate: 0.05 };
        assert_eq!(next_admission_rate(50.0, failing, SLO).1, RateChange::ErrorsOverSlo);
        let healthy = Health { requests: 500, p99_seconds: 0.05, error_rate: 0.0 };
        assert_eq!(next_admission_rate(50.0, healthy, SLO), (55.0, RateChange::Healthy));
        let near = Health { requests: 500, p99_seconds: 0.22, error_rate: 0.0 };
        assert_eq!(next_admission_rate(50.0, near, SLO), (50.0, RateChange::Hold));
    }

    #[test]
    fn stays_within_bounds() {
        let slow = Health { requests: 500, p99_seconds: 9.0, error_rate: 0.0 };
        assert_eq!(next_admission_rate(6.0, slow, SLO).0, 5.0);
        let healthy = Health { requests: 0, p99_seconds: 0.0, error_rate: 0.0 };
        assert_eq!(next_admission_rate(99.0, healthy, SLO).0, 100.0);
    }
}
