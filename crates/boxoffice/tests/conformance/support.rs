//! A real server on port 0 with its own data directory, and a client that speaks to it.

use boxoffice::audit::AuditReport;
use boxoffice::cli::ServeArgs;
use boxoffice::server::Server;
use boxoffice::store::SeedSpec;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub use crate::scaleout::{redis_url, ScaleOutSpace};

/// The backends a conformance test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file + in-process waiting room.
    Embedded,
    /// PostgreSQL + Redis, each test with its own database and key prefix.
    ScaleOut,
    /// The same, with PostgreSQL reached through PgBouncer in transaction mode (on this port).
    ScaleOutPgBouncer(u16),
}

#[derive(Debug, Clone)]
pub struct Opts {
    pub max_active: u64,
    pub admission_rate: f64,
    pub claim_window: Duration,
    pub active_ttl: Duration,
    pub hold_ttl: Duration,
    pub sweep_interval: Duration,
    pub admission_tick: Duration,
    pub seed: SeedSpec,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            max_active: 1000,
            admission_rate: 100_000.0,
            claim_window: Duration::from_secs(30),
            active_ttl: Duration::from_secs(600),
            hold_ttl: Duration::from_secs(300),
            sweep_interval: Duration::from_secs(1),
            admission_tick: Duration::from_millis(10),
            seed: SeedSpec { users: 300, concerts: 2, schedules: 2, seats: 50, balance: 0 },
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// Declared before `space` so the server stops before its database is dropped.
    pub server: Option<Server>,
    pub space: Option<ScaleOutSpace>,
    pub backend: Backend,
    pub opts: Opts,
    pub dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// The operator's secret of every test server.
pub const ADMIN_TOKEN: &str = "conformance-admin-secret-0123456789";

fn serve_args(space: Option<&ScaleOutSpace>, opts: &Opts, dir: &std::path::Path) -> ServeArgs {
    let mut a = ServeArgs::for_tests(dir);
    a.store.database_url = space.map(|s| s.database_url.clone());
    a.store.pgbouncer = space.is_some_and(|s| s.pgbouncer);
    if a.store.pgbouncer {
        // A read through PgBouncer is a transaction of its own (BEGIN, parse, execute, rollback):
        // a thousand cold reads at once in a debug build on a busy box outlast the default 2 s.
        a.store.db_timeout = Duration::from_secs(10);
    }
    a.redis.redis_url = space.map(|_| redis_url());
    if let Some(s) = space {
        a.redis.redis_prefix = s.prefix.clone();
    }
    a.max_active = opts.max_active;
    a.admission_rate = opts.admission_rate;
    a.claim_window = opts.claim_window;
    a.active_ttl = opts.active_ttl;
    a.hold_ttl = opts.hold_ttl;
    a.sweep_interval = opts.sweep_interval;
    a.admission_tick = opts.admission_tick;
    a.admin_token = Some(ADMIN_TOKEN.to_owned());
    a
}

impl TestApp {
    pub async fn spawn(backend: Backend, opts: Opts) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let space = match backend {
            Backend::Embedded => None,
            Backend::ScaleOut => Some(ScaleOutSpace::create().await),
            Backend::ScaleOutPgBouncer(port) => Some(ScaleOutSpace::create_behind_pgbouncer(port).await),
        };
        let server = Server::start(serve_args(space.as_ref(), &opts, dir.path())).await.expect("server starts");
        server.app.store.seed(opts.seed, boxoffice::domain::Millis::now()).await.expect("seed");
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(64).build().unwrap();
        TestApp { space, base: format!("http://{}", server.addr), client, server: Some(server), backend, opts, dir }
    }

    /// Stops the server and starts a new one on the same data.
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
        let server =
            Server::start(serve_args(self.space.as_ref(), &self.opts, self.dir.path())).await.expect("server restarts");
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server is running")
    }

    /// The store's audit plus the waiting room's own checks, as `boxoffice audit` runs them.
    pub async fn audit(&self) -> AuditReport {
        let app = &self.server().app;
        let mut report = app.store.audit(boxoffice::domain::Millis::now()).await.expect("audit runs");
        report.extend(app.queue.audit().await.expect("queue audit runs"));
        report
    }

    pub async fn assert_audit_clean(&self) {
        let report = self.audit().await;
        assert!(report.ok, "audit found violations: {}", serde_json::to_string_pretty(&report).unwrap());
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request reaches the server");
        into_resp(res).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(Method::GET, path, token, None, &[]).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(Method::POST, path, token, Some(body), &[]).await
    }

    pub async fn raw_post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
        let res = self
            .client
            .post(format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request reaches the server");
        into_resp(res).await
    }

    pub async fn raw_post_token(&self, path: &str, token: &str, body: String) -> Resp {
        let res = self
            .client
            .post(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request reaches the server");
        into_resp(res).await
    }

    /// Sends a large body the way curl does (`Expect: 100-continue`), so the server can refuse it
    /// before it is transferred; returns the status line's code and the parsed final response.
    pub async fn post_large(&self, path: &str, token: Option<&str>, body: &[u8]) -> (u16, serde_json::Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{auth}Expect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("write head");
        let mut buf = vec![0u8; 64 * 1024];
        let n = stream.read(&mut buf).await.expect("read");
        let mut text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("HTTP/1.1 100") {
            stream.write_all(body).await.expect("write body");
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await.expect("read");
            text = String::from_utf8_lossy(&rest).into_owned();
        } else {
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
            text.push_str(&String::from_utf8_lossy(&rest));
        }
        let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status line");
        let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        assert_ne!(code, 500, "500: {text}");
        if code >= 400 {
            assert!(headers.to_ascii_lowercase().contains("content-type: application/problem+json"), "{headers}");
        }
        (code, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
    }

    pub async fn join(&self, user: i64, concert: i64) -> Resp {
        self.post("/api/v1/queue/tokens", None, json!({ "userId": user, "concertId": concert })).await
    }

    pub async fn status(&self, token: &str) -> Resp {
        self.get("/api/v1/queue/status", Some(token)).await
    }

    /// Joins and polls until admitted; the poll is a condition with a deadline, not a sleep.
    pub async fn activate(&self, user: i64, concert: i64) -> String {
        let r = self.join(user, concert).await;
        assert!(r.status.is_success(), "join failed: {} {}", r.status, r.body);
        let token = r.body["token"].as_str().unwrap().to_owned();
        self.wait_for_status(&token, "ACTIVE", Duration::from_secs(20)).await;
        token
    }

    pub async fn wait_for_status(&self, token: &str, want: &str, within: Duration) -> Resp {
        let deadline = Instant::now() + within;
        loop {
            let s = self.status(token).await;
            if s.body["status"] == want {
                return s;
            }
            assert!(Instant::now() < deadline, "token never became {want}: last {}", s.body);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn charge(&self, user: i64, amount: i64) -> Resp {
        self.post(&format!("/api/v1/users/{user}/points/charge"), None, json!({ "amount": amount })).await
    }

    pub async fn balance(&self, user: i64) -> i64 {
        let r = self.get(&format!("/api/v1/users/{user}/points"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["balance"].as_i64().unwrap()
    }

    pub async fn hold(&self, token: &str, schedule: i64, seat: i64) -> Resp {
        self.post("/api/v1/reservations", Some(token), json!({ "scheduleId": schedule, "seatNo": seat })).await
    }

    pub async fn pay(&self, token: &str, reservation: i64, key: &str) -> Resp {
        self.send(
            Method::POST,
            "/api/v1/payments",
            Some(token),
            Some(json!({ "reservationId": reservation })),
            &[("Idempotency-Key", key)],
        )
        .await
    }

    pub async fn seat_status(&self, token: &str, schedule: i64, seat: i64) -> String {
        let r = self.get(&format!("/api/v1/schedules/{schedule}/seats"), Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["seats"].as_array().unwrap().iter().find(|s| s["seatNo"] == seat).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

async fn into_resp(res: reqwest::Response) -> Resp {
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    // Every error is problem+json with a stable code, and nothing a client sends is a 500.
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "500: {body}");
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{status} {body}"
        );
        assert!(body["code"].is_string(), "problem without code: {body}");
        assert_eq!(body["status"], status.as_u16(), "{body}");
    }
    Resp { status, headers, body }
}
