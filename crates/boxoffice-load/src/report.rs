//! The run folder: report.md, run.json (what `compare` reads), resources.csv, timeline.csv and
//! SVG charts.

use crate::k6::Analysis;
use crate::sampler::Sample;
use crate::svg::{line_chart, Series};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::path::Path;

/// The headline figures of one run, written as run.json and read by `compare`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub scenario: String,
    pub scale: String,
    pub mode: String,
    pub instances: usize,
    pub limits: String,
    /// Where the servers and k6 ran (CPU pinning).
    #[serde(default)]
    pub placement: String,
    pub started: String,
    pub command: String,
    pub k6_exit_code: i32,
    pub thresholds_passed: bool,
    pub audit_ok: bool,
    pub passed: bool,
    pub seconds: f64,
    pub requests: u64,
    pub tps: f64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub unexpected_responses: u64,
    pub dropped_iterations: u64,
    pub server_cpu_seconds: f64,
    pub cpu_seconds_per_1000_requests: f64,
    pub peak_rss_bytes: u64,
    pub peak_cpu_percent: f64,
    /// Bytes received by k6 per request (older run.json files lack it).
    #[serde(default)]
    pub bytes_received_per_request: f64,
    /// From the cgroup, when the run was capped: peak memory and how often the limit was hit.
    #[serde(default)]
    pub cgroup_peak_memory_bytes: Option<u64>,
    #[serde(default)]
    pub memory_limit_hits: Option<u64>,
    pub endpoints: Vec<EndpointRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointRow {
    pub name: String,
    pub count: u64,
    pub tps: f64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn write_resources(dir: &Path, samples: &[Sample]) -> Result<()> {
    let mut csv = String::from("t_seconds,instance,cpu_percent,rss_bytes,threads,open_fds,pool_in_use,pool_size\n");
    for s in samples {
        let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        writeln!(
            csv,
            "{:.1},{},{:.1},{},{},{},{},{}",
            s.t,
            s.instance,
            s.cpu_percent,
            s.stat.rss_bytes,
            s.stat.threads,
            s.stat.fds,
            opt(s.pool_in_use),
            opt(s.pool_size)
        )?;
    }
    std::fs::write(dir.join("resources.csv"), csv)?;
    Ok(())
}

pub fn write_charts(dir: &Path, a: &Analysis, samples: &[Sample], instances: usize) -> Result<()> {
    let t = |f: fn(&crate::k6::Tick) -> f64| a.timeline.iter().map(|k| (k.second as f64, f(k))).collect::<Vec<_>>();
    std::fs::write(
        dir.join("throughput.svg"),
        line_chart(
            "Throughput",
            "seconds",
            "requests/s",
            &[
                Series { name: "requests/s", color: "#1f77b4", points: t(|k| k.requests as f64) },
                Series { name: "unexpected/s", color: "#d62728", points: t(|k| k.unexpected as f64) },
            ],
        ),
    )?;
    std::fs::write(
        dir.join("latency.svg"),
        line_chart(
            "Latency percentiles per second",
            "seconds",
            "ms",
            &[
                Series { name: "p50", color: "#2ca02c", points: t(|k| k.p50) },
                Series { name: "p95", color: "#ff7f0e", points: t(|k| k.p95) },
                Series { name: "p99", color: "#d62728", points: t(|k| k.p99) },
            ],
        ),
    )?;
    let colors = ["#1f77b4", "#9467bd", "#8c564b", "#e377c2"];
    let names: Vec<String> = (0..instances).map(|i| format!("instance {i}")).collect();
    let per = |f: fn(&Sample) -> f64| -> Vec<Series> {
        (0..instances)
            .map(|i| Series {
                name: &names[i],
                color: colors[i % colors.len()],
                points: samples.iter().filter(|s| s.instance == i).map(|s| (s.t, f(s))).collect(),
            })
            .collect()
    };
    std::fs::write(dir.join("cpu.svg"), line_chart("Server CPU", "seconds", "% of one core", &per(|s| s.cpu_percent)))?;
    std::fs::write(
        dir.join("memory.svg"),
        line_chart("Server memory (RSS)", "seconds", "MiB", &per(|s| s.stat.rss_bytes as f64 / 1048576.0)),
    )?;
    Ok(())
}

pub fn summarise(base: RunSummary, a: &Analysis, samples: &[Sample], cpu_seconds: f64) -> RunSummary {
    let o = &a.overall;
    RunSummary {
        seconds: a.seconds,
        requests: o.count,
        tps: o.tps,
        avg_ms: o.avg,
        p50_ms: o.p50,
        p95_ms: o.p95,
        p99_ms: o.p99,
        max_ms: o.max,
        unexpected_responses: o.unexpected,
        dropped_iterations: a.dropped_iterations,
        server_cpu_seconds: cpu_seconds,
        cpu_seconds_per_1000_requests: if o.count > 0 { cpu_seconds / o.count as f64 * 1000.0 } else { 0.0 },
        peak_rss_bytes: samples.iter().map(|s| s.stat.rss_bytes).max().unwrap_or(0),
        peak_cpu_percent: samples.iter().map(|s| s.cpu_percent).fold(0.0, f64::max),
        bytes_received_per_request: if o.count > 0 { a.bytes_received as f64 / o.count as f64 } else { 0.0 },
        endpoints: a
            .endpoints
            .iter()
            .map(|e| EndpointRow {
                name: e.name.clone(),
                count: e.count,
                tps: e.tps,
                avg_ms: e.avg,
                p50_ms: e.p50,
                p95_ms: e.p95,
                p99_ms: e.p99,
                max_ms: e.max,
            })
            .collect(),
        ..base
    }
}

pub fn markdown(s: &RunSummary, a: &Analysis, notes: &[String]) -> String {
    let mut m = String::new();
    let verdict = if s.passed { "PASSED" } else { "FAILED" };
    let _ = writeln!(m, "# {} ({} scale, {} mode) — {verdict}\n", s.scenario, s.scale, s.mode);
    let _ = writeln!(m, "- started: {}\n- command: `{}`", s.started, s.command);
    let _ = writeln!(m, "- instances: {}; limits: {}", s.instances, s.limits);
    if !s.placement.is_empty() {
        let _ = writeln!(m, "- placement: {}", s.placement);
    }
    let _ = writeln!(
        m,
        "- k6 exit code {} (thresholds {}); audit {}\n",
        s.k6_exit_code,
        if s.thresholds_passed { "held" } else { "BROKEN" },
        if s.audit_ok { "clean" } else { "FOUND VIOLATIONS (audit.json)" }
    );
    for n in notes {
        let _ = writeln!(m, "> {n}\n");
    }
    let _ = writeln!(m, "## Throughput and latency\n");
    let _ = writeln!(m, "| endpoint | requests | TPS | avg ms | p50 | p90 | p95 | p99 | max | unexpected |");
    let _ = writeln!(m, "|---|---|---|---|---|---|---|---|---|---|");
    for e in a.endpoints.iter().chain(std::iter::once(&a.overall)) {
        let _ = writeln!(
            m,
            "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            e.name, e.count, e.tps, e.avg, e.p50, e.p90, e.p95, e.p99, e.max, e.unexpected
        );
    }
    let _ = writeln!(
        m,
        "\nTest length {:.1} s; iterations {}; dropped iterations {}.\n",
        a.seconds, a.iterations, a.dropped_iterations
    );
    let _ = writeln!(m, "## Responses by status\n\n| endpoint | status | count |\n|---|---|---|");
    for e in &a.endpoints {
        for (status, n) in &e.by_status {
            let _ = writeln!(
                m,
                "| {} | {} | {} |",
                e.name,
                if status.is_empty() || status == "0" { "no response" } else { status },
                n
            );
        }
    }
    let _ = writeln!(m, "\n## Checks\n\n| check | passed | failed |\n|---|---|---|");
    for (name, (p, f)) in &a.checks {
        let _ = writeln!(m, "| {name} | {p} | {f} |");
    }
    let _ = writeln!(m, "\n## Server resources\n");
    let _ = writeln!(
        m,
        "- CPU: {:.2} s in all, {:.3} CPU-seconds per 1,000 requests, peak {:.0}% of one core\n- peak RSS: {:.1} MiB\n- network: {:.0} bytes received by k6 per request\n",
        s.server_cpu_seconds,
        s.cpu_seconds_per_1000_requests,
        s.peak_cpu_percent,
        s.peak_rss_bytes as f64 / 1048576.0,
        s.bytes_received_per_request
    );
    let _ =
        writeln!(m, "![throughput](throughput.svg)\n![latency](latency.svg)\n![cpu](cpu.svg)\n![memory](memory.svg)\n");
    let _ = writeln!(
        m,
        "Files: summary.json (k6), dashboard.html (k6 web dashboard), resources.csv (1 s samples), \
         timeline.csv, metrics-before.txt / metrics-after.txt, audit.json, server-*.log, k6-output.txt."
    );
    m
}

pub fn write_timeline(dir: &Path, a: &Analysis) -> Result<()> {
    let mut csv = String::from("second,requests,unexpected,p50_ms,p95_ms,p99_ms\n");
    for t in &a.timeline {
        writeln!(csv, "{},{},{},{:.3},{:.3},{:.3}", t.second, t.requests, t.unexpected, t.p50, t.p95, t.p99)?;
    }
    std::fs::write(dir.join("timeline.csv"), csv)?;
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One side of a comparison: a single run, or several runs of the same settings whose figures
/// are taken as the median of each metric (noisy boxes need several runs, not one).
pub struct Side {
    pub name: String,
    pub runs: Vec<(String, RunSummary)>,
}

impl Side {
    /// The per-metric median of the runs; text fields come from the first run.
    pub fn median(&self) -> RunSummary {
        let runs: Vec<&RunSummary> = self.runs.iter().map(|(_, r)| r).collect();
        let m = |f: fn(&RunSummary) -> f64| median(runs.iter().map(|r| f(r)).collect());
        let first = runs[0].clone();
        let endpoints = first
            .endpoints
            .iter()
            .map(|e| {
                let same: Vec<&EndpointRow> =
                    runs.iter().filter_map(|r| r.endpoints.iter().find(|x| x.name == e.name)).collect();
                let em = |f: fn(&EndpointRow) -> f64| median(same.iter().map(|x| f(x)).collect());
                EndpointRow {
                    name: e.name.clone(),
                    count: em(|x| x.count as f64) as u64,
                    tps: em(|x| x.tps),
                    avg_ms: em(|x| x.avg_ms),
                    p50_ms: em(|x| x.p50_ms),
                    p95_ms: em(|x| x.p95_ms),
                    p99_ms: em(|x| x.p99_ms),
                    max_ms: em(|x| x.max_ms),
                }
            })
            .collect();
        RunSummary {
            passed: runs.iter().all(|r| r.passed),
            audit_ok: runs.iter().all(|r| r.audit_ok),
            seconds: m(|r| r.seconds),
            requests: m(|r| r.requests as f64) as u64,
            tps: m(|r| r.tps),
            avg_ms: m(|r| r.avg_ms),
            p50_ms: m(|r| r.p50_ms),
            p95_ms: m(|r| r.p95_ms),
            p99_ms: m(|r| r.p99_ms),
            max_ms: m(|r| r.max_ms),
            unexpected_responses: m(|r| r.unexpected_responses as f64) as u64,
            dropped_iterations: m(|r| r.dropped_iterations as f64) as u64,
            server_cpu_seconds: m(|r| r.server_cpu_seconds),
            cpu_seconds_per_1000_requests: m(|r| r.cpu_seconds_per_1000_requests),
            peak_rss_bytes: m(|r| r.peak_rss_bytes as f64) as u64,
            peak_cpu_percent: m(|r| r.peak_cpu_percent),
            bytes_received_per_request: m(|r| r.bytes_received_per_request),
            endpoints,
            ..first
        }
    }
}

/// A before/after table of two sides (medians when a side has several runs) with deltas, and
/// every run's own headline figures so the spread is visible.
pub fn compare(a_side: &Side, b_side: &Side) -> String {
    let (a, b) = (a_side.median(), b_side.median());
    let (a_name, b_name) = (a_side.name.as_str(), b_side.name.as_str());
    let mut m = String::new();
    let _ = writeln!(m, "# {} vs {}\n", a_name, b_name);
    let _ = writeln!(
        m,
        "A: {} ({} / {} / {}), {} run(s)  \nB: {} ({} / {} / {}), {} run(s)\n",
        a_name,
        a.scenario,
        a.mode,
        a.limits,
        a_side.runs.len(),
        b_name,
        b.scenario,
        b.mode,
        b.limits,
        b_side.runs.len()
    );
    if a_side.runs.len() > 1 || b_side.runs.len() > 1 {
        let _ = writeln!(m, "Each figure is the median of its side's runs.\n");
    }
    let _ = writeln!(m, "| metric | A | B | delta |\n|---|---|---|---|");
    let row = |m: &mut String, name: &str, x: f64, y: f64| {
        let delta = if x != 0.0 { format!("{:+.1}%", (y - x) / x * 100.0) } else { "–".into() };
        let _ = writeln!(m, "| {name} | {x:.2} | {y:.2} | {delta} |");
    };
    row(&mut m, "TPS", a.tps, b.tps);
    row(&mut m, "requests", a.requests as f64, b.requests as f64);
    row(&mut m, "avg ms", a.avg_ms, b.avg_ms);
    row(&mut m, "p50 ms", a.p50_ms, b.p50_ms);
    row(&mut m, "p95 ms", a.p95_ms, b.p95_ms);
    row(&mut m, "p99 ms", a.p99_ms, b.p99_ms);
    row(&mut m, "max ms", a.max_ms, b.max_ms);
    row(&mut m, "unexpected responses", a.unexpected_responses as f64, b.unexpected_responses as f64);
    row(&mut m, "dropped iterations", a.dropped_iterations as f64, b.dropped_iterations as f64);
    row(&mut m, "CPU-s per 1k requests", a.cpu_seconds_per_1000_requests, b.cpu_seconds_per_1000_requests);
    row(&mut m, "bytes received per request", a.bytes_received_per_request, b.bytes_received_per_request);
    row(&mut m, "peak RSS MiB", a.peak_rss_bytes as f64 / 1048576.0, b.peak_rss_bytes as f64 / 1048576.0);
    let _ = writeln!(m, "\n| endpoint | A TPS | B TPS | A p99 ms | B p99 ms | p99 delta |\n|---|---|---|---|---|---|");
    for e in &a.endpoints {
        if let Some(f) = b.endpoints.iter().find(|x| x.name == e.name) {
            let d = if e.p99_ms != 0.0 {
                format!("{:+.1}%", (f.p99_ms - e.p99_ms) / e.p99_ms * 100.0)
            } else {
                "–".into()
            };
            let _ =
                writeln!(m, "| {} | {:.1} | {:.1} | {:.2} | {:.2} | {d} |", e.name, e.tps, f.tps, e.p99_ms, f.p99_ms);
        }
    }
    let _ = writeln!(
        m,
        "\nverdicts: A {}, B {}",
        if a.passed { "passed" } else { "failed" },
        if b.passed { "passed" } else { "failed" }
    );
    let _ = writeln!(
        m,
        "\n| run | side | TPS | p50 ms | p95 ms | p99 ms | CPU-s per 1k | passed |\n|---|---|---|---|---|---|---|---|"
    );
    for (side, s) in [("A", a_side), ("B", b_side)] {
        for (name, r) in &s.runs {
            let _ = writeln!(
                m,
                "| {name} | {side} | {:.1} | {:.2} | {:.2} | {:.2} | {:.3} | {} |",
                r.tps, r.p50_ms, r.p95_ms, r.p99_ms, r.cpu_seconds_per_1000_requests, r.passed
            );
        }
    }
    m
}

/// The resource matrix as a deployment spec: the measurements, where more CPU stops paying, the
/// memory really needed, and a recommended size and count of instances for the target load.
pub fn deployment_spec(
    scenario: &str,
    scale: &str,
    target_tps: f64,
    rows: &[(f64, u64, std::path::PathBuf, RunSummary)],
    command: &str,
) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# Deployment spec (resource matrix)\n");
    let _ = writeln!(
        m,
        "Generated by `{command}` on this 2-core box: the `{scenario}` scenario ({scale} scale) against one \
         instance capped with cgroups at each setting, k6 on the same cores (uncapped). Each row names its run folder.\n"
    );
    let _ = writeln!(m, "| CPUs | memory cap | TPS | p95 ms | p99 ms | unexpected | CPU used (cores) | peak RSS MiB | cgroup peak MiB | limit hits | passed | run |");
    let _ = writeln!(m, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (cpus, mem, dir, s) in rows {
        let used = if s.seconds > 0.0 { s.server_cpu_seconds / s.seconds } else { 0.0 };
        let _ = writeln!(
            m,
            "| {cpus} | {} MiB | {:.0} | {:.1} | {:.1} | {} | {:.2} | {:.1} | {} | {} | {} | `{}` |",
            mem >> 20,
            s.tps,
            s.p95_ms,
            s.p99_ms,
            s.unexpected_responses,
            used,
            s.peak_rss_bytes as f64 / 1048576.0,
            s.cgroup_peak_memory_bytes.map_or("–".into(), |b| format!("{:.1}", b as f64 / 1048576.0)),
            s.memory_limit_hits.map_or("–".into(), |h| h.to_string()),
            if s.passed { "yes" } else { "no" },
            dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
        );
    }
    // CPU scaling at the largest memory cap: where does the next step stop paying (< 10 % more TPS)?
    let max_mem = rows.iter().map(|r| r.1).max().unwrap_or(0);
    let mut by_cpu: Vec<&(f64, u64, std::path::PathBuf, RunSummary)> = rows.iter().filter(|r| r.1 == max_mem).collect();
    by_cpu.sort_by(|a, b| a.0.total_cmp(&b.0));
    let _ = writeln!(m, "\n## Where more CPU stops paying\n");
    let mut knee: Option<f64> = None;
    for w in by_cpu.windows(2) {
        let (a, b) = (&w[0].3, &w[1].3);
        let gain = if a.tps > 0.0 { (b.tps - a.tps) / a.tps * 100.0 } else { 0.0 };
        let _ = writeln!(
            m,
            "- {} → {} CPUs: TPS {:.0} → {:.0} ({gain:+.0} %), p99 {:.1} → {:.1} ms",
            w[0].0, w[1].0, a.tps, b.tps, a.p99_ms, b.p99_ms
        );
        if gain < 10.0 && knee.is_none() {
            knee = Some(w[0].0);
        }
    }
    let knee = knee.or(by_cpu.last().map(|r| r.0)).unwrap_or(1.0);
    let _ = writeln!(
        m,
        "\nAbove **{knee} CPUs** the next step adds less than 10 % throughput on this box (the load generator shares the two cores, so \
         the ceiling here is partly k6's; on separate machines the knee moves right, never left)."
    );
    let peak = rows.iter().map(|r| r.3.cgroup_peak_memory_bytes.unwrap_or(r.3.peak_rss_bytes)).max().unwrap_or(0);
    let hits: u64 = rows.iter().filter_map(|r| r.3.memory_limit_hits).sum();
    let need = ((peak as f64 * 2.0 / 1048576.0 / 64.0).ceil() * 64.0).max(128.0);
    let _ = writeln!(m, "\n## Memory really needed\n");
    let _ = writeln!(
        m,
        "The largest peak across all runs was **{:.1} MiB** (cgroup accounting, which includes page cache where capped); the memory \
         limits were hit {hits} times in all. With 2× headroom for bursts, a request of **{need:.0} MiB** suffices; memory does not \
         limit throughput at any cap tried (compare rows with equal CPUs).",
        peak as f64 / 1048576.0
    );
    let best = by_cpu.iter().find(|r| r.0 == knee).map(|r| r.3.tps).unwrap_or(0.0);
    let per_instance = best * 0.7;
    let instances = if per_instance > 0.0 { (target_tps / per_instance).ceil().max(2.0) } else { 0.0 };
    let _ = writeln!(m, "\n## Recommendation\n");
    let _ = writeln!(
        m,
        "- Per instance: **{knee} CPU, {need:.0} MiB** (limit {:.0} MiB).\n- One instance at that size carried {best:.0} TPS of this \
         scenario; planning at 70 % of it leaves headroom for the on-sale spike: {per_instance:.0} TPS per instance.\n- For a target of \
         **{target_tps:.0} TPS**: **{instances:.0} instances** (at least 2, so one can fail) behind the load balancer, in scale-out mode \
         (PostgreSQL + Redis), since the embedded mode cannot run more than one instance.",
        need * 1.5
    );
    m
}

/// A run this long gets the drift section: what a soak test is for.
const DRIFT_MIN_SECONDS: f64 = 300.0;

/// How the servers changed between early in the run (its second minute, after the warm-up) and
/// its last minute: resident memory, open files and threads per instance, and the p99 of the
/// requests in the first and last five minutes (after the first minute). Empty for short runs.
pub fn drift_markdown(timeline: &[crate::k6::Tick], samples: &[Sample], instances: usize) -> String {
    let end = samples.iter().map(|s| s.t).fold(0.0, f64::max);
    if end < DRIFT_MIN_SECONDS {
        return String::new();
    }
    // Early = the second minute, late = the last minute; growth per hour spans their middles.
    let (early_minute, last_minute) = ((60.0, 120.0), (end - 60.0, end + 1.0));
    let hours = (end - 30.0 - 90.0) / 3600.0;
    let mut m = String::from(
        "\n## Drift: early against late\n\nEarly = the run's second minute (after the warm-up), late = its last minute; medians of \
         the once-a-second samples. Growth per hour extrapolates the difference over the time between the two windows.\n\n\
         | instance | RSS early → late MiB | RSS growth per hour | open files early → late | threads early → late |\n|---|---|---|---|---|\n",
    );
    for i in 0..instances {
        let window = |(from, to): (f64, f64), f: fn(&Sample) -> f64| {
            let v: Vec<f64> = samples.iter().filter(|s| s.instance == i && s.t >= from && s.t < to).map(f).collect();
            (!v.is_empty()).then(|| median(v))
        };
        let rss = |s: &Sample| s.stat.rss_bytes as f64 / 1048576.0;
        let (Some(r0), Some(r1)) = (window(early_minute, rss), window(last_minute, rss)) else { continue };
        let pair = |f: fn(&Sample) -> f64| match (window(early_minute, f), window(last_minute, f)) {
            (Some(x), Some(y)) => format!("{x:.0} → {y:.0}"),
            _ => "–".into(),
        };
        let _ = writeln!(
            m,
            "| {i} | {r0:.1} → {r1:.1} | {:+.1} MiB | {} | {} |",
            (r1 - r0) / hours.max(1e-9),
            pair(|s| s.stat.fds as f64),
            pair(|s| s.stat.threads as f64)
        );
    }
    let last = timeline.last().map_or(0, |t| t.second);
    let p99 = |from: u64, to: u64| {
        crate::k6::window_p99(
            timeline.iter().filter(|t| t.second >= from && t.second < to).map(|t| t.durations.as_slice()),
        )
    };
    if let (Some(early), Some(late)) = (p99(60, 360), p99(last.saturating_sub(300), last + 1)) {
        let _ = writeln!(
            m,
            "\nRequests' p99: {early:.1} ms in minutes 1-6, {late:.1} ms in the last five minutes ({:+.0} %).",
            (late / early - 1.0) * 100.0
        );
    }
    m
}

#[cfg(test)]
mod drift_tests {
    use super::*;
    use crate::k6::Tick;
    use crate::sampler::ProcStat;

    fn sample(t: f64, rss_mib: u64, fds: u64) -> Sample {
        let stat = ProcStat { cpu_seconds: 0.0, rss_bytes: rss_mib * 1048576, threads: 4, fds };
        Sample { t, instance: 0, cpu_percent: 10.0, stat, pool_in_use: None, pool_size: None }
    }

    fn tick(second: u64, ms: f64) -> Tick {
        Tick { second, requests: 1, unexpected: 0, p50: ms, p95: ms, p99: ms, durations: vec![ms] }
    }

    #[test]
    fn a_long_run_reports_growth_between_its_second_and_last_minutes() {
        // 20 minutes: RSS 100 MiB in minute two, 110 MiB in the last; open files 50 → 60.
        let samples: Vec<Sample> =
            (0..1200).map(|t| if t < 600 { sample(t as f64, 100, 50) } else { sample(t as f64, 110, 60) }).collect();
        let timeline: Vec<Tick> = (0..1200).map(|s| tick(s, if s < 600 { 10.0 } else { 20.0 })).collect();
        let md = drift_markdown(&timeline, &samples, 1);
        // 10 MiB over (1199 - 120) s ≈ 0.2997 h → +33.4 MiB per hour.
        assert!(md.contains("| 0 | 100.0 → 110.0 | +33.4 MiB | 50 → 60 | 4 → 4 |"), "{md}");
        assert!(md.contains("p99: 10.0 ms in minutes 1-6, 20.0 ms in the last five minutes (+100 %)"), "{md}");
    }

    #[test]
    fn a_short_run_has_no_drift_section() {
        let samples: Vec<Sample> = (0..200).map(|t| sample(t as f64, 100, 50)).collect();
        assert_eq!(drift_markdown(&[], &samples, 1), "");
    }
}
