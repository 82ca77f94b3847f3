//! Logs (tracing) and the Prometheus recorder.

use crate::domain::Code;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Human-readable logs by default, JSON lines with `--log-format json`. `RUST_LOG` filters.
pub fn init_logs(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The process-wide recorder; installed once even when tests start several servers.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            register_metrics();
            handle
        })
        .clone()
}

/// Describes every metric and creates those that would otherwise appear only on their first
/// event, so dashboards and alerts see a 0 rather than no series at all.
fn register_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    metrics::gauge!("boxoffice_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    describe_counter!("boxoffice_http_requests_total", "HTTP requests by method, route template and status");
    describe_counter!(
        "boxoffice_http_problems_total",
        "problem+json answers by method, route template, status and problem code"
    );
    describe_histogram!(
        "boxoffice_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route template"
    );
    describe_gauge!("boxoffice_queue_waiting", "People waiting in a concert's line");
    describe_gauge!("boxoffice_queue_active", "ACTIVE users in a concert's room");
    describe_gauge!("boxoffice_queue_max_active", "Configured limit of ACTIVE users per concert");
    describe_gauge!("boxoffice_queue_admission_rate", "Measured admissions per second");
    describe_gauge!("boxoffice_queue_eta_seconds", Unit::Seconds, "ETA of the last person in line");
    describe_gauge!("boxoffice_queue_event_subscribers", "Open Server-Sent Events streams");
    describe_gauge!("boxoffice_holds_pending_expiry", "Holds past their expiry that the sweeper has not marked yet");
    describe_gauge!("boxoffice_db_pool_size", "Connections in the database pool");
    describe_gauge!("boxoffice_db_pool_in_use", "Busy (or queued-for) database connections");
    describe_histogram!("boxoffice_db_pool_wait_seconds", Unit::Seconds, "Time waiting for a database connection");
    describe_histogram!("boxoffice_db_query_duration_seconds", Unit::Seconds, "Store operation latency by operation");
    describe_histogram!("boxoffice_redis_call_duration_seconds", Unit::Seconds, "Redis script latency by script");
    describe_gauge!("boxoffice_dependency_up", "1 when the dependency answered the last probe");
    for name in [
        "boxoffice_queue_admitted_total",
        "boxoffice_queue_joins_total",
        "boxoffice_holds_created_total",
        "boxoffice_holds_expired_total",
        "boxoffice_holds_refused_early_total",
        "boxoffice_holds_released_total",
        "boxoffice_seats_held_total",
        "boxoffice_queue_left_total",
        "boxoffice_payments_total",
        "boxoffice_points_charged_total",
        "boxoffice_points_used_total",
        "boxoffice_redis_errors_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    describe_counter!(
        "boxoffice_holds_refused_early_total",
        "Holds refused from the seat snapshot (seat known sold or held) without a store write"
    );
    describe_counter!("boxoffice_rate_limited_total", "Requests refused with 429 by a per-user budget, by action");
    metrics::counter!("boxoffice_rate_limited_total", "action" => "join").increment(0);
    for reason in ["no_show", "timed_out"] {
        metrics::counter!("boxoffice_queue_dropped_total", "reason" => reason).increment(0);
    }
    for code in [Code::Internal, Code::DependencyUnavailable, Code::SeatUnavailable] {
        metrics::counter!("boxoffice_errors_total", "code" => code.as_str()).increment(0);
    }
    for op in ["hold", "pay", "move_points"] {
        metrics::counter!("boxoffice_db_errors_total", "op" => op).increment(0);
    }
    metrics::gauge!("boxoffice_queue_event_subscribers").set(0.0);
    metrics::gauge!("boxoffice_holds_pending_expiry").set(0.0);
    // The operator's controls and the on-sale (issue 14).
    describe_counter!("boxoffice_admin_actions_total", "Operator changes to a line, by action");
    for action in [
        "pause",
        "resume",
        "close",
        "reopen",
        "set_max_active",
        "set_admission_rate",
        "schedule_on_sale",
        "change",
        "create_concert",
    ] {
        metrics::counter!("boxoffice_admin_actions_total", "action" => action).increment(0);
    }
    describe_counter!("boxoffice_admin_refused_total", "Admin API calls refused for a missing or wrong secret");
    describe_counter!("boxoffice_lines_sold_out_total", "Lines closed because every seat was sold");
    describe_counter!("boxoffice_draws_total", "On-sale draws held by this instance");
    for name in ["boxoffice_admin_refused_total", "boxoffice_lines_sold_out_total", "boxoffice_draws_total"] {
        metrics::counter!(name).increment(0);
    }
    describe_gauge!("boxoffice_queue_pre_queue", "People in a line's pre-queue, waiting for the on-sale draw");
    describe_gauge!("boxoffice_line_paused", "1 while a line's admission is paused, by reason (operator, no_seats)");
    describe_gauge!("boxoffice_line_closed", "1 while a line is closed (sold out, or by the operator)");
    describe_gauge!("boxoffice_seats_unsold", "A concert's seats not sold yet, over all its dates");
    describe_gauge!("boxoffice_seats_free", "A concert's seats free to hold now");
}

/// CPU, memory, threads and open files of this process, from /proc (Linux only; elsewhere a no-op).
pub fn refresh_process_metrics() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which is in parentheses and may contain spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After ')': state is index 0, utime 11, stime 12, num_threads 17, rss 21 (pages).
    const TICKS_PER_SEC: f64 = 100.0;
    const PAGE: f64 = 4096.0;
    metrics::counter!("boxoffice_process_cpu_seconds_total").absolute(((num(11) + num(12)) / TICKS_PER_SEC) as u64);
    metrics::gauge!("boxoffice_process_threads").set(num(17));
    metrics::gauge!("boxoffice_process_resident_memory_bytes").set(num(21) * PAGE);
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("boxoffice_process_open_fds").set(fds.count() as f64);
    }
    if let Some(limit) = memory_limit() {
        metrics::gauge!("boxoffice_process_memory_limit_bytes").set(limit as f64);
    }
}

/// The memory limit of this process's cgroup (v2 `memory.max` or v1 `memory.limit_in_bytes`),
/// when there is a real one.
fn memory_limit() -> Option<u64> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let file = if controllers.is_empty() {
            format!("/sys/fs/cgroup{path}/memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        } else {
            continue;
        };
        if let Some(v) = std::fs::read_to_string(file).ok().and_then(|v| v.trim().parse::<u64>().ok()) {
            // "max" fails to parse; v1 reports "no limit" as a number near i64::MAX.
            if v < 1 << 60 {
                return Some(v);
            }
        }
    }
    None
}
