//! Acknowledged means durable: clients flood the embedded server with charges and payments,
//! the server is killed with SIGKILL at a random moment, several times, and after each restart
//! every answer the clients got is in the store exactly once, nothing unanswered is there twice,
//! and the audit is clean.
//!
//! CI runs a small scale. The full-scale drill is the same test with more rounds and clients:
//!   BOXOFFICE_CRASH_ROUNDS=10 BOXOFFICE_CRASH_CLIENTS=64 \
//!     cargo test --release --test durability -- --nocapture

use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const SEATS_PER_DATE: i64 = 5_000;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    /// A failing test must not leave its server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_boxoffice")
}

async fn start(dir: &std::path::Path) -> Server {
    let port = free_port();
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).unwrap();
    let child = Command::new(bin())
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--max-active", "100000", "--admission-rate", "100000", "--admission-tick", "10ms"])
        .args(["--join-rate-limit", "0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start boxoffice");
    let base = format!("http://127.0.0.1:{port}");
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = c.get(format!("{base}/health/ready")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the server did not become ready: {}", read_log(dir));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Server { child, base }
}

fn read_log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

#[derive(Debug, Clone)]
enum Ack {
    Charge { user: i64, amount: i64 },
    Payment { user: i64, payment: i64, amount: i64 },
}

/// One fan after another: join, charge a unique amount, hold their own seat, pay. Stops at the
/// first request that gets no answer (the server was killed).
async fn client(base: String, users: Vec<i64>, acks: Arc<Mutex<Vec<Ack>>>, tried: Arc<Mutex<Vec<i64>>>) {
    let c = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    for u in users {
        tried.lock().await.push(u);
        let post = |path: String, token: Option<String>, key: Option<String>, body: Value| {
            let mut r = c.post(format!("{base}{path}")).json(&body);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            if let Some(k) = key {
                r = r.header("Idempotency-Key", k);
            }
            r.send()
        };
        let Ok(r) = post("/api/v1/queue/tokens".into(), None, None, json!({"userId": u, "concertId": 1})).await else {
            return;
        };
        let Ok(body) = r.json::<Value>().await else { return };
        let token = body["token"].as_str().unwrap_or_default().to_owned();
        let mut active = body["status"] == "ACTIVE";
        while !active {
            let Ok(r) = c.get(format!("{base}/api/v1/queue/status")).bearer_auth(&token).send().await else { return };
            let Ok(s) = r.json::<Value>().await else { return };
            active = s["status"] == "ACTIVE";
            if s["status"] == "EXPIRED" {
                break;
            }
        }
        // A unique amount per user, so that an amount applied twice would show.
        let amount = 1_000_000 + u;
        let Ok(r) =
            post(format!("/api/v1/users/{u}/points/charge"), None, Some(format!("c-{u}")), json!({"amount": amount}))
                .await
        else {
            return;
        };
        if r.status().is_success() {
            acks.lock().await.push(Ack::Charge { user: u, amount });
        } else {
            continue;
        }
        let (schedule, seat) = (1 + (u - 1) / SEATS_PER_DATE, 1 + (u - 1) % SEATS_PER_DATE);
        let Ok(r) = post(
            "/api/v1/reservations".into(),
            Some(token.clone()),
            None,
            json!({"scheduleId": schedule, "seatNo": seat}),
        )
        .await
        else {
            return;
        };
        let Ok(hold) = r.json::<Value>().await else { return };
        let Some(reservation) = hold["reservationId"].as_i64() else { continue };
        let Ok(r) =
            post("/api/v1/payments".into(), Some(token), Some(format!("p-{u}")), json!({"reservationId": reservation}))
                .await
        else {
            return;
        };
        if r.status().is_success() {
            let Ok(receipt) = r.json::<Value>().await else { return };
            let payment = receipt["paymentId"].as_i64().expect("a receipt names its payment");
            let amount = receipt["amount"].as_i64().expect("a receipt has an amount");
            acks.lock().await.push(Ack::Payment { user: u, payment, amount });
        }
    }
}

/// Every acknowledged charge and payment is in the ledger exactly once; no charge or payment
/// appears twice; the audit is clean.
async fn verify(base: &str, dir: &std::path::Path, acks: &[Ack], tried: &[i64]) {
    let c = reqwest::Client::new();
    let mut charges: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut uses: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    for u in tried {
        let r = c.get(format!("{base}/api/v1/users/{u}/points/history?limit=100")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let h: Value = r.json().await.unwrap();
        for e in h["entries"].as_array().unwrap() {
            let amount = e["amount"].as_i64().unwrap();
            match e["kind"].as_str().unwrap() {
                "CHARGE" => charges.entry(*u).or_default().push(amount),
                _ => uses.entry(*u).or_default().push((e["paymentId"].as_i64().unwrap_or(0), amount)),
            }
        }
    }
    for (u, list) in &charges {
        assert_eq!(list.len(), 1, "user {u} was charged {} times: {list:?}", list.len());
    }
    for (u, list) in &uses {
        assert_eq!(list.len(), 1, "user {u} paid {} times: {list:?}", list.len());
    }
    for a in acks {
        match a {
            Ack::Charge { user, amount } => {
                assert_eq!(
                    charges.get(user).map(Vec::as_slice),
                    Some(&[*amount][..]),
                    "acknowledged charge of user {user} lost"
                )
            }
            Ack::Payment { user, payment, amount } => assert_eq!(
                uses.get(user).map(Vec::as_slice),
                Some(&[(*payment, *amount)][..]),
                "acknowledged payment {payment} of user {user} lost"
            ),
        }
    }
    let audit = Command::new(bin()).args(["audit", "--data-dir"]).arg(dir).output().unwrap();
    assert!(audit.status.success(), "audit after the restart: {}", String::from_utf8_lossy(&audit.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_charges_and_payments_survive_sigkill() {
    let rounds = knob("BOXOFFICE_CRASH_ROUNDS", 3);
    let clients = knob("BOXOFFICE_CRASH_CLIENTS", 12);
    let per_client = 2_000usize;
    let users = (rounds * clients * per_client) as i64;
    let dates = (users + SEATS_PER_DATE - 1) / SEATS_PER_DATE;
    let dir = tempfile::tempdir().unwrap();
    let seeded = Command::new(bin())
        .args(["seed", "--data-dir"])
        .arg(dir.path())
        .args(["--users", &users.to_string(), "--concerts", "1", "--schedules", &dates.to_string()])
        .args(["--seats", &SEATS_PER_DATE.to_string()])
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));

    let acks = Arc::new(Mutex::new(Vec::new()));
    let tried = Arc::new(Mutex::new(Vec::new()));
    let mut next_user = 1i64;
    for round in 1..=rounds {
        let mut server = start(dir.path()).await;
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let users: Vec<i64> = (next_user..next_user + per_client as i64).collect();
                next_user += per_client as i64;
                tokio::spawn(client(server.base.clone(), users, acks.clone(), tried.clone()))
            })
            .collect();
        // Kill at a random moment once some answers are in, so the kill lands mid-flood.
        let before = acks.lock().await.len();
        let deadline = Instant::now() + Duration::from_secs(60);
        while acks.lock().await.len() < before + 20 {
            assert!(Instant::now() < deadline, "no acknowledgements in round {round}: {}", read_log(dir.path()));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let wait = rand::thread_rng().gen_range(50..600);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.child.kill().expect("SIGKILL");
        server.child.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let server = start(dir.path()).await;
        let (acked, tried_now) = (acks.lock().await.clone(), tried.lock().await.clone());
        verify(&server.base, dir.path(), &acked, &tried_now).await;
        let payments = acked.iter().filter(|a| matches!(a, Ack::Payment { .. })).count();
        eprintln!(
            "round {round}: killed after {wait} ms; {} acknowledged ({payments} payments) so far, all present once",
            acked.len()
        );
        let mut s = server;
        s.child.kill().unwrap();
        s.child.wait().unwrap();
    }
}

/// A backup taken while clients buy is a consistent store: restored into a fresh data directory
/// it passes the audit, holds every purchase acknowledged before the backup began, and a restore
/// under a running server is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_serving_restores_and_audits_clean() {
    let dir = tempfile::tempdir().unwrap();
    let seeded = Command::new(bin())
        .args(["seed", "--data-dir"])
        .arg(dir.path())
        .args(["--users", "20000", "--concerts", "1", "--schedules", "4", "--seats", &SEATS_PER_DATE.to_string()])
        .output()
        .unwrap();
    assert!(seeded.status.success());
    let mut server = start(dir.path()).await;
    let acks = Arc::new(Mutex::new(Vec::new()));
    let tried = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..8i64)
        .map(|i| {
            let users: Vec<i64> = (1 + i * 2_000..1 + (i + 1) * 2_000).collect();
            tokio::spawn(client(server.base.clone(), users, acks.clone(), tried.clone()))
        })
        .collect();
    while acks.lock().await.len() < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = acks.lock().await.clone();
    let file = dir.path().join("backups").join("during.db");
    let backup =
        Command::new(bin()).args(["backup", "--data-dir"]).arg(dir.path()).arg("--to").arg(&file).output().unwrap();
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    let busy = Command::new(bin())
        .args(["restore", "--force", "--data-dir"])
        .arg(dir.path())
        .arg("--from")
        .arg(&file)
        .output();
    assert!(!busy.unwrap().status.success(), "a restore under a running server is refused");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }

    let fresh = tempfile::tempdir().unwrap();
    let restored = Command::new(bin())
        .args(["restore", "--data-dir"])
        .arg(fresh.path())
        .arg("--from")
        .arg(&file)
        .output()
        .unwrap();
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    let audit = Command::new(bin()).args(["audit", "--data-dir"]).arg(fresh.path()).output().unwrap();
    assert!(audit.status.success(), "the restored store fails the audit: {}", String::from_utf8_lossy(&audit.stdout));
    // The token secret is kept beside the store; copy it as the docs say, then serve the copy.
    std::fs::copy(dir.path().join("token.secret"), fresh.path().join("token.secret")).unwrap();
    let copy = start(fresh.path()).await;
    let users: std::collections::BTreeSet<i64> = before
        .iter()
        .map(|a| match a {
            Ack::Charge { user, .. } | Ack::Payment { user, .. } => *user,
        })
        .collect();
    let users: Vec<i64> = users.into_iter().collect();
    verify(&copy.base, fresh.path(), &before, &users).await;
    let mut copy = copy;
    copy.child.kill().unwrap();
    copy.child.wait().unwrap();
}
