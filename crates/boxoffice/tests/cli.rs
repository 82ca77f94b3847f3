//! The binary's commands, run as a user would run them.

#[path = "common/scaleout.rs"]
mod scaleout;

use std::process::Command;

fn boxoffice(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args(args)
        .env_remove("BOXOFFICE_DATABASE_URL")
        .output()
        .expect("runs")
}

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn help_explains_every_command_and_its_environment_variables() {
    let top = text(&boxoffice(&["--help"]));
    for cmd in ["serve", "migrate", "seed", "audit"] {
        assert!(top.contains(cmd), "--help lists {cmd}: {top}");
    }
    let serve = text(&boxoffice(&["serve", "--help"]));
    for flag in [
        "--bind",
        "--data-dir",
        "--database-url",
        "--redis-url",
        "--demo",
        "--max-active",
        "--admission-rate",
        "--claim-window",
        "--active-ttl",
        "--hold-ttl",
        "--token-secret",
        "--db-pool-size",
        "--db-timeout",
        "--log-format",
    ] {
        assert!(serve.contains(flag), "serve --help explains {flag}");
        let var = format!("BOXOFFICE_{}", flag.trim_start_matches("--").replace('-', "_").to_uppercase());
        assert!(serve.contains(&var), "serve --help names {var}");
    }
    let seed = text(&boxoffice(&["seed", "--help"]));
    for flag in ["--users", "--concerts", "--schedules", "--seats", "--balance"] {
        assert!(seed.contains(flag), "seed --help explains {flag}");
    }
}

#[test]
fn seed_refuses_a_second_run_and_audit_reports_clean_then_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let first = boxoffice(&[
        "seed",
        "--data-dir",
        d,
        "--users",
        "100000",
        "--concerts",
        "2",
        "--schedules",
        "2",
        "--seats",
        "100",
        "--balance",
        "5000",
    ]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("seeded 100000 users"));
    let second = boxoffice(&["seed", "--data-dir", d, "--users", "10"]);
    assert_eq!(second.status.code(), Some(3), "a second seed is refused: {}", text(&second));
    assert!(text(&second).contains("refused"));

    let clean = boxoffice(&["audit", "--data-dir", d]);
    assert!(clean.status.success(), "{}", text(&clean));
    let report: serde_json::Value = serde_json::from_slice(&clean.stdout).unwrap();
    assert_eq!(report["ok"], true);

    // Break two invariants behind the service's back; the audit must name both.
    let db = rusqlite::Connection::open(dir.path().join("boxoffice.db")).unwrap();
    db.execute("UPDATE users SET balance = balance + 1 WHERE id = 7", []).unwrap();
    db.execute("UPDATE seats SET status = 'SOLD' WHERE schedule_id = 1 AND seat_no = 4", []).unwrap();
    drop(db);
    let out = dir.path().join("audit.json");
    let broken = boxoffice(&["audit", "--data-dir", d, "--output", out.to_str().unwrap()]);
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    assert_eq!(report["ok"], false);
    let failed: Vec<_> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(failed.contains(&"balance_equals_ledger_and_is_not_negative".to_owned()), "{failed:?}");
    assert!(failed.contains(&"sold_seat_has_one_completed_payment".to_owned()), "{failed:?}");
}

#[test]
fn migrate_creates_the_schema_and_refuses_unknown_urls() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/x.db", dir.path().display());
    let ok = boxoffice(&["migrate", "--database-url", &url]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(dir.path().join("x.db").exists());
    let bad = boxoffice(&["migrate", "--database-url", "mysql://nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("neither a sqlite:// nor a postgres:// URL"), "{}", text(&bad));
}

#[tokio::test]
async fn seed_and_audit_work_on_postgres_and_redis() {
    if !scaleout::scaleout_ready() {
        return;
    }
    let space = scaleout::ScaleOutSpace::create().await;
    let db = space.database_url.clone();
    let run = move |args: Vec<String>| {
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            boxoffice(&args)
        })
        .join()
        .unwrap()
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let first = run(args(&["seed", "--database-url", &db, "--users", "100000", "--seats", "100", "--balance", "10"]));
    assert!(first.status.success(), "{}", text(&first));
    let second = run(args(&["seed", "--database-url", &db, "--users", "10"]));
    assert_eq!(second.status.code(), Some(3), "{}", text(&second));
    let redis = scaleout::redis_url();
    let audit = run(args(&["audit", "--database-url", &db, "--redis-url", &redis, "--redis-prefix", &space.prefix]));
    assert!(audit.status.success(), "{}", text(&audit));
    let report: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let names: Vec<_> =
        report["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect();
    assert!(names.contains(&"admission_is_fifo".to_owned()), "the Redis checks run too: {names:?}");
    let lonely = run(args(&["serve", "--database-url", &db, "--bind", "127.0.0.1:0"]));
    assert_eq!(lonely.status.code(), Some(2));
    assert!(text(&lonely).contains("needs --redis-url"), "{}", text(&lonely));
}

#[test]
fn verify_draw_accepts_a_fair_draw_and_refuses_a_tampered_one() {
    use boxoffice::domain::draw::{commitment, new_seed, order, PublishedDraw};
    let dir = tempfile::tempdir().unwrap();
    let seed = new_seed();
    let fair = PublishedDraw {
        concert_id: 1,
        commitment: commitment(&seed),
        entries: order(&seed, (0..300).map(|i| format!("{i:016x}"))),
        seed,
    };
    let check = |d: &serde_json::Value| {
        let path = dir.path().join("draw.json");
        std::fs::write(&path, d.to_string()).unwrap();
        boxoffice(&["verify-draw", path.to_str().unwrap()])
    };
    let ok = check(&serde_json::to_value(&fair).unwrap());
    assert!(ok.status.success() && text(&ok).contains("OK"), "{}", text(&ok));
    let mut swapped = fair.clone();
    swapped.entries.swap(10, 11);
    let bad = check(&serde_json::to_value(&swapped).unwrap());
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("place 11"), "{}", text(&bad));
    let mut forged = fair.clone();
    forged.seed = new_seed();
    let bad = check(&serde_json::to_value(&forged).unwrap());
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("commitment"), "{}", text(&bad));
    let not_yet =
        check(&serde_json::json!({ "concertId": 1, "commitment": fair.commitment, "drawn": false, "seed": null }));
    assert_eq!(not_yet.status.code(), Some(2), "{}", text(&not_yet));
}

#[test]
fn admin_commands_drive_a_running_server() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args(["serve", "--demo", "--bind", "127.0.0.1:0", "--data-dir", dir.path().to_str().unwrap()])
        .env_remove("BOXOFFICE_DATABASE_URL")
        .env_remove("BOXOFFICE_ADMIN_TOKEN")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the server printed its address").unwrap();
        if let Some(addr) = line.strip_prefix("boxoffice listening on ") {
            break addr.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let data_dir = dir.path().to_str().unwrap();
    // The secret is read from the data directory, where the server made it.
    let admin = |args: &[&str]| {
        let mut all = vec!["admin", "--url", &url, "--data-dir", data_dir];
        all.extend_from_slice(args);
        boxoffice(&all)
    };
    let paused = admin(&["pause", "1"]);
    assert!(paused.status.success(), "{}", text(&paused));
    assert!(text(&paused).contains("\"paused\": \"OPERATOR\""), "{}", text(&paused));
    let set = admin(&["set", "1", "--max-active", "7"]);
    assert!(text(&set).contains("\"maxActive\": 7"), "{}", text(&set));
    let audit = admin(&["audit"]);
    let log: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(log["entries"][0]["action"], "set_max_active");
    assert_eq!(log["entries"][1]["action"], "pause");
    let refused = boxoffice(&["admin", "--url", &url, "--admin-token", "a-wrong-secret-of-length", "resume", "1"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let line = admin(&["line", "1"]);
    assert!(text(&line).contains("\"paused\": \"OPERATOR\""), "the refused resume changed nothing: {}", text(&line));
    let _ = child.kill();
    let _ = child.wait();
}
