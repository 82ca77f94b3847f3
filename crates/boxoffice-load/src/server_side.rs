//! The run as the servers saw it, from their /metrics before and after (summed over instances):
//! latency per route on the server's own clock (accept to answer), and every problem+json answer
//! by route, status and problem code. Beside k6's figures these tell the server's time from the
//! load generator's: when k6 is short of CPU its p99 grows while the server's does not.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

type Series = BTreeMap<String, f64>;

/// Every sample of the Prometheus text whose name starts with `prefix`, keyed by the whole
/// series (`name{labels}`), summed over the instances the file holds.
fn samples(text: &str, prefix: &str) -> Series {
    let mut out = Series::new();
    for l in text.lines().filter(|l| l.starts_with(prefix)) {
        if let Some((series, v)) = l.rsplit_once(' ') {
            if let Ok(v) = v.parse::<f64>() {
                *out.entry(series.to_owned()).or_default() += v;
            }
        }
    }
    out
}

fn label<'a>(series: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    series.split_once(&key).and_then(|(_, r)| r.split_once('"')).map_or("", |(v, _)| v)
}

/// The growth of every series between the two scrapes.
fn delta(before: &str, after: &str, prefix: &str) -> Series {
    let b = samples(before, prefix);
    samples(after, prefix).into_iter().map(|(k, v)| (k.clone(), v - b.get(&k).copied().unwrap_or(0.0))).collect()
}

/// The q-quantile of cumulative buckets `(le, count)`, linear inside a bucket, as Prometheus's
/// `histogram_quantile` computes it.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lo, mut below) = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lo);
            }
            let inside = if count > below { (rank - below) / (count - below) } else { 0.0 };
            return Some(lo + (le - lo) * inside);
        }
        (lo, below) = (le, count);
    }
    Some(lo)
}

pub fn markdown(before: &str, after: &str) -> String {
    let mut m = String::new();
    let mut routes: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (series, n) in delta(before, after, "boxoffice_http_request_duration_seconds_bucket{") {
        let route = label(&series, "route");
        if route == "/api/v1/queue/events" {
            continue; // a stream lasts minutes: not a request latency
        }
        let le = match label(&series, "le") {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or(f64::INFINITY),
        };
        routes.entry(format!("{} {route}", label(&series, "method"))).or_default().push((le, n));
    }
    let mut rows = String::new();
    for (route, mut buckets) in routes {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = buckets.last().map_or(0.0, |b| b.1);
        if n <= 0.0 {
            continue;
        }
        let q = |p| quantile(p, &buckets).map_or("–".into(), |s| format!("{:.2}", s * 1000.0));
        let _ = writeln!(rows, "| {route} | {n:.0} | {} | {} | {} |", q(0.5), q(0.95), q(0.99));
    }
    if !rows.is_empty() {
        let _ = write!(
            m,
            "\n## Server side\n\nLatency per route on the servers' own clock (`boxoffice_http_request_duration_seconds`, \
             between the scrapes before and after the run, all instances):\n\n\
             | endpoint | requests | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|\n{rows}"
        );
    }
    let problems: Vec<(String, f64)> = delta(before, after, "boxoffice_http_problems_total{")
        .into_iter()
        .filter(|(_, n)| *n > 0.0)
        .map(|(s, n)| {
            let row = format!(
                "| {} {} | {} | {} |",
                label(&s, "method"),
                label(&s, "route"),
                label(&s, "status"),
                label(&s, "code")
            );
            (row, n)
        })
        .collect();
    let _ = write!(m, "\nProblem answers by endpoint, status and code (`boxoffice_http_problems_total`): ");
    // The family appears with its first problem; error statuses without it mean a server built
    // before the counter existed: say so rather than "none".
    let error_statuses = after.lines().any(|l| {
        l.starts_with("boxoffice_http_requests_total{") && (l.contains("status=\"4") || l.contains("status=\"5"))
    });
    if !after.contains("boxoffice_http_problems_total") && error_statuses {
        let _ = writeln!(m, "not recorded (the servers answered errors but exported no such counter).");
    } else if problems.is_empty() {
        let _ = writeln!(m, "none.");
    } else {
        let _ = writeln!(m, "\n\n| endpoint | status | code | answers |\n|---|---|---|---|");
        for (row, n) in problems {
            let _ = writeln!(m, "{row} {n:.0} |");
        }
    }
    m
}

/// The section for a run folder, from its metrics-before.txt and metrics-after.txt.
pub fn for_run(dir: &Path) -> String {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    markdown(&read("metrics-before.txt"), &read("metrics-after.txt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
boxoffice_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=\"0.001\"} 10
boxoffice_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=\"0.01\"} 10
boxoffice_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=\"+Inf\"} 10
";
    // Two instances after the run: 100 more requests, 90 within 1 ms and 10 between 1 and 10 ms.
    const AFTER: &str = "\
boxoffice_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=\"0.001\"} 60
boxoffice_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=\"0.01\"} 70
boxoffice_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=\"+Inf\"} 70
# ---- next instance ----
boxoffice_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=\"0.001\"} 40
boxoffice_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=\"0.01\"} 40
boxoffice_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=\"+Inf\"} 40
boxoffice_http_problems_total{method=\"POST\",route=\"/api/v1/reservations\",status=\"409\",code=\"SEAT_UNAVAILABLE\"} 7
boxoffice_http_problems_total{method=\"POST\",route=\"/api/v1/payments\",status=\"409\",code=\"HOLD_EXPIRED\"} 0
";

    #[test]
    fn quantiles_interpolate_inside_a_bucket_like_prometheus() {
        let b = [(0.001, 90.0), (0.01, 100.0), (f64::INFINITY, 100.0)];
        assert!((quantile(0.5, &b).unwrap() - 0.001 * 50.0 / 90.0).abs() < 1e-12);
        assert!((quantile(0.95, &b).unwrap() - 0.0055).abs() < 1e-12);
        assert_eq!(quantile(0.5, &[(f64::INFINITY, 0.0)]), None);
    }

    #[test]
    fn the_run_is_the_growth_between_the_scrapes_summed_over_instances() {
        let md = markdown(BEFORE, AFTER);
        assert!(md.contains("| GET /a | 100 | 0.56 | 5.50 | 9.10 |"), "{md}");
        assert!(md.contains("| POST /api/v1/reservations | 409 | SEAT_UNAVAILABLE | 7 |"), "{md}");
        assert!(!md.contains("HOLD_EXPIRED"), "series that did not grow are left out: {md}");
        let quiet = AFTER.replace("} 7", "} 0");
        assert!(markdown(BEFORE, &quiet)
            .contains("Problem answers by endpoint, status and code (`boxoffice_http_problems_total`): none."));
        assert!(markdown("", "").contains("(`boxoffice_http_problems_total`): none."));
        let old_server = "boxoffice_http_requests_total{method=\"POST\",route=\"/r\",status=\"409\"} 3\n";
        assert!(markdown("", old_server).contains("(`boxoffice_http_problems_total`): not recorded"));
    }
}
