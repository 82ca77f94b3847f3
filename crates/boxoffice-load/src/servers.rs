//! The system under test: fresh fixtures (a SQLite data dir, or a PostgreSQL database and a Redis
//! key prefix), seeded with `boxoffice seed`, and server processes started from the release build,
//! optionally inside a cgroup. Everything is removed or stopped on drop.

use crate::cgroup::Cgroup;
use crate::sampler::http_get;
use crate::scenarios::Seed;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Embedded,
    Scaleout,
}

pub struct Fixture {
    pub data_dir: PathBuf,
    pg: Option<(String, String)>,
    redis: Option<(String, String)>,
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Fixture {
    pub fn create(mode: Mode, run_id: &str, work: &Path, pg_base: &str, redis_url: &str) -> Result<Fixture> {
        let data_dir = work.join("data");
        std::fs::create_dir_all(&data_dir)?;
        let mut f = Fixture { data_dir, pg: None, redis: None };
        if mode == Mode::Scaleout {
            let db = format!("bo_load_{}", run_id.replace('-', "_"));
            run(
                Command::new("psql").args([&format!("{pg_base}/postgres"), "-qc", &format!("CREATE DATABASE {db}")]),
                "createdb",
            )?;
            f.pg = Some((pg_base.to_owned(), db));
            f.redis = Some((redis_url.to_owned(), format!("bo_load:{run_id}:")));
        }
        Ok(f)
    }

    /// The PostgreSQL URL of this fixture's database (scale-out mode).
    pub fn database_url(&self) -> Option<String> {
        self.pg.as_ref().map(|(base, db)| format!("{base}/{db}"))
    }

    /// Flags that point a `boxoffice` command at this fixture.
    pub fn store_args(&self) -> Vec<String> {
        let mut a = vec!["--data-dir".to_owned(), self.data_dir.display().to_string()];
        if let Some((base, db)) = &self.pg {
            a.extend(["--database-url".to_owned(), format!("{base}/{db}")]);
        }
        if let Some((url, prefix)) = &self.redis {
            a.extend(["--redis-url".to_owned(), url.clone(), "--redis-prefix".to_owned(), prefix.clone()]);
        }
        a
    }

    fn db_args(&self) -> Vec<String> {
        let mut a = vec!["--data-dir".to_owned(), self.data_dir.display().to_string()];
        if let Some((base, db)) = &self.pg {
            a.extend(["--database-url".to_owned(), format!("{base}/{db}")]);
        }
        a
    }

    pub fn seed(&self, bin: &Path, seed: &Seed) -> Result<String> {
        let mut cmd = Command::new(bin);
        cmd.arg("seed").args(self.db_args()).args([
            "--users",
            &seed.users.to_string(),
            "--concerts",
            &seed.concerts.to_string(),
            "--schedules",
            &seed.schedules.to_string(),
            "--seats",
            &seed.seats.to_string(),
            "--balance",
            &seed.balance.to_string(),
        ]);
        run(&mut cmd, "boxoffice seed").map(|s| s.trim().to_owned())
    }

    /// Runs `boxoffice audit`, writing its JSON to `out`; returns whether it was clean.
    pub fn audit(&self, bin: &Path, out: &Path) -> Result<bool> {
        let mut args = self.db_args();
        if let Some((url, prefix)) = &self.redis {
            args.extend(["--redis-url".to_owned(), url.clone(), "--redis-prefix".to_owned(), prefix.clone()]);
        }
        let status = Command::new(bin)
            .arg("audit")
            .args(&args)
            .args(["--output", &out.display().to_string()])
            .stdout(Stdio::null())
            .status()
            .context("running boxoffice audit")?;
        match status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => bail!("boxoffice audit could not run"),
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some((base, db)) = &self.pg {
            let _ = Command::new("psql")
                .args([&format!("{base}/postgres"), "-qc", &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")])
                .output();
        }
        if let Some((url, prefix)) = &self.redis {
            let _ = Command::new("sh")
                .args([
                    "-c",
                    &format!("redis-cli -u '{url}' --scan --pattern '{prefix}*' | xargs -r redis-cli -u '{url}' DEL"),
                ])
                .output();
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How to (re)start one instance.
struct Launch {
    join: String,
    /// `taskset -c <cpus> ` when the servers are pinned.
    pin: String,
    log: PathBuf,
    args: Vec<String>,
}

pub struct Instances {
    bin: PathBuf,
    launches: Vec<Launch>,
    children: Vec<Child>,
    pub bases: Vec<String>,
}

impl Instances {
    /// Starts `n` servers on free 127.0.0.1 ports, each joining `cgroup` before it executes, and
    /// waits until every one is ready.
    pub fn start(
        bin: &Path,
        fixture: &Fixture,
        serve_flags: &[String],
        n: usize,
        cgroup: Option<&Cgroup>,
        cpus: Option<&str>,
        logs: &Path,
    ) -> Result<Instances> {
        let mut me = Instances { bin: bin.to_owned(), launches: Vec::new(), children: Vec::new(), bases: Vec::new() };
        for i in 0..n {
            let port = free_port()?;
            let join = cgroup
                .map(|c| c.procs_files.iter().map(|f| format!("echo $$ > {} && ", f.display())).collect::<String>())
                .unwrap_or_default();
            let mut args = vec!["serve".to_owned()];
            args.extend(fixture.store_args());
            args.extend([
                "--bind".to_owned(),
                format!("127.0.0.1:{port}"),
                "--token-secret".to_owned(),
                "boxoffice-load-shared-secret".to_owned(),
            ]);
            args.extend(serve_flags.iter().cloned());
            let pin = cpus.map(|c| format!("taskset -c {c} ")).unwrap_or_default();
            let launch = Launch { join, pin, log: logs.join(format!("server-{i}.log")), args };
            me.children.push(me.spawn(&launch)?);
            me.bases.push(format!("http://127.0.0.1:{port}"));
            me.launches.push(launch);
        }
        for i in 0..n {
            me.wait_ready(i, Duration::from_secs(60))?;
        }
        Ok(me)
    }

    fn spawn(&self, l: &Launch) -> Result<Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&l.log)?;
        Command::new("sh")
            .arg("-c")
            .arg(format!("{}exec {}\"$0\" \"$@\"", l.join, l.pin))
            .arg(&self.bin)
            .args(&l.args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting boxoffice serve")
    }

    fn wait_ready(&mut self, i: usize, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        while !http_get(&self.bases[i], "/health/ready").is_some_and(|b| b.contains("\"ready\"")) {
            if let Ok(Some(status)) = self.children[i].try_wait() {
                bail!("server {i} exited with {status}; see {}", self.launches[i].log.display());
            }
            if Instant::now() > deadline {
                bail!("server {i} was not ready within {} s", within.as_secs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|c| c.id()).collect()
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub fn kill(&mut self, i: usize) {
        let _ = self.children[i].kill();
        let _ = self.children[i].wait();
    }

    /// Starts instance `i` again on its port and waits until it is ready.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.children[i] = self.spawn(&self.launches[i])?;
        self.wait_ready(i, Duration::from_secs(30))
    }

    /// SIGTERM (graceful shutdown), then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        for c in &self.children {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for c in &mut self.children {
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Instances {
    fn drop(&mut self) {
        self.stop();
    }
}
