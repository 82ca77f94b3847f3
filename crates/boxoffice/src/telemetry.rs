//! Logs (tracing) and the Prometheus recorder.

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
            metrics::gauge!("boxoffice_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
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
    metrics::gauge!("boxoffice_process_cpu_seconds_total").set((num(11) + num(12)) / TICKS_PER_SEC);
    metrics::gauge!("boxoffice_process_threads").set(num(17));
    metrics::gauge!("boxoffice_process_resident_memory_bytes").set(num(21) * PAGE);
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("boxoffice_process_open_fds").set(fds.count() as f64);
    }
}
