//! The real alerting path beside a drill: Debian's Prometheus and Alertmanager on 127.0.0.1,
//! started with this repository's rules (`deploy/prometheus/rules/`), scrape and evaluation
//! intervals (`deploy/prometheus/prometheus.yml`) and routing (`deploy/alertmanager/alertmanager.yml`),
//! scraping the run's instances; Alertmanager's webhook receiver is a small HTTP server here that
//! notes when each notification arrives. That arrival is what an on-call engineer would see, so
//! it is what the drill's MTTD measures.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the alerting configuration lives; the runner starts from these files.
#[derive(Debug, Clone)]
pub struct Config {
    pub prometheus_yml: PathBuf,
    pub rules_dir: PathBuf,
    pub alertmanager_yml: PathBuf,
}

impl Config {
    /// The repository's files, found from the loadtest directory's parent (the repository root).
    pub fn in_repository(root: &Path) -> Self {
        let deploy = root.join("deploy");
        Self {
            prometheus_yml: deploy.join("prometheus/prometheus.yml"),
            rules_dir: deploy.join("prometheus/rules"),
            alertmanager_yml: deploy.join("alertmanager/alertmanager.yml"),
        }
    }
}

/// The receiver URL written in the repository's alertmanager.yml; the runner points it at its
/// own receiver.
pub const RECEIVER_PLACEHOLDER: &str = "http://127.0.0.1:9095/alerts";

/// One alert in one notification, as the webhook received it.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub at_ms: u128,
    pub alertname: String,
    /// `firing` or `resolved`.
    pub status: String,
    pub severity: String,
    pub instance: String,
}

pub struct Alerting {
    prometheus: Child,
    alertmanager: Child,
    received: Arc<Mutex<Vec<Notice>>>,
    /// Scrape and evaluation intervals in force, for the report.
    pub intervals: String,
}

impl Alerting {
    /// Starts the receiver, Alertmanager and Prometheus (in that order, each ready before the
    /// next), with Prometheus scraping `bases` (`http://127.0.0.1:PORT`) as job `boxoffice`.
    pub fn start(cfg: &Config, bases: &[String], work: &Path) -> Result<Self> {
        for bin in ["prometheus", "prometheus-alertmanager"] {
            if which(bin).is_none() {
                bail!("{bin} not found: apt-get install -y prometheus prometheus-alertmanager (or run the drill with --no-alerting)");
            }
        }
        let dir = work.join("alerting");
        std::fs::create_dir_all(&dir)?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let receiver = TcpListener::bind("127.0.0.1:0")?;
        let receiver_url = format!("http://{}/alerts", receiver.local_addr()?);
        {
            let received = received.clone();
            std::thread::spawn(move || {
                for conn in receiver.incoming().flatten() {
                    let _ = receive(conn, &received);
                }
            });
        }

        let am_config = std::fs::read_to_string(&cfg.alertmanager_yml)
            .with_context(|| format!("reading {}", cfg.alertmanager_yml.display()))?;
        if !am_config.contains(RECEIVER_PLACEHOLDER) {
            bail!(
                "{} has no receiver at {RECEIVER_PLACEHOLDER} to point at the runner",
                cfg.alertmanager_yml.display()
            );
        }
        let am_file = dir.join("alertmanager.yml");
        std::fs::write(&am_file, am_config.replace(RECEIVER_PLACEHOLDER, &receiver_url))?;
        let am_port = free_port()?;
        let alertmanager = spawn(
            Command::new("prometheus-alertmanager")
                .arg(format!("--config.file={}", am_file.display()))
                .arg(format!("--storage.path={}", dir.join("am-data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
                // One Alertmanager: no gossip port.
                .arg("--cluster.listen-address=")
                .arg("--log.level=warn"),
            &dir.join("alertmanager.log"),
        )?;
        let am_base = format!("http://127.0.0.1:{am_port}");

        let prom_template = std::fs::read_to_string(&cfg.prometheus_yml)
            .with_context(|| format!("reading {}", cfg.prometheus_yml.display()))?;
        let scrape = global_setting(&prom_template, "scrape_interval").unwrap_or("5s".into());
        let evaluation = global_setting(&prom_template, "evaluation_interval").unwrap_or("5s".into());
        let timeout = global_setting(&prom_template, "scrape_timeout").unwrap_or("4s".into());
        let targets: Vec<String> = bases.iter().map(|b| format!("\"{}\"", b.trim_start_matches("http://"))).collect();
        let prom_file = dir.join("prometheus.yml");
        std::fs::write(
            &prom_file,
            format!(
                "# Written by boxoffice-load from {} (intervals) for a drill.\n\
                 global:\n  scrape_interval: {scrape}\n  scrape_timeout: {timeout}\n  evaluation_interval: {evaluation}\n\
                 rule_files:\n  - {}/*.yml\n\
                 alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"127.0.0.1:{am_port}\"]\n\
                 scrape_configs:\n  - job_name: boxoffice\n    static_configs:\n      - targets: [{}]\n        labels:\n          service: boxoffice\n",
                cfg.prometheus_yml.display(),
                std::fs::canonicalize(&cfg.rules_dir)
                    .with_context(|| format!("finding {}", cfg.rules_dir.display()))?
                    .display(),
                targets.join(", ")
            ),
        )?;
        let prom_port = free_port()?;
        let prometheus = spawn(
            Command::new("prometheus")
                .arg(format!("--config.file={}", prom_file.display()))
                .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
                .arg("--log.level=warn"),
            &dir.join("prometheus.log"),
        )?;
        let me = Alerting {
            prometheus,
            alertmanager,
            received,
            intervals: format!("scrape {scrape}, evaluation {evaluation}"),
        };
        for (base, what) in [(am_base, "Alertmanager"), (format!("http://127.0.0.1:{prom_port}"), "Prometheus")] {
            let deadline = Instant::now() + Duration::from_secs(30);
            while crate::sampler::http_get(&base, "/-/ready").is_none() {
                if Instant::now() > deadline {
                    bail!("{what} was not ready within 30 s; see {}", dir.display());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        eprintln!(
            "   alerting: Prometheus 127.0.0.1:{prom_port} and Alertmanager 127.0.0.1:{am_port} ({})",
            me.intervals
        );
        Ok(me)
    }

    /// Waits (at most `within`) until every alert that fired has also been reported resolved, so
    /// the report can say when the all-clear reached the on-call.
    pub fn settle(&self, within: Duration) {
        let open = |n: &[Notice]| {
            n.iter()
                .filter(|f| f.status == "firing")
                .any(|f| !n.iter().any(|r| r.status == "resolved" && r.alertname == f.alertname && r.at_ms >= f.at_ms))
        };
        let deadline = Instant::now() + within;
        if open(&self.notices()) {
            eprintln!("   alerting: waiting up to {} s for the fired alerts to resolve", within.as_secs());
        }
        while open(&self.notices()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every alert received so far, in arrival order.
    pub fn notices(&self) -> Vec<Notice> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Alerting {
    fn drop(&mut self) {
        for c in [&mut self.prometheus, &mut self.alertmanager] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads one webhook POST, notes its alerts, answers 200 and closes.
fn receive(mut conn: TcpStream, into: &Mutex<Vec<Notice>>) -> Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let at_ms = crate::drill::now_ms();
    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    into.lock().unwrap().extend(parse(&body, at_ms));
    Ok(())
}

/// The alerts of one Alertmanager webhook payload (`{"alerts": [{"status", "labels"}]}`).
fn parse(body: &[u8], at_ms: u128) -> Vec<Notice> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let label = |a: &serde_json::Value, k: &str| a["labels"][k].as_str().unwrap_or_default().to_owned();
    v["alerts"]
        .as_array()
        .map(|alerts| {
            alerts
                .iter()
                .map(|a| Notice {
                    at_ms,
                    alertname: label(a, "alertname"),
                    status: a["status"].as_str().unwrap_or_default().to_owned(),
                    severity: label(a, "severity"),
                    instance: label(a, "instance"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A `global:` setting of a Prometheus configuration, e.g. `scrape_interval: 5s`.
fn global_setting(yml: &str, key: &str) -> Option<String> {
    yml.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.split('#').next().unwrap_or_default().trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn spawn(cmd: &mut Command, log: &Path) -> Result<Child> {
    let log = std::fs::File::create(log)?;
    cmd.stdout(Stdio::null()).stderr(log).spawn().with_context(|| format!("starting {cmd:?}"))
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(bin)).find(|p| p.is_file())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_payload_gives_one_notice_per_alert() {
        let body = br#"{"status":"firing","alerts":[
            {"status":"firing","labels":{"alertname":"BoxofficeRedisDown","severity":"critical","instance":"127.0.0.1:1"}},
            {"status":"resolved","labels":{"alertname":"BoxofficeInstanceDown","severity":"warning"}}]}"#;
        let n = parse(body, 7);
        assert_eq!(n.len(), 2);
        assert_eq!(
            (n[0].alertname.as_str(), n[0].status.as_str(), n[0].severity.as_str()),
            ("BoxofficeRedisDown", "firing", "critical")
        );
        assert_eq!(
            (n[1].alertname.as_str(), n[1].status.as_str(), n[1].at_ms),
            ("BoxofficeInstanceDown", "resolved", 7)
        );
        assert!(parse(b"not json", 1).is_empty());
    }

    #[test]
    fn intervals_are_read_from_the_global_block() {
        let yml = "global:\n  scrape_interval: 5s   # often\n  evaluation_interval: 2s\n";
        assert_eq!(global_setting(yml, "scrape_interval").as_deref(), Some("5s"));
        assert_eq!(global_setting(yml, "evaluation_interval").as_deref(), Some("2s"));
        assert_eq!(global_setting(yml, "scrape_timeout"), None);
    }

    /// The receiver answers Alertmanager and keeps what it was sent.
    #[test]
    fn the_receiver_notes_a_posted_notification() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let r = received.clone();
        let server = std::thread::spawn(move || receive(listener.accept().unwrap().0, &r));
        let body = r#"{"alerts":[{"status":"firing","labels":{"alertname":"X"}}]}"#;
        let mut c = TcpStream::connect(addr).unwrap();
        write!(
            c,
            "POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        server.join().unwrap().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(received.lock().unwrap()[0].alertname, "X");
    }
}
