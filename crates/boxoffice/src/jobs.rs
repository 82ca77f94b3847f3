//! Background loops: admission (and no-show/timeout expiry) and the hold-expiry sweeper.

use crate::app::App;
use crate::domain::Millis;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

pub fn spawn_admission(app: Arc<App>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match app.admission_tick().await {
                Ok(r) => {
                    metrics::counter!("boxoffice_queue_admitted_total").increment(r.admitted);
                    metrics::counter!("boxoffice_queue_dropped_total", "reason" => "no_show").increment(r.no_shows);
                    metrics::counter!("boxoffice_queue_dropped_total", "reason" => "timed_out").increment(r.timed_out);
                }
                Err(e) => tracing::warn!(error = %e, "admission tick failed; retrying next tick"),
            }
            if let Ok(stats) = app.queue.stats().await {
                for s in stats {
                    let concert = s.concert.to_string();
                    metrics::gauge!("boxoffice_queue_waiting", "concert" => concert.clone()).set(s.waiting as f64);
                    metrics::gauge!("boxoffice_queue_active", "concert" => concert.clone()).set(s.active as f64);
                    metrics::gauge!("boxoffice_queue_admission_rate", "concert" => concert).set(s.rate_per_sec);
                }
            }
        }
    })
}

pub fn spawn_hold_sweeper(store: Arc<dyn Store>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.expire_holds(Millis::now()).await {
                Ok(n) => metrics::counter!("boxoffice_holds_expired_total").increment(n),
                Err(e) => tracing::warn!(error = %e, "hold sweep failed; retrying next tick"),
            }
        }
    })
}
