//! A store that times every call and counts failures by operation, whatever the backend. Its
//! port methods are written by `port!` (store/mod.rs) from each trait's own list.

use super::{PoolStats, Store};
use crate::domain::error::ErrorKind;
use crate::domain::Result;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

pub struct Instrumented(pub Arc<dyn Store>);

impl Store for Instrumented {
    fn pool_stats(&self) -> PoolStats {
        self.0.pool_stats()
    }
}

/// Records `boxoffice_db_query_duration_seconds{op}`, and `boxoffice_db_errors_total{op}` for
/// failures of the store itself (not for answers like SEAT_UNAVAILABLE, which are business).
pub(super) async fn timed<T>(op: &'static str, f: impl Future<Output = Result<T>>) -> Result<T> {
    let started = Instant::now();
    let result = f.await;
    metrics::histogram!("boxoffice_db_query_duration_seconds", "op" => op).record(started.elapsed().as_secs_f64());
    if let Err(e) = &result {
        if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Internal) {
            metrics::counter!("boxoffice_db_errors_total", "op" => op).increment(1);
        }
    }
    result
}
