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
                    metrics::gauge!("boxoffice_queue_max_active", "concert" => concert.clone())
                        .set(s.max_active as f64);
                    metrics::gauge!("boxoffice_queue_eta_seconds", "concert" => concert.clone())
                        .set(s.eta_last_seconds as f64);
                    metrics::gauge!("boxoffice_queue_pre_queue", "concert" => concert.clone()).set(s.pre_queue as f64);
                    metrics::gauge!("boxoffice_queue_admission_rate", "concert" => concert).set(s.rate_per_sec);
                }
            }
        }
    })
}

/// Re-reads every line's operator settings and inventory (closing sold-out lines), and exports
/// each line's state. Twice a second: an operator's change reaches every instance within a
/// second even when the notice is lost.
pub fn spawn_line_refresh(app: Arc<App>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = app.refresh_lines().await {
                tracing::warn!(error = %e, "refreshing the lines' settings failed; retrying next tick");
                continue;
            }
            for (concert, outflow, inventory) in app.line_states() {
                let concert = concert.to_string();
                let paused = |why| f64::from(u8::from(outflow.paused == Some(why)));
                use crate::domain::line_controls::Paused;
                metrics::gauge!("boxoffice_line_paused", "concert" => concert.clone(), "reason" => "operator")
                    .set(paused(Paused::ByOperator));
                metrics::gauge!("boxoffice_line_paused", "concert" => concert.clone(), "reason" => "no_seats")
                    .set(paused(Paused::NoSeats));
                metrics::gauge!("boxoffice_line_closed", "concert" => concert.clone())
                    .set(f64::from(u8::from(outflow.closed.is_some())));
                if let Some(inv) = inventory {
                    metrics::gauge!("boxoffice_seats_unsold", "concert" => concert.clone()).set(inv.unsold as f64);
                    metrics::gauge!("boxoffice_seats_free", "concert" => concert).set(inv.free as f64);
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
            let now = Millis::now();
            // The backlog is measured before each sweep: a sweeper that keeps up keeps it near 0.
            if let Ok(n) = store.holds_past_expiry(now).await {
                metrics::gauge!("boxoffice_holds_pending_expiry").set(n as f64);
            }
            match store.expire_holds(now).await {
                Ok(n) => metrics::counter!("boxoffice_holds_expired_total").increment(n),
                Err(e) => tracing::warn!(error = %e, "hold sweep failed; retrying next tick"),
            }
        }
    })
}

/// Probes every dependency every 2 s into `boxoffice_dependency_up{dependency}` (1 up, 0 down),
/// so alerts see an outage even when no traffic arrives (and within seconds: the
/// probe's interval adds to the time to detect).
pub fn spawn_dependency_probe(app: Arc<App>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let limit = Duration::from_millis(1500);
            let db = matches!(tokio::time::timeout(limit, app.store.ping()).await, Ok(Ok(())));
            let queue = matches!(tokio::time::timeout(limit, app.queue.stats()).await, Ok(Ok(_)));
            metrics::gauge!("boxoffice_dependency_up", "dependency" => "database").set(if db { 1.0 } else { 0.0 });
            metrics::gauge!("boxoffice_dependency_up", "dependency" => "queue").set(if queue { 1.0 } else { 0.0 });
        }
    })
}
