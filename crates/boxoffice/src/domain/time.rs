//! Wall-clock instants as Unix milliseconds: cheap to copy, store and compare in every backend.

use chrono::{DateTime, SecondsFormat, Utc};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    pub fn now() -> Self {
        Millis(Utc::now().timestamp_millis())
    }

    pub fn plus(self, d: Duration) -> Self {
        Millis(self.0.saturating_add(d.as_millis().min(i64::MAX as u128) as i64))
    }

    pub fn rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// An RFC 3339 instant, e.g. `2026-12-24T18:00:00Z`.
    pub fn parse_rfc3339(s: &str) -> Option<Millis> {
        DateTime::parse_from_rfc3339(s).ok().map(|t| Millis(t.timestamp_millis()))
    }

    /// Whole seconds from `self` until `later`, rounded up, never negative.
    pub fn secs_until(self, later: Millis) -> i64 {
        let ms = (later.0 - self.0).max(0);
        (ms + 999) / 1000
    }
}
