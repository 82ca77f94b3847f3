//! The operations kit against a running server: every `boxoffice_*` metric that the Grafana
//! dashboard and the Prometheus rules query is exported, and the container health check works.

#[path = "common/http.rs"]
mod http;
#[path = "common/scaleout.rs"]
mod scaleout;

use http::call;
use reqwest::Method;

use boxoffice::cli::ServeArgs;
use boxoffice::server::Server;
use boxoffice::store::SeedSpec;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Exported only where it can be known: the memory limit exists only inside a cgroup with one.
const ONLY_UNDER_A_MEMORY_LIMIT: &[&str] = &["boxoffice_process_memory_limit_bytes"];

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().parent().unwrap()
}

fn exported_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| n.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_query_is_exported() {
    if !scaleout::scaleout_ready() {
        return;
    }
    let listed = Command::new("bash").arg(repo_root().join("deploy/check.sh")).arg("--list-metrics").output().unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let wanted: BTreeSet<String> = String::from_utf8_lossy(&listed.stdout).lines().map(str::to_owned).collect();
    assert!(wanted.len() > 20, "the dashboard and rules name the service's metrics: {wanted:?}");

    // Scale-out mode, so the Redis metrics exist too; then one purchase touches the rest.
    let space = scaleout::ScaleOutSpace::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut a = ServeArgs::for_tests(dir.path());
    a.store.database_url = Some(space.database_url.clone());
    a.redis.redis_url = Some(scaleout::redis_url());
    a.redis.redis_prefix = space.prefix.clone();
    a.admission_rate = 1000.0;
    a.admission_tick = Duration::from_millis(10);
    let server = Server::start(a).await.unwrap();
    server
        .app
        .store
        .seed(
            SeedSpec { users: 5, concerts: 1, schedules: 1, seats: 5, balance: 1_000_000 },
            boxoffice::domain::Millis::now(),
        )
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let c = reqwest::Client::new();
    let joined =
        call(&c, Method::POST, format!("{base}/api/v1/queue/tokens"), None, Some(json!({"userId": 1, "concertId": 1})))
            .await
            .body;
    let token = joined["token"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while call(&c, Method::GET, format!("{base}/api/v1/queue/status"), Some(&token), None).await.body["status"]
        != "ACTIVE"
    {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hold = call(
        &c,
        Method::POST,
        format!("{base}/api/v1/reservations"),
        Some(&token),
        Some(json!({"scheduleId": 1, "seatNo": 1})),
    )
    .await
    .body;
    let paid = c
        .post(format!("{base}/api/v1/payments"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "ops-1")
        .json(&json!({"reservationId": hold["reservationId"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 201);
    // A problem answer is counted by route, status and problem code.
    let refused = c
        .post(format!("{base}/api/v1/reservations"))
        .json(&json!({"scheduleId": 1, "seatNo": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // The dependency probe and the sweeper run on their own clocks: wait for their first report.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let exported = loop {
        let text = c.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        let names = exported_names(&text);
        let missing: Vec<_> =
            wanted.iter().filter(|w| !names.contains(*w) && !ONLY_UNDER_A_MEMORY_LIMIT.contains(&w.as_str())).collect();
        if missing.is_empty() {
            break names;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "queried by the dashboard or rules but not exported: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(exported.contains("boxoffice_http_requests_total"));
    // Labels are route templates, never raw paths or ids.
    let text = c.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("boxoffice_http_problems_total{")
            && l.contains("route=\"/api/v1/reservations\"")
            && l.contains("status=\"401\"")
            && l.contains("code=\"TOKEN_MISSING\"")
            && l.ends_with(" 1")),
        "no problem counter for the refused hold"
    );
    assert!(text.contains("route=\"/api/v1/reservations\""));
    assert!(!text.contains("route=\"/api/v1/users/1/"), "a raw path leaked into a label");

    // The container health check: ready → 0, nothing listening → 1.
    let bin = env!("CARGO_BIN_EXE_boxoffice");
    let ok = Command::new(bin).args(["healthcheck", "--url", &format!("{base}/health/ready")]).status().unwrap();
    assert!(ok.success());
    server.stop().await;
    let down = Command::new(bin)
        .args(["healthcheck", "--url", &format!("{base}/health/ready"), "--timeout", "1s"])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1), "{}", String::from_utf8_lossy(&down.stderr));
}
