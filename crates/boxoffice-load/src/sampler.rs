//! Samples every server process once a second from /proc: CPU %, resident memory, threads, open
//! files, and the database pool figures the server exports on /metrics.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStat {
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub threads: u64,
    pub fds: u64,
}

pub fn read_proc(pid: u32) -> Option<ProcStat> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0);
    Some(ProcStat {
        cpu_seconds: (num(11) + num(12)) / 100.0,
        rss_bytes: (num(21) * 4096.0) as u64,
        threads: num(17) as u64,
        fds,
    })
}

/// GET over plain HTTP/1.0 on 127.0.0.1, for /metrics.
pub fn http_get(base: &str, path: &str) -> Option<String> {
    get(base, path, "")
}

/// GET with a bearer token; the body, whatever the status.
pub fn http_get_auth(base: &str, path: &str, token: &str) -> Option<String> {
    get(base, path, &format!("Authorization: Bearer {token}\r\n"))
}

fn get(base: &str, path: &str, extra_headers: &str) -> Option<String> {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{extra_headers}\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

/// The sum of every sample of a metric (all label sets) in Prometheus text, or of those whose
/// labels contain `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// The value of an unlabelled (or first) sample of a metric in Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub t: f64,
    pub instance: usize,
    pub cpu_percent: f64,
    pub stat: ProcStat,
    pub pool_in_use: Option<f64>,
    pub pool_size: Option<f64>,
}

pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    pub samples: Arc<Mutex<Vec<Sample>>>,
}

impl Sampler {
    pub fn start(targets: Vec<(u32, String)>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            let mut last: Vec<Option<(Instant, f64)>> = vec![None; targets.len()];
            while !s.load(Ordering::Relaxed) {
                for (i, (pid, base)) in targets.iter().enumerate() {
                    let Some(stat) = read_proc(*pid) else { continue };
                    let now = Instant::now();
                    let cpu_percent = match last[i] {
                        Some((t, cpu)) => (stat.cpu_seconds - cpu) / now.duration_since(t).as_secs_f64() * 100.0,
                        None => 0.0,
                    };
                    last[i] = Some((now, stat.cpu_seconds));
                    let m = http_get(base, "/metrics").unwrap_or_default();
                    out.lock().unwrap().push(Sample {
                        t: started.elapsed().as_secs_f64(),
                        instance: i,
                        cpu_percent,
                        stat,
                        pool_in_use: metric(&m, "boxoffice_db_pool_in_use"),
                        pool_size: metric(&m, "boxoffice_db_pool_size"),
                    });
                }
                // Sleep in small steps so stopping is prompt.
                for _ in 0..10 {
                    if s.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Sampler { stop, handle: Some(handle), samples }
    }

    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_metrics_by_name() {
        let text = "# TYPE a gauge\nboxoffice_db_pool_in_use 3\nboxoffice_db_pool_in_use_total 9\nx{l=\"1\"} 2.5\n";
        assert_eq!(metric(text, "boxoffice_db_pool_in_use"), Some(3.0));
        assert_eq!(metric(text, "x"), Some(2.5));
        assert_eq!(metric(text, "missing"), None);
    }

    #[test]
    fn reads_our_own_process() {
        let s = read_proc(std::process::id()).expect("/proc/self");
        assert!(s.rss_bytes > 0 && s.threads >= 1 && s.fds > 0);
    }
}
