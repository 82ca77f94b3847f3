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

/// Whether PostgreSQL and Redis answer. Locally a missing server skips the scale-out tests with a
/// printed reason; under CI=true it fails them.
pub fn scaleout_ready() -> bool {
    let probe = |what: &str, addr: String| -> Option<String> {
        let sock: std::net::SocketAddr = addr.parse().ok()?;
        std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2))
            .err()
            .map(|e| format!("{what} at {addr}: {e}"))
    };
    let host_port = |url: &str| {
        url.rsplit('@')
            .next()
            .unwrap_or(url)
            .trim_start_matches("redis://")
            .trim_start_matches("postgres://")
            .split('/')
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let problems: Vec<String> = [probe("PostgreSQL", host_port(&pg_base())), probe("Redis", host_port(&redis_url()))]
        .into_iter()
        .flatten()
        .collect();
    if problems.is_empty() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true needs PostgreSQL and Redis: {}", problems.join("; "));
    }
    eprintln!("skipping the scale-out run: {}", problems.join("; "));
    false
}

/// A private database and key prefix for one test, dropped when the test ends.
pub struct ScaleOutSpace {
    pub database_url: String,
    pub prefix: String,
    db_name: String,
}

impl ScaleOutSpace {
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
