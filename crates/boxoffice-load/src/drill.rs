//! Fault drills: a scenario runs in scale-out mode while a fault is injected at a set time and
//! removed later; the timeline of injection, first detection signal, mitigation and recovery is
//! recorded, MTTD and MTTR are computed, and the audit runs afterwards like after any run.
//! Dependencies that a drill stops are private servers the drill starts itself on 127.0.0.1.

use crate::flood::Abuse;
use crate::servers::Instances;
use serde::Serialize;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Redis killed, then started again on the same port (it keeps nothing on disk).
    RedisStop,
    /// Every PostgreSQL process paused with SIGSTOP, then resumed with SIGCONT.
    PostgresPause,
    /// Long transactions hold exclusive locks on the booking tables, saturating the app's pool.
    PoolSaturation,
    /// One of two instances killed with SIGKILL, then started again.
    InstanceKill,
    /// A few users ask for queue tokens as fast as 16 connections allow.
    TokenFlood,
    /// A few admitted users try to hold the same seat as fast as 16 connections allow.
    HotSeat,
    /// 5,000 connections send a request head one byte a second.
    Slowloris,
    /// 500 connections announce a 60 KB body (under the 64 KiB cap) and send it one byte a second.
    SlowBody,
    /// 5,000 connections opened and never used.
    IdleHoard,
    /// Oversized heads, 100 headers, invalid chunked, absurd Content-Length, garbage.
    Malformed,
    /// One admitted user's token replayed from 32 source addresses.
    TokenReplay,
}

impl Kind {
    /// The abusive traffic of a traffic drill; None for drills that break a dependency.
    pub fn abuse(self) -> Option<Abuse> {
        match self {
            Kind::TokenFlood => Some(Abuse::TokenFlood),
            Kind::HotSeat => Some(Abuse::HotSeat),
            Kind::Slowloris => Some(Abuse::Slowloris),
            Kind::SlowBody => Some(Abuse::SlowBody),
            Kind::IdleHoard => Some(Abuse::IdleHoard),
            Kind::Malformed => Some(Abuse::Malformed),
            Kind::TokenReplay => Some(Abuse::TokenReplay),
            _ => None,
        }
    }

    pub fn is_traffic(self) -> bool {
        self.abuse().is_some()
    }

    /// Hostile-client drills must not hurt anyone else: the scenario beside them keeps its SLO.
    pub fn is_hostile(self) -> bool {
        self.abuse().is_some_and(Abuse::is_hostile)
    }
}

/// Abusive clients in a traffic drill, and their request rate in all: 500 requests/s per
/// abusive user, 250 times the default per-user join limit.
const FLOOD_WORKERS: usize = 16;
const FLOOD_RATE: f64 = 2000.0;
/// How many of the last seeded users the abusive clients are (the scenario's own clients are
/// told to draw from the others).
pub const FLOOD_USERS: u64 = 4;

pub fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis()
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at_ms: u128,
    pub what: String,
}

pub use boxoffice_testkit::{PrivatePostgres, PrivateRedis};

const ALERTING_PATH: &str = "alerting path: ";
const ALERT_FIRING: &str = "alert firing at the on-call receiver: ";
const ALERT_RESOLVED: &str = "alert resolved at the on-call receiver: ";

/// The alerts Alertmanager delivered, as timeline events (first the path they took).
pub fn alert_events(notices: &[crate::alerting::Notice], intervals: &str) -> Vec<Event> {
    let mut events = vec![Event {
        at_ms: 0,
        what: format!("{ALERTING_PATH}Prometheus ({intervals}) → Alertmanager → the runner's webhook receiver"),
    }];
    events.extend(notices.iter().map(|n| Event {
        at_ms: n.at_ms,
        what: format!(
            "{}{} ({}{})",
            if n.status == "firing" { ALERT_FIRING } else { ALERT_RESOLVED },
            n.alertname,
            n.severity,
            if n.instance.is_empty() { String::new() } else { format!(", {}", n.instance) }
        ),
    }));
    events
}

/// What a drill holds on to while it runs.
pub enum Target {
    Redis(PrivateRedis),
    Postgres(PrivatePostgres),
    /// The database URL whose tables the saturating transactions lock.
    Pool(String),
    Instance,
    /// Abusive traffic from these users; the tally of what they were answered.
    Traffic {
        users: Vec<i64>,
        tally: Arc<crate::flood::Tally>,
    },
}

/// The detection signal of a traffic drill, read from the instances' /metrics the way an alert
/// would: the service's refusals of the abuse, summed over the instances.
fn traffic_signal(abuse: Abuse, bases: &[String]) -> f64 {
    bases.iter().filter_map(|b| crate::sampler::http_get(b, "/metrics")).map(|m| abuse.refused_in(&m)).sum()
}

/// Injects at `at`, removes after `hold`, probes readiness every 250 ms until every instance is
/// ready again for 2 s (or 60 s pass). Runs on its own thread beside k6.
pub fn run_fault(
    kind: Kind,
    mut target: Target,
    instances: Arc<Mutex<Instances>>,
    bases: Vec<String>,
    at: Duration,
    hold: Duration,
) -> std::thread::JoinHandle<(Vec<Event>, Target)> {
    std::thread::spawn(move || {
        let mut events = Vec::new();
        let mut note = |what: String| {
            eprintln!("   drill: {what}");
            events.push(Event { at_ms: now_ms(), what });
        };
        std::thread::sleep(at);
        let mut locker: Option<Child> = None;
        let mut flood = Vec::new();
        let signal_before = kind.abuse().map_or(0.0, |a| traffic_signal(a, &bases));
        match (&mut target, kind) {
            (Target::Redis(r), _) => {
                r.kill();
                note(format!("fault injected: redis-server on port {} killed", r.port));
            }
            (Target::Postgres(p), _) => {
                let n = p.signal("-STOP");
                note(format!("fault injected: {n} PostgreSQL processes paused (SIGSTOP)"));
            }
            (Target::Pool(url), _) => {
                let sql = format!(
                    "BEGIN; LOCK TABLE users, seats, reservations IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({}); COMMIT;",
                    hold.as_secs_f64()
                );
                locker = Command::new("psql")
                    .args([url.as_str(), "-qc", &sql])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .ok();
                note(format!(
                    "fault injected: a transaction holds exclusive locks on users, seats and reservations for {} s",
                    hold.as_secs()
                ));
            }
            (Target::Instance, _) => {
                instances.lock().unwrap().kill(0);
                note("fault injected: instance 0 killed with SIGKILL".into());
            }
            (Target::Traffic { users, tally }, kind) => {
                let abuse = kind.abuse().expect("a traffic target belongs to a traffic drill");
                flood = crate::flood::run(
                    abuse,
                    &bases,
                    users,
                    FLOOD_WORKERS,
                    FLOOD_RATE,
                    Instant::now() + hold,
                    tally.clone(),
                );
                note(if abuse.is_hostile() {
                    format!("fault injected: {}", abuse.description())
                } else {
                    format!(
                        "fault injected: {FLOOD_WORKERS} connections as users {users:?} start a {FLOOD_RATE} requests/s {}",
                        abuse.description()
                    )
                });
            }
        }
        let injected = Instant::now();
        let ready = |b: &String| crate::sampler::http_get(b, "/health/ready").is_some_and(|r| r.contains("\"ready\""));
        let mut detected = false;
        let mut signalled = false;
        while injected.elapsed() < hold {
            if !detected && !bases.iter().all(ready) {
                detected = true;
                note("detected: /health/ready stopped answering ready".into());
            }
            // An alert on the same counter fires after its own `for:`; this is the first moment
            // the signal exists. Crossing 10 events keeps a stray conflict from counting.
            if let Some(abuse) = kind.abuse().filter(|_| !signalled) {
                let grown = traffic_signal(abuse, &bases) - signal_before;
                if grown > 10.0 {
                    signalled = true;
                    note(format!("detected and mitigated by the service itself: {grown} {} so far", abuse.refusals()));
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        match &mut target {
            Target::Redis(r) => match PrivateRedis::start(Some(r.port)) {
                Ok(new) => {
                    *r = new;
                    note(format!("mitigated: redis-server started again on port {}", r.port));
                }
                Err(e) => note(format!("mitigation failed: {e:#}")),
            },
            Target::Postgres(p) => {
                p.signal("-CONT");
                note("mitigated: PostgreSQL resumed (SIGCONT)".into());
            }
            Target::Pool(_) => {
                if let Some(mut c) = locker.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                note("mitigated: the locking transaction ended".into());
            }
            Target::Instance => match instances.lock().unwrap().restart(0) {
                Ok(()) => note("mitigated: instance 0 restarted".into()),
                Err(e) => note(format!("mitigation failed: {e:#}")),
            },
            Target::Traffic { tally, .. } => {
                for t in flood.drain(..) {
                    let _ = t.join();
                }
                note(format!(
                    "fault removed: the abusive clients stopped after {} requests",
                    tally.sent.load(std::sync::atomic::Ordering::Relaxed)
                ));
            }
        }
        let mut ready_since: Option<Instant> = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if bases.iter().all(ready) {
                let since = *ready_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_secs(2) {
                    break;
                }
            } else {
                ready_since = None;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        if ready_since.is_some() {
            let at = now_ms() - 2000;
            events.push(Event { at_ms: at, what: "recovered: every instance ready again".into() });
            eprintln!("   drill: recovered");
        } else {
            note("NOT recovered within 60 s of the mitigation".into());
        }
        // Private servers stay up until the run is over: the caller drops them after the audit.
        (events, target)
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub kind: Kind,
    pub events: Vec<Event>,
    pub injected_ms: Option<u128>,
    pub first_client_error_ms: Option<u128>,
    pub last_client_error_ms: Option<u128>,
    pub detected_ms: Option<u128>,
    pub recovered_ms: Option<u128>,
    /// The alerting path the drill ran beside (None: it ran without one).
    pub alerting: Option<String>,
    /// Alerts that reached the receiver firing after the injection, first first.
    pub alerts_fired: Vec<String>,
    /// MTTD: injection → the first alert firing at Alertmanager's receiver.
    pub mttd_seconds: Option<f64>,
    /// Injection → the first signal inside the drill (a readiness probe failing, or the first
    /// second with client errors): what the service itself shows, before any alert.
    pub first_signal_seconds: Option<f64>,
    /// Injection → the mitigation (the fault removed, or the defence acting).
    pub mitigated_seconds: Option<f64>,
    /// Injection → the first alert (the page) reached the receiver resolved: the all-clear.
    pub page_resolved_seconds: Option<f64>,
    /// Injection → every alert that fired reached the receiver resolved (alerts over minutes-long
    /// windows stay firing well after the recovery).
    pub alerts_resolved_seconds: Option<f64>,
    /// Time to recover: injection → every instance ready and no more client errors.
    pub mttr_seconds: Option<f64>,
    pub client_errors: u64,
    /// The scenario's own clients: p99 (ms) of their requests before the fault and while it lasted.
    pub client_p99_before_ms: Option<f64>,
    pub client_p99_during_ms: Option<f64>,
    /// ... and of every request outside the fault's window: the run's own solo baseline.
    pub client_p99_outside_ms: Option<f64>,
    /// Hostile-client drills: whether the scenario beside them kept its SLO (no unexpected
    /// answers, p99 while the attack lasted within 2x its p99 outside the attack's window).
    pub slo_kept: Option<bool>,
    /// Traffic drills: what the abusive clients were answered.
    pub abusive: Option<serde_json::Value>,
}

/// MTTD: injection to the first alert firing at Alertmanager's receiver. First signal: injection
/// to a readiness probe failing, or the first second with unexpected answers at the client.
/// MTTR: injection to the point where every instance is ready and clients see no more unexpected
/// answers.
pub fn outcome(
    kind: Kind,
    mut events: Vec<Event>,
    timeline: &[(u128, u64, &[f64])],
    abusive: Option<&crate::flood::Tally>,
) -> Outcome {
    let alerting = events.iter().find_map(|e| e.what.strip_prefix(ALERTING_PATH)).map(str::to_owned);
    events.retain(|e| !e.what.starts_with(ALERTING_PATH));
    let find = |p: &str| events.iter().find(|e| e.what.starts_with(p)).map(|e| e.at_ms);
    let injected = find("fault injected");
    let fired: Vec<&Event> =
        events.iter().filter(|e| e.what.starts_with(ALERT_FIRING) && injected.is_some_and(|i| e.at_ms >= i)).collect();
    let name = |e: &Event, prefix: &str| {
        e.what.strip_prefix(prefix).and_then(|r| r.split(' ').next()).unwrap_or_default().to_owned()
    };
    let mut alerts_fired: Vec<String> = Vec::new();
    for e in &fired {
        let n = name(e, ALERT_FIRING);
        if !alerts_fired.contains(&n) {
            alerts_fired.push(n);
        }
    }
    let alert_fired = fired.first().map(|e| e.at_ms);
    // Resolved once the last of the fired alerts was reported resolved, if all of them were.
    let resolved_at = |n: &String| {
        events
            .iter()
            .filter(|e| e.what.starts_with(ALERT_RESOLVED) && &name(e, ALERT_RESOLVED) == n)
            .map(|e| e.at_ms)
            .max()
    };
    let alerts_resolved = alerts_fired
        .iter()
        .map(resolved_at)
        .collect::<Option<Vec<u128>>>()
        .and_then(|v| v.into_iter().max())
        .filter(|_| !alerts_fired.is_empty());
    let page_resolved = alerts_fired.first().and_then(resolved_at);
    let removed =
        events.iter().find(|e| e.what.starts_with("mitigated") || e.what.starts_with("fault removed")).map(|e| e.at_ms);
    let after: Vec<&(u128, u64, &[f64])> =
        timeline.iter().filter(|(t, n, _)| *n > 0 && injected.is_some_and(|i| *t + 1000 > i)).collect();
    let first_err = after.first().map(|(t, _, _)| *t);
    let last_err = after.last().map(|(t, _, _)| *t + 1000);
    // The p99 of every request the scenario made in a window of whole seconds.
    let window_p99 = |keep: &dyn Fn(u128) -> bool| {
        crate::k6::window_p99(timeline.iter().filter(|(t, _, _)| keep(*t)).map(|(_, _, d)| *d))
    };
    let client_p99_before_ms = injected.and_then(|i| window_p99(&|t| t + 1000 <= i));
    let during = |t: u128| injected.is_some_and(|i| t >= i && removed.is_none_or(|r| t + 1000 <= r));
    let client_p99_during_ms = injected.and_then(|_| window_p99(&during));
    // Seconds that overlap the window's edges belong to neither side.
    let outside = |t: u128| injected.is_some_and(|i| t + 1000 <= i || removed.is_some_and(|r| t >= r));
    let client_p99_outside_ms = injected.and_then(|_| window_p99(&outside));
    let probe = find("detected");
    let readiness_failed = find("detected:");
    let detected = [probe, first_err].into_iter().flatten().min();
    let ready = find("recovered");
    // Abusive traffic that the service turned away without readiness failing or any other
    // client noticing: recovered when the defence acted.
    let ready = match (kind.is_traffic(), readiness_failed, last_err) {
        (true, None, None) => find("detected and mitigated").or(ready),
        _ => ready,
    };
    let recovered = match (ready, last_err) {
        (Some(r), Some(e)) => Some(r.max(e)),
        (r, None) => r,
        (None, Some(_)) => None,
    };
    let client_errors = after.iter().map(|(_, n, _)| n).sum();
    let p99_kept = matches!((client_p99_outside_ms, client_p99_during_ms), (Some(b), Some(d)) if d <= 2.0 * b);
    let slo_kept = kind.is_hostile().then_some(client_errors == 0 && p99_kept);
    let secs = |t: Option<u128>| t.zip(injected).map(|(t, i)| (t.saturating_sub(i)) as f64 / 1000.0);
    Outcome {
        kind,
        injected_ms: injected,
        first_client_error_ms: first_err,
        last_client_error_ms: last_err,
        detected_ms: detected,
        recovered_ms: recovered,
        alerting,
        alerts_fired,
        mttd_seconds: secs(alert_fired),
        first_signal_seconds: secs(detected),
        mitigated_seconds: secs(removed),
        page_resolved_seconds: secs(page_resolved),
        alerts_resolved_seconds: secs(alerts_resolved),
        mttr_seconds: secs(recovered),
        client_errors,
        client_p99_outside_ms,
        slo_kept,
        client_p99_before_ms,
        client_p99_during_ms,
        abusive: abusive.and_then(|t| serde_json::to_value(t).ok()),
        events,
    }
}

pub fn markdown(o: &Outcome) -> String {
    use std::fmt::Write;
    let mut m = String::new();
    let _ = writeln!(m, "## Drill: {:?}\n", o.kind);
    let t0 = o.injected_ms.unwrap_or(0);
    let rel = |t: u128| format!("{:+.1} s", (t as i128 - t0 as i128) as f64 / 1000.0);
    let _ = writeln!(m, "| time from injection | event |\n|---|---|");
    let mut rows: Vec<(u128, String)> = o.events.iter().map(|e| (e.at_ms, e.what.clone())).collect();
    if let Some(t) = o.first_client_error_ms {
        rows.push((t, "clients: first second with unexpected answers".into()));
    }
    if let Some(t) = o.last_client_error_ms {
        rows.push((t, "clients: last second with unexpected answers ends".into()));
    }
    rows.sort();
    for (t, what) in rows {
        let _ = writeln!(m, "| {} | {what} |", rel(t));
    }
    let f = |v: Option<f64>| v.map_or("not reached".into(), |s| format!("{s:.1} s"));
    match &o.alerting {
        Some(path) => {
            let _ = writeln!(
                m,
                "\n- **MTTD** (injection → first alert firing at the on-call receiver): {}{}",
                f(o.mttd_seconds),
                if o.alerts_fired.is_empty() { String::new() } else { format!(" ({})", o.alerts_fired.join(", ")) }
            );
            let _ = writeln!(m, "- alerting path: {path}");
        }
        None => {
            let _ = writeln!(m, "\n- **MTTD**: not measured (the drill ran without Prometheus and Alertmanager)");
        }
    }
    let _ = writeln!(
        m,
        "- first signal inside the drill (readiness probe or client errors): {}",
        f(o.first_signal_seconds)
    );
    let _ =
        writeln!(m, "- **time to mitigate** (injection → fault removed or defence acting): {}", f(o.mitigated_seconds));
    let _ = writeln!(
        m,
        "- **time to recover, MTTR** (injection → ready everywhere and no more client errors): {}",
        f(o.mttr_seconds)
    );
    if o.alerting.is_some() {
        let _ = writeln!(
            m,
            "- the page's all-clear (the first alert resolved at the receiver): {}",
            f(o.page_resolved_seconds)
        );
        let _ = writeln!(m, "- every fired alert resolved at the receiver: {}", f(o.alerts_resolved_seconds));
    }
    let _ = writeln!(m, "- unexpected client answers after injection: {}", o.client_errors);
    let ms = |v: Option<f64>| v.map_or("–".into(), |x| format!("{x:.1} ms"));
    let _ = writeln!(
        m,
        "- the scenario's clients, p99 of their requests: {} before the fault, {} while it lasted, {} outside its window",
        ms(o.client_p99_before_ms),
        ms(o.client_p99_during_ms),
        ms(o.client_p99_outside_ms)
    );
    if let Some(kept) = o.slo_kept {
        let _ = writeln!(
            m,
            "- **SLO beside the attack** (no unexpected answers, p99 during within 2x of outside): {}",
            if kept { "kept" } else { "NOT kept" }
        );
    }
    if let Some(a) = &o.abusive {
        let _ = writeln!(m, "- answers to the abusive clients: `{a}`");
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::Notice;

    fn at(ms: u128, what: &str) -> Event {
        Event { at_ms: ms, what: what.into() }
    }

    fn notice(ms: u128, name: &str, status: &str) -> Notice {
        Notice {
            at_ms: ms,
            alertname: name.into(),
            status: status.into(),
            severity: "critical".into(),
            instance: String::new(),
        }
    }

    /// MTTD is the first alert at the receiver after the injection; the probe's signal, the
    /// mitigation and the recovery are reported beside it, each from the injection.
    #[test]
    fn mttd_runs_from_the_fault_to_the_first_alert_at_the_receiver() {
        let mut events = vec![
            at(10_000, "fault injected: redis-server killed"),
            at(10_300, "detected: /health/ready stopped answering ready"),
            at(55_000, "mitigated: redis-server started again"),
            at(57_000, "recovered: every instance ready again"),
        ];
        events.extend(alert_events(
            &[
                // Before the fault: not this fault's alert.
                notice(5_000, "BoxofficeSomethingElse", "firing"),
                notice(27_500, "BoxofficeRedisDown", "firing"),
                notice(29_000, "BoxofficeDependencyUnavailableSpike", "firing"),
                notice(70_000, "BoxofficeRedisDown", "resolved"),
            ],
            "scrape 5s, evaluation 5s",
        ));
        let o = outcome(Kind::RedisStop, events.clone(), &[], None);
        assert_eq!(o.mttd_seconds, Some(17.5));
        assert_eq!(o.alerts_fired, vec!["BoxofficeRedisDown", "BoxofficeDependencyUnavailableSpike"]);
        assert_eq!(o.first_signal_seconds, Some(0.3));
        assert_eq!(o.mitigated_seconds, Some(45.0));
        assert_eq!(o.mttr_seconds, Some(47.0));
        // The page is over; one of the other alerts never said resolved.
        assert_eq!(o.page_resolved_seconds, Some(60.0));
        assert_eq!(o.alerts_resolved_seconds, None);
        assert_eq!(
            o.alerting.as_deref(),
            Some("Prometheus (scrape 5s, evaluation 5s) → Alertmanager → the runner's webhook receiver")
        );
        let md = markdown(&o);
        assert!(md.contains("**MTTD** (injection → first alert firing at the on-call receiver): 17.5 s (BoxofficeRedisDown, BoxofficeDependencyUnavailableSpike)"), "{md}");
        assert!(
            !md.contains(
                "alerting path: Prometheus (scrape 5s, evaluation 5s) → Alertmanager → the runner's webhook receiver |"
            ),
            "the path is not a timeline row"
        );

        events
            .push(at(71_000, "alert resolved at the on-call receiver: BoxofficeDependencyUnavailableSpike (critical)"));
        assert_eq!(outcome(Kind::RedisStop, events, &[], None).alerts_resolved_seconds, Some(61.0));
    }

    #[test]
    fn without_the_alerting_path_mttd_is_not_measured() {
        let events = vec![at(1_000, "fault injected: x"), at(1_200, "detected: /health/ready stopped answering ready")];
        let o = outcome(Kind::InstanceKill, events, &[], None);
        assert_eq!((o.mttd_seconds, o.first_signal_seconds, o.alerting.as_deref()), (None, Some(0.2), None));
        assert!(markdown(&o).contains("MTTD**: not measured"));
    }
}
