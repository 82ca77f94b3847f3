//! Dependency failure: a private redis-server and a private PostgreSQL that the test stops and
//! starts again. The service must answer 503 problem+json with Retry-After within its timeout,
//! never hang, keep serving what does not need the missing dependency, and recover by itself.

#[path = "common/http.rs"]
mod http;
#[path = "common/scaleout.rs"]
mod scaleout;

use http::{call, Answer};

use boxoffice::cli::ServeArgs;
use boxoffice::server::Server;
use boxoffice::store::SeedSpec;
use boxoffice_testkit::{free_port, PrivatePostgres, PrivateRedis};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn tool(name: &str) -> Option<PathBuf> {
    boxoffice_testkit::pg_tool(name).ok()
}

/// Present locally, mandatory under CI=true.
fn require(what: &str, ok: bool) -> bool {
    if ok {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true needs {what}");
    }
    eprintln!("skipping: {what} is not available");
    false
}

async fn start_server(db: &str, redis: &str, prefix: &str, dir: &Path) -> Server {
    let mut a = ServeArgs::for_tests(dir);
    a.store.database_url = Some(db.to_owned());
    a.store.db_timeout = Duration::from_secs(1);
    a.store.db_pool_size = Some(4);
    a.redis.redis_url = Some(redis.to_owned());
    a.redis.redis_prefix = prefix.to_owned();
    a.redis.redis_timeout = Duration::from_millis(500);
    a.admission_rate = 1000.0;
    a.admission_tick = Duration::from_millis(20);
    Server::start(a).await.expect("server starts")
}

fn assert_unavailable(a: &Answer, within: Duration, what: &str) {
    assert_eq!(a.status, 503, "{what}: {}", a.body);
    assert!(a.problem && a.retry_after, "{what}: 503 must be problem+json with Retry-After");
    assert_eq!(a.body["code"], "DEPENDENCY_UNAVAILABLE", "{what}");
    assert!(a.took < within, "{what} took {:?}", a.took);
}

async fn until_ok(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "{what} never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_means_503_fast_and_recovers_without_restart() {
    use reqwest::Method;
    if !scaleout::scaleout_ready()
        || !require("redis-server", Command::new("redis-server").arg("--version").output().is_ok())
    {
        return;
    }
    let space = scaleout::ScaleOutSpace::create().await;
    let port = free_port().unwrap();
    let mut redis = PrivateRedis::start(Some(port)).expect("redis-server starts");
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&space.database_url, &format!("redis://127.0.0.1:{port}"), "outage:", dir.path()).await;
    server
        .app
        .store
        .seed(
            SeedSpec { users: 10, concerts: 1, schedules: 1, seats: 10, balance: 0 },
            boxoffice::domain::Millis::now(),
        )
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let c = reqwest::Client::new();
    let join = |user: i64| {
        call(
            &c,
            Method::POST,
            format!("{base}/api/v1/queue/tokens"),
            None,
            Some(json!({ "userId": user, "concertId": 1 })),
        )
    };
    let first = join(1).await;
    assert_eq!(first.status, 201);
    let token = first.body["token"].as_str().unwrap().to_owned();

    // Killed: connections are refused.
    redis.kill();
    assert_unavailable(&join(2).await, Duration::from_millis(1500), "join with Redis killed");
    let status = call(&c, Method::GET, format!("{base}/api/v1/queue/status"), Some(&token), None).await;
    assert_unavailable(&status, Duration::from_millis(1500), "status with Redis killed");
    let ready = call(&c, Method::GET, format!("{base}/health/ready"), None, None).await;
    assert_eq!(
        (ready.status, ready.body["dependencies"]["queue"]["state"].as_str()),
        (503, Some("down")),
        "{}",
        ready.body
    );
    assert_eq!(ready.body["dependencies"]["database"]["state"], "up");
    // What does not need the queue keeps working.
    let charge =
        call(&c, Method::POST, format!("{base}/api/v1/users/1/points/charge"), None, Some(json!({ "amount": 5 })))
            .await;
    assert_eq!(charge.status, 200);

    // Back on the same port (empty, as it keeps nothing on disk): the service recovers by itself.
    redis = PrivateRedis::start(Some(port)).expect("redis-server starts again");
    until_ok("join after Redis came back", async || join(3).await.status == 201).await;
    let ready = call(&c, Method::GET, format!("{base}/health/ready"), None, None).await;
    assert_eq!(ready.status, 200);

    // Stalled (SIGSTOP): the timeout, not the kernel, must end the wait.
    redis.signal("-STOP");
    let stalled = join(4).await;
    redis.signal("-CONT");
    assert_unavailable(&stalled, Duration::from_millis(1500), "join with Redis stopped");
    until_ok("join after Redis resumed", async || join(5).await.status == 201).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_means_503_fast_and_recovers_without_restart() {
    use reqwest::Method;
    let tools = tool("initdb").is_some() && tool("pg_ctl").is_some() && Path::new("/usr/sbin/runuser").exists();
    if !scaleout::scaleout_ready() || !require("initdb, pg_ctl and runuser", tools) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let pg = PrivatePostgres::start(work.path(), 20).expect("a private PostgreSQL starts");
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("outage-pg-{}:", pg.port);
    let server =
        start_server(&format!("{}/postgres", pg.base_url()), &scaleout::redis_url(), &prefix, dir.path()).await;
    server
        .app
        .store
        .seed(
            SeedSpec { users: 10, concerts: 1, schedules: 1, seats: 10, balance: 0 },
            boxoffice::domain::Millis::now(),
        )
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let c = reqwest::Client::new();
    let charge =
        || call(&c, Method::POST, format!("{base}/api/v1/users/1/points/charge"), None, Some(json!({ "amount": 5 })));
    assert_eq!(charge().await.status, 200);
    let joined = call(
        &c,
        Method::POST,
        format!("{base}/api/v1/queue/tokens"),
        None,
        Some(json!({ "userId": 1, "concertId": 1 })),
    )
    .await;
    let token = joined.body["token"].as_str().unwrap().to_owned();

    pg.stop().unwrap();
    assert_unavailable(&charge().await, Duration::from_millis(2500), "charge with PostgreSQL down");
    let balance = call(&c, Method::GET, format!("{base}/api/v1/users/1/points"), None, None).await;
    assert_unavailable(&balance, Duration::from_millis(2500), "balance with PostgreSQL down");
    let ready = call(&c, Method::GET, format!("{base}/health/ready"), None, None).await;
    assert_eq!(
        (ready.status, ready.body["dependencies"]["database"]["state"].as_str()),
        (503, Some("down")),
        "{}",
        ready.body
    );
    // The waiting room lives in Redis and keeps answering.
    let status = call(&c, Method::GET, format!("{base}/api/v1/queue/status"), Some(&token), None).await;
    assert_eq!(status.status, 200, "{}", status.body);

    pg.resume().unwrap();
    until_ok("charge after PostgreSQL came back", async || charge().await.status == 200).await;
    let balance = call(&c, Method::GET, format!("{base}/api/v1/users/1/points"), None, None).await;
    assert_eq!(balance.body["balance"], 10, "nothing charged while it was down, nothing lost");
    server.stop().await;
    // The private database goes with the test; the shared Redis keeps nothing of it.
    let client = redis::Client::open(scaleout::redis_url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut c).await.unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut c).await.unwrap();
    }
}
