//! Private dependency servers that a test or a drill can stop, pause and start without touching
//! the machine's own: a redis-server and a PostgreSQL cluster, each on a free loopback port.
//! Used by boxoffice's outage tests and by boxoffice-load's fault drills.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts connections on the port.
pub fn wait_port(port: u16, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on 127.0.0.1:{port} after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn kill(sig: &str, pid: &str) {
    let _ = Command::new("kill").args([sig, pid]).status();
}

/// A redis-server that keeps nothing on disk.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// On `port`, or a free one.
    pub fn start(port: Option<u16>) -> Result<PrivateRedis> {
        let port = match port {
            Some(p) => p,
            None => free_port()?,
        };
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        wait_port(port, Duration::from_secs(20))?;
        Ok(PrivateRedis { port, child: Some(child) })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it for good (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal, e.g. `-STOP` to pause it and `-CONT` to resume.
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            kill(sig, &c.id().to_string());
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.kill();
    }
}

/// A PostgreSQL cluster made with initdb as the postgres user (fsync off: it is for tests).
pub struct PrivatePostgres {
    dir: PathBuf,
    pub port: u16,
    max_connections: u32,
}

/// A PostgreSQL server program (initdb, pg_ctl) from Debian's packages.
pub fn pg_tool(name: &str) -> Result<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL server binaries (/usr/lib/postgresql) are needed")?
        .flatten()
        .map(|d| d.path().join("bin").join(name))
        .find(|p| p.exists())
        .with_context(|| format!("{name} not found under /usr/lib/postgresql"))
}

impl PrivatePostgres {
    /// A new cluster under `work` (which must be writable by the postgres user), running.
    pub fn start(work: &Path, max_connections: u32) -> Result<PrivatePostgres> {
        let dir = work.join("pg");
        std::fs::create_dir_all(&dir)?;
        Command::new("chown").args(["-R", "postgres", &work.display().to_string()]).status()?;
        let pg = PrivatePostgres { dir, port: free_port()?, max_connections };
        let data = pg.data();
        pg.as_postgres("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"])?;
        pg.resume()?;
        Ok(pg)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) -> Result<()> {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_tool(tool)?)
            .args(args)
            .current_dir(&self.dir)
            .output()?;
        if !out.status.success() {
            bail!("{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// Starts the server (again).
    pub fn resume(&self) -> Result<()> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections={}",
            self.port,
            self.dir.display(),
            self.max_connections
        );
        let log = self.dir.join("log").display().to_string();
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"])
    }

    /// Stops the server at once, as a crash would.
    pub fn stop(&self) -> Result<()> {
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"])
    }

    /// `postgres://postgres@127.0.0.1:<port>` (add `/<database>`).
    pub fn base_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// The postmaster and every backend.
    fn pids(&self) -> Vec<String> {
        let pidfile = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).unwrap_or_default();
        let Some(master) = pidfile.lines().next().map(str::to_owned) else { return vec![] };
        let children = Command::new("pgrep")
            .args(["-P", &master])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        std::iter::once(master).chain(children.lines().map(str::to_owned)).collect()
    }

    /// Signals the postmaster and every backend (`-STOP` pauses the whole server); returns how many.
    pub fn signal(&self, sig: &str) -> usize {
        let pids = self.pids();
        for p in &pids {
            kill(sig, p);
        }
        pids.len()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.stop();
    }
}
