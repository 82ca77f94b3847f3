//! PostgreSQL and Redis for tests: whether they answer, and a private database and key prefix
//! per test. Shared by the test binaries through `#[path]`.
#![allow(dead_code)]

use std::time::Duration;

pub fn pg_base() -> String {
    std::env::var("BOXOFFICE_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("BOXOFFICE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn host_port(url: &str) -> String {
    url.rsplit('@')
        .next()
        .unwrap_or(url)
        .trim_start_matches("redis://")
        .trim_start_matches("postgres://")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether PostgreSQL and Redis answer. Locally a missing server skips the scale-out tests with a
/// printed reason; under CI=true it fails them.
pub fn scaleout_ready() -> bool {
    let probe = |what: &str, addr: String| -> Option<String> {
        let sock: std::net::SocketAddr = addr.parse().ok()?;
        std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2))
            .err()
            .map(|e| format!("{what} at {addr}: {e}"))
    };
    let problems: Vec<String> = [probe("PostgreSQL", host_port(&pg_base())), probe("Redis", host_port(&redis_url()))]
        .into_iter()
        .flatten()
        .collect();
    if problems.is_empty() {
        return true;
    }
    if in_ci() {
        panic!("CI=true needs PostgreSQL and Redis: {}", problems.join("; "));
    }
    eprintln!("skipping the scale-out run: {}", problems.join("; "));
    false
}

/// Where PgBouncer listens: one per test process, in transaction mode in front of the test
/// PostgreSQL. Each transaction gets whichever server connection is free, so a client's next
/// statement often lands on another server (what breaks named statements); 16 servers per
/// database, a test server's pool, so that a burst of cold reads (each a transaction of its own
/// here) does not queue behind a smaller pool. A shell started with it kills it when our end of
/// its stdin closes, that is when the test process ends. None (locally, with the reason printed)
/// when `pgbouncer` is not installed; under CI=true that fails instead.
pub fn pgbouncer_port() -> Option<u16> {
    static PORT: std::sync::OnceLock<Option<u16>> = std::sync::OnceLock::new();
    *PORT.get_or_init(start_pgbouncer)
}

fn start_pgbouncer() -> Option<u16> {
    const BIN: &str = "/usr/sbin/pgbouncer";
    if !std::path::Path::new(BIN).exists() {
        assert!(!in_ci(), "CI=true needs PgBouncer at {BIN} (apt-get install pgbouncer)");
        eprintln!("skipping the PgBouncer run: {BIN} is not installed (apt-get install pgbouncer)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let pg = host_port(&pg_base());
    let (host, pg_port) = pg.rsplit_once(':').unwrap_or((pg.as_str(), "5432"));
    // Kept for the process's life: PgBouncer reads its files again on a reload.
    let dir = tempfile::Builder::new().prefix("bo-pgbouncer").tempdir().unwrap().keep();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let users = dir.join("users.txt");
    std::fs::write(&users, "\"postgres\" \"\"\n").unwrap();
    let ini = dir.join("pgbouncer.ini");
    std::fs::write(
        &ini,
        format!(
            "[databases]\n* = host={host} port={pg_port}\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
             auth_type = trust\nauth_file = {}\npool_mode = transaction\ndefault_pool_size = 16\n\
             max_client_conn = 4000\nignore_startup_parameters = extra_float_digits,application_name\n\
             unix_socket_dir =\nlog_connections = 0\nlog_disconnections = 0\n",
            users.display()
        ),
    )
    .unwrap();
    // PgBouncer refuses to run as root; -u switches to the postgres user.
    let user = if running_as_root() { "-u postgres" } else { "" };
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{BIN} {user} {} & p=$!; cat >/dev/null; kill $p", ini.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("pgbouncer.log")).unwrap())
        .spawn()
        .expect("start pgbouncer");
    // Never dropped: its stdin stays open until the process exits.
    static CHILD: std::sync::OnceLock<std::sync::Mutex<std::process::Child>> = std::sync::OnceLock::new();
    let _ = CHILD.set(std::sync::Mutex::new(child));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(std::time::Instant::now() < deadline, "PgBouncer did not listen on {addr}; see {}", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(port)
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A private database and key prefix for one test, dropped when the test ends.
pub struct ScaleOutSpace {
    pub database_url: String,
    pub prefix: String,
    /// `database_url` names PgBouncer (transaction mode), not PostgreSQL.
    pub pgbouncer: bool,
    db_name: String,
}

impl ScaleOutSpace {
    /// The same space reached through the test process's PgBouncer (`pgbouncer_port`).
    pub async fn create_behind_pgbouncer(port: u16) -> Self {
        let mut space = Self::create().await;
        space.database_url = format!("postgres://postgres@127.0.0.1:{port}/{}", space.db_name);
        space.pgbouncer = true;
        space
    }

    pub async fn create() -> Self {
        use sqlx::Connection;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let db_name = format!("bo_test_{}", &id[..16]);
        let mut admin =
            sqlx::PgConnection::connect(&format!("{}/postgres", pg_base())).await.expect("connect to PostgreSQL");
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {db_name}").as_str())
            .await
            .expect("create test database");
        ScaleOutSpace {
            database_url: format!("{}/{db_name}", pg_base()),
            prefix: format!("bo_test:{}:", &id[..16]),
            pgbouncer: false,
            db_name,
        }
    }
}

impl Drop for ScaleOutSpace {
    fn drop(&mut self) {
        let (db, prefix) = (self.db_name.clone(), self.prefix.clone());
        // Drop runs inside the test's runtime, so clean up on a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{}/postgres", pg_base())).await {
                    let _ = sqlx::Executor::execute(
                        &mut admin,
                        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str(),
                    )
                    .await;
                }
                if let Ok(client) = redis::Client::open(redis_url()) {
                    if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                        let keys: Vec<String> =
                            redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut c).await.unwrap_or_default();
                        if !keys.is_empty() {
                            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query_async(&mut c).await;
                        }
                    }
                }
            });
        })
        .join();
    }
}
