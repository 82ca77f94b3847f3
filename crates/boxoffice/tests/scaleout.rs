//! Scale-out mode as it is deployed: several real server processes sharing one PostgreSQL and one
//! Redis, and what happens when either dependency goes away and comes back.

#[path = "common/scaleout.rs"]
mod scaleout;

use base64::Engine;
use futures::future::join_all;
use futures::StreamExt;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `boxoffice serve` child process on a port of its own choosing.
struct Instance {
    child: Child,
    base: String,
}

impl Instance {
    fn start(db: &str, redis: &str, prefix: &str, extra: &[&str]) -> Instance {
        let dir = tempfile::tempdir().unwrap().keep();
        let mut child = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--database-url",
                db,
                "--redis-url",
                redis,
                "--redis-prefix",
                prefix,
            ])
            .args(["--data-dir", dir.to_str().unwrap(), "--token-secret", "shared-secret-of-the-deployment"])
            .args(["--admission-tick", "10ms"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start boxoffice");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("server printed its address").unwrap();
            if let Some(addr) = line.strip_prefix("boxoffice listening on ") {
                break addr.trim().to_owned();
            }
        };
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Instance { child, base }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seed(db: &str, args: &[&str]) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_boxoffice")).args(["seed", "--database-url", db]).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn post(c: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = c.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn get(c: &reqwest::Client, url: String, token: &str) -> (u16, Value) {
    let res = c.get(url).bearer_auth(token).send().await.expect("request");
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn activate(c: &reqwest::Client, base: &str, user: i64) -> String {
    let (_, body) =
        post(c, format!("{base}/api/v1/queue/tokens"), None, json!({ "userId": user, "concertId": 1 })).await;
    let token = body["token"].as_str().expect("token").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(c, format!("{base}/api/v1/queue/status"), &token).await.1["status"] != "ACTIVE" {
        assert!(Instant::now() < deadline, "user {user} never admitted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    token
}

fn seq_of(token: &str) -> u64 {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    u64::from_be_bytes(bytes[16..24].try_into().unwrap())
}

async fn audit(db: &str, prefix: &str) -> Value {
    let (db, prefix) = (db.to_owned(), prefix.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_boxoffice"))
            .args(["audit", "--database-url", &db, "--redis-url", &scaleout::redis_url(), "--redis-prefix", &prefix])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    serde_json::from_slice(&out.stdout).expect("audit prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sell_each_seat_once() {
    if !scaleout::scaleout_ready() {
        return;
    }
    let space = scaleout::ScaleOutSpace::create().await;
    seed(&space.database_url, &["--users", "400", "--concerts", "1", "--schedules", "1", "--seats", "50"]);
    let extra = ["--max-active", "1000", "--admission-rate", "100000", "--active-per-seat", "8"];
    let a = Instance::start(&space.database_url, &scaleout::redis_url(), &space.prefix, &extra);
    let b = Instance::start(&space.database_url, &scaleout::redis_url(), &space.prefix, &extra);
    let c = reqwest::Client::new();
    let bases = [a.base.clone(), b.base.clone()];
    // 400 clients, half on each instance, 8 per seat.
    let tokens = join_all((1..=400).map(|u| {
        let (c, base) = (&c, &bases[(u % 2) as usize]);
        async move { (base.clone(), activate(c, base, u).await) }
    }))
    .await;
    let results = join_all(tokens.iter().enumerate().map(|(i, (base, token))| {
        let c = &c;
        async move {
            post(
                c,
                format!("{base}/api/v1/reservations"),
                Some(token),
                json!({ "scheduleId": 1, "seatNo": i % 50 + 1 }),
            )
            .await
        }
    }))
    .await;
    let won = results.iter().filter(|(s, _)| *s == 201).count();
    let lost = results.iter().filter(|(s, b)| *s == 409 && b["code"] == "SEAT_UNAVAILABLE").count();
    let other: Vec<_> =
        results.iter().filter(|(s, b)| *s != 201 && !(*s == 409 && b["code"] == "SEAT_UNAVAILABLE")).collect();
    assert_eq!((won, lost), (50, 350), "exactly one hold per seat across both instances; others: {other:?}");
    let report = audit(&space.database_url, &space.prefix).await;
    assert_eq!(report["ok"], true, "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_keep_one_fifo_line_within_the_limit() {
    if !scaleout::scaleout_ready() {
        return;
    }
    let space = scaleout::ScaleOutSpace::create().await;
    seed(&space.database_url, &["--users", "2000", "--concerts", "1", "--schedules", "1", "--seats", "10"]);
    let extra = ["--max-active", "50", "--admission-rate", "400", "--claim-window", "200ms"];
    let a = Instance::start(&space.database_url, &scaleout::redis_url(), &space.prefix, &extra);
    let b = Instance::start(&space.database_url, &scaleout::redis_url(), &space.prefix, &extra);
    // Watch the shared active set while both admission loops run.
    let redis = redis::Client::open(scaleout::redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let active_key = format!("{}c:1:act", space.prefix);
    let c = reqwest::Client::new();
    let bases = [a.base.clone(), b.base.clone()];
    let joins =
        join_all(
            (1..=2000).map(|u| {
                let (c, base) = (&c, &bases[(u % 2) as usize]);
                async move {
                    post(c, format!("{base}/api/v1/queue/tokens"), None, json!({ "userId": u, "concertId": 1 })).await
                }
            }),
        );
    let sampler = async {
        let mut peak = 0u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let active: u64 = redis::cmd("HLEN").arg(&active_key).query_async(&mut conn).await.unwrap();
            let head: Option<u64> =
                redis::cmd("GET").arg(format!("{}c:1:head", space.prefix)).query_async(&mut conn).await.unwrap();
            peak = peak.max(active);
            if head == Some(2000) || Instant::now() > deadline {
                return (peak, head);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (joined, (peak, head)) = tokio::join!(joins, sampler);
    let mut seqs: Vec<u64> = joined
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, 201, "{b}");
            seq_of(b["token"].as_str().unwrap())
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=2000).collect::<Vec<u64>>(), "one line: every place issued once, no gaps");
    assert_eq!(head, Some(2000), "everyone was admitted in the end (no-shows dropped after the claim window)");
    assert!(peak <= 50, "active users exceeded the limit: {peak}");
    assert!(peak > 0);
    let report = audit(&space.database_url, &space.prefix).await;
    assert_eq!(report["ok"], true, "{report:#}");
}

/// A hold let go on one instance is free at once on the other: its seat map is told (a notice
/// over Redis), not left to age out (here it would take a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_on_one_instance_frees_the_seat_on_the_other() {
    if !scaleout::scaleout_ready() {
        return;
    }
    let space = scaleout::ScaleOutSpace::create().await;
    seed(&space.database_url, &["--users", "10", "--concerts", "1", "--schedules", "1", "--seats", "10"]);
    let extra = ["--seat-snapshot-max-age", "60s"];
    let a = Instance::start(&space.database_url, &scaleout::redis_url(), &space.prefix, &extra);
    let b = Instance::start(&space.database_url, &scaleout::redis_url(), &space.prefix, &extra);
    let c = reqwest::Client::new();
    let (owner, other) = (activate(&c, &a.base, 1).await, activate(&c, &b.base, 2).await);
    let seat_on_b = |status: &'static str| {
        let (c, base, token) = (&c, b.base.clone(), other.clone());
        async move {
            let (_, map) = get(c, format!("{base}/api/v1/schedules/1/seats"), &token).await;
            map["seats"][2]["status"] == status
        }
    };
    assert!(seat_on_b("AVAILABLE").await, "instance b has loaded the seat map");
    let (code, held) =
        post(&c, format!("{}/api/v1/reservations", a.base), Some(&owner), json!({"scheduleId": 1, "seatNo": 3})).await;
    assert_eq!(code, 201, "{held}");
    // Instance b still shows the seat free (its map is a minute fresh), and refuses a hold on
    // it only when the store says so.
    let (code, refused) =
        post(&c, format!("{}/api/v1/reservations", b.base), Some(&other), json!({"scheduleId": 1, "seatNo": 3})).await;
    assert_eq!((code, refused["code"].as_str()), (409, Some("SEAT_UNAVAILABLE")));
    let id = held["reservationId"].as_i64().unwrap();
    let (code, _) = post(&c, format!("{}/api/v1/reservations/{id}/release", a.base), Some(&owner), json!({})).await;
    assert_eq!(code, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !seat_on_b("AVAILABLE").await {
        assert!(std::time::Instant::now() < deadline, "instance b never heard of the release");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (code, mine) =
        post(&c, format!("{}/api/v1/reservations", b.base), Some(&other), json!({"scheduleId": 1, "seatNo": 3})).await;
    assert_eq!(code, 201, "the released seat is b's to hold: {mine}");
    let report = audit(&space.database_url, &space.prefix).await;
    assert_eq!(report["ok"], true, "{report:#}");
}

/// A scheduled on-sale over three instances: 2,000 fans join the pre-queue, spread over all of
/// them, before the start. At the start exactly one draw runs: every entry gets exactly one
/// place, in the order `verify-draw` recomputes from the published seed, and a later join comes
/// after all of them. A limit changed on one instance holds on the others within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_hold_one_draw_and_share_live_limits() {
    if !scaleout::scaleout_ready() {
        return;
    }
    const SECRET: &str = "operator-secret-of-the-deployment";
    let space = scaleout::ScaleOutSpace::create().await;
    seed(&space.database_url, &["--users", "2100", "--concerts", "1", "--schedules", "1", "--seats", "2000"]);
    let extra = ["--max-active", "10", "--admission-rate", "100000", "--admin-token", SECRET];
    let instances: Vec<Instance> =
        (0..3).map(|_| Instance::start(&space.database_url, &scaleout::redis_url(), &space.prefix, &extra)).collect();
    let bases: Vec<String> = instances.iter().map(|i| i.base.clone()).collect();
    let c = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let admin = |base: &str, body: Value| {
        c.patch(format!("{base}/api/v1/admin/concerts/1/line")).bearer_auth(SECRET).json(&body).send()
    };
    let starts = chrono::Utc::now() + chrono::Duration::seconds(25);
    let r = admin(&bases[0], json!({ "onSaleAt": starts.to_rfc3339() })).await.unwrap();
    assert_eq!(r.status(), 200);
    // The other instances hear of the change over Redis, within a second (a join that reaches one
    // before that is queued FIFO, as without an on-sale): wait until each publishes the commitment.
    let deadline = Instant::now() + Duration::from_secs(10);
    for base in &bases {
        while c.get(format!("{base}/api/v1/concerts/1/draw")).send().await.unwrap().status() != 200 {
            assert!(Instant::now() < deadline, "{base} never heard of the on-sale");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // 2,000 joins, 64 at a time, round-robin over the instances.
    let joined: Vec<(u16, Value)> =
        futures::stream::iter(1..=2000i64)
            .map(|u| {
                let (c, base) = (&c, &bases[(u % 3) as usize]);
                async move {
                    post(c, format!("{base}/api/v1/queue/tokens"), None, json!({ "userId": u, "concertId": 1 })).await
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
    assert!(chrono::Utc::now() < starts, "the pre-queue filled before the on-sale");
    let mut entries_seen = std::collections::HashMap::new();
    for (code, body) in &joined {
        assert_eq!((*code, body["status"].as_str()), (201, Some("PRE_QUEUE")), "{body}");
        assert_eq!(seq_of(body["token"].as_str().unwrap()), 0, "no place before the draw");
        entries_seen.insert(body["entryId"].as_str().unwrap().to_owned(), ());
    }
    assert_eq!(entries_seen.len(), 2000, "one entry per fan");
    // The draw, once the on-sale starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    let drawn = loop {
        let d: Value =
            c.get(format!("{}/api/v1/concerts/1/draw", bases[1])).send().await.unwrap().json().await.unwrap();
        if d["drawn"] == true {
            break d;
        }
        assert!(Instant::now() < deadline, "the draw never ran: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for base in &bases {
        let d: Value = c.get(format!("{base}/api/v1/concerts/1/draw")).send().await.unwrap().json().await.unwrap();
        assert_eq!(d, drawn, "every instance publishes the same draw");
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), drawn.to_string()).unwrap();
    let verified = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args(["verify-draw", file.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));
    // Every entry has exactly one place, and the places follow the published order.
    let entries: Vec<String> = serde_json::from_value(drawn["entries"].clone()).unwrap();
    assert_eq!(entries.len(), 2000);
    let redis = redis::Client::open(scaleout::redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let users: std::collections::HashMap<String, u64> =
        redis::cmd("HGETALL").arg(format!("{}c:1:users", space.prefix)).query_async(&mut conn).await.unwrap();
    let mut seqs: Vec<u64> = users.values().copied().collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=2000).collect::<Vec<u64>>(), "places 1..2000, each once");
    let entry_of: std::collections::HashMap<u64, String> = joined
        .iter()
        .map(|(_, b)| (b["entryId"].as_str().unwrap().to_owned(), b["token"].as_str().unwrap()))
        .map(|(e, t)| {
            let payload = t.split('.').nth(1).unwrap();
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
            let user = i64::from_be_bytes(bytes[8..16].try_into().unwrap());
            (users[&user.to_string()], e)
        })
        .collect();
    let by_place: Vec<String> = (1..=2000).map(|s| entry_of[&s].clone()).collect();
    assert_eq!(by_place, entries, "place n holds the n-th drawn entry");
    let mut draws = 0.0;
    for base in &bases {
        let metrics = c.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        draws += metrics
            .lines()
            .find(|l| l.starts_with("boxoffice_draws_total"))
            .and_then(|l| l.split_whitespace().last())
            .map_or(0.0, |v| v.parse::<f64>().unwrap());
    }
    assert_eq!(draws, 1.0, "one instance drew, once");
    let (code, late) =
        post(&c, format!("{}/api/v1/queue/tokens", bases[2]), None, json!({ "userId": 2001, "concertId": 1 })).await;
    assert_eq!(code, 201);
    assert_eq!(seq_of(late["token"].as_str().unwrap()), 2001, "a later join comes after every drawn entry");
    // A limit changed on instance 0 holds on instances 1 and 2 within a second.
    let changed = Instant::now();
    assert_eq!(admin(&bases[0], json!({ "maxActive": 25 })).await.unwrap().status(), 200);
    let active_key = format!("{}c:1:act", space.prefix);
    loop {
        let active: u64 = redis::cmd("HLEN").arg(&active_key).query_async(&mut conn).await.unwrap();
        let mut all = true;
        for base in &bases[1..] {
            let l: Value = c
                .get(format!("{base}/api/v1/admin/concerts/1/line"))
                .bearer_auth(SECRET)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            all &= l["maxActive"] == 25;
        }
        if all && active == 25 {
            break;
        }
        // The notice carries the change at once and the 500 ms refresh bounds a lost one; 3 s
        // leaves room for a box busy with the other tests.
        assert!(
            changed.elapsed() < Duration::from_secs(3),
            "the new limit did not reach every instance: active {active}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = audit(&space.database_url, &space.prefix).await;
    assert_eq!(report["ok"], true, "{report:#}");
}

/// The value of one counter series in an instance's /metrics, 0 when absent.
async fn counter(c: &reqwest::Client, base: &str, series: &str) -> f64 {
    let text = c.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
}

/// Polls `url` with `token` until `done` holds for the body (each instance's view of the line is
/// one admission tick old at most), and returns that body.
async fn await_status(c: &reqwest::Client, base: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(c, format!("{base}/api/v1/queue/status"), token).await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "status never reached the expected state: {body}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Status polls from people waiting are answered from each instance's view of the line (no
/// Redis round trip), and that view follows what other instances do: a leave on A moves the
/// people behind up on B, an admission by A's tick reaches the person polling B, and a leaver's
/// token reads EXPIRED everywhere. Someone A admitted in the join's answer is ACTIVE on B at
/// once, for booking and for polls (a clean-clone CI run caught B answering 403 TOKEN_WAITING
/// from a view one tick old).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_are_answered_locally_and_follow_the_other_instances() {
    if !scaleout::scaleout_ready() {
        return;
    }
    let space = scaleout::ScaleOutSpace::create().await;
    seed(&space.database_url, &["--users", "20", "--concerts", "1", "--schedules", "1", "--seats", "10"]);
    // One admission a second: people more than two places back are certainly waiting until
    // the next tick, so B answers their polls itself.
    let extra = ["--max-active", "1", "--admission-rate", "1"];
    let a = Instance::start(&space.database_url, &scaleout::redis_url(), &space.prefix, &extra);
    let b = Instance::start(&space.database_url, &scaleout::redis_url(), &space.prefix, &extra);
    let c = reqwest::Client::new();
    let mut tokens = Vec::new();
    for user in 1..=5 {
        let (status, body) =
            post(&c, format!("{}/api/v1/queue/tokens", a.base), None, json!({ "userId": user, "concertId": 1 })).await;
        assert_eq!(status, 201, "{body}");
        tokens.push(body["token"].as_str().unwrap().to_owned());
        if user == 1 {
            assert_eq!(body["status"], "ACTIVE", "room and nobody waiting: admitted in the answer: {body}");
            let res =
                c.get(format!("{}/api/v1/concerts/1/schedules", b.base)).bearer_auth(&tokens[0]).send().await.unwrap();
            assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
            let (status, body) = get(&c, format!("{}/api/v1/queue/status", b.base), &tokens[0]).await;
            assert_eq!((status, body["status"].as_str()), (200, Some("ACTIVE")), "{body}");
        }
    }
    let position = |n: u64| move |b: &Value| b["status"] == "WAITING" && b["position"] == n;
    // User 4 is third in line behind the one active user; B answers it from its own view.
    let local = "boxoffice_queue_status_total{answered=\"local\"}";
    let before = counter(&c, &b.base, local).await;
    // B's view of the line comes with its next tick after the joins: until then Redis answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        await_status(&c, &b.base, &tokens[3], position(3)).await;
        if counter(&c, &b.base, local).await > before {
            break;
        }
        assert!(Instant::now() < deadline, "B never answered the waiting user's polls without Redis");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // User 2 leaves on A: on B, user 4 moves up and user 2's token has ended.
    let (status, body) = post(&c, format!("{}/api/v1/queue/leave", a.base), Some(&tokens[1]), json!({})).await;
    assert_eq!((status, body["was"].as_str()), (200, Some("WAITING")), "{body}");
    await_status(&c, &b.base, &tokens[3], position(2)).await;
    await_status(&c, &b.base, &tokens[1], |b| b["status"] == "EXPIRED").await;
    // User 1 (active) leaves on A: the slot goes to user 3, who hears it on B; user 4 is next.
    let (status, body) = post(&c, format!("{}/api/v1/queue/leave", a.base), Some(&tokens[0]), json!({})).await;
    assert_eq!((status, body["was"].as_str()), (200, Some("ACTIVE")), "{body}");
    await_status(&c, &b.base, &tokens[2], |b| b["status"] == "ACTIVE").await;
    await_status(&c, &b.base, &tokens[3], position(1)).await;
    // Everyone leaves; the next joiner is admitted (by the join's answer or the next tick) and
    // B, whose view may still have the old head, must not call them waiting.
    for t in &tokens[2..] {
        let (status, body) = post(&c, format!("{}/api/v1/queue/leave", a.base), Some(t), json!({})).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) =
        post(&c, format!("{}/api/v1/queue/tokens", a.base), None, json!({ "userId": 6, "concertId": 1 })).await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap();
    await_status(&c, &a.base, token, |b| b["status"] == "ACTIVE").await;
    let res = c.get(format!("{}/api/v1/concerts/1/schedules", b.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    let (status, body) = get(&c, format!("{}/api/v1/queue/status", b.base), token).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ACTIVE")), "{body}");
    let report = audit(&space.database_url, &space.prefix).await;
    assert_eq!(report["ok"], true, "{report:#}");
}
