use crate::{Backend, Opts, TestApp};
use boxoffice::store::SeedSpec;
use futures::future::join_all;
use reqwest::StatusCode;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn thousand_joins_get_positions_one_to_thousand(b: Backend) {
    // One slot, taken by user 1001 before everyone else: nobody of the thousand is admitted
    // during the test, while the line still has a real pace for its ETAs.
    let opts = Opts {
        max_active: 1,
        admission_rate: 100.0,
        seed: SeedSpec { users: 1001, concerts: 1, schedules: 1, seats: 10, balance: 0 },
        ..Opts::default()
    };
    let app = TestApp::spawn(b, opts).await;
    let first = app.join(1001, 1).await.body["token"].as_str().unwrap().to_owned();
    app.wait_for_status(&first, "ACTIVE", Duration::from_secs(10)).await;
    let joins = join_all((1..=1000).map(|u| app.join(u, 1))).await;
    let mut positions = HashSet::new();
    let mut by_position = vec![String::new(); 1001];
    for r in &joins {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["status"], "WAITING");
        let p = r.body["position"].as_u64().unwrap();
        assert!(positions.insert(p), "position {p} handed out twice");
        by_position[p as usize] = r.body["token"].as_str().unwrap().to_owned();
        assert!(r.headers.get("retry-after").is_some(), "waiting answers carry Retry-After");
    }
    assert_eq!(positions, (1..=1000).collect::<HashSet<u64>>());

    // Joining again returns the same token and place.
    let again = app.join(1, 1).await;
    assert_eq!(again.status, StatusCode::OK);
    let p = again.body["position"].as_u64().unwrap();
    assert_eq!(again.body["token"], by_position[p as usize]);

    // Status agrees with the join, for every token, and people far back are told to poll less.
    let statuses = join_all((1..=1000).map(|p| {
        let app = &app;
        let t = by_position[p].clone();
        async move { (p, app.status(&t).await) }
    }))
    .await;
    for (p, s) in &statuses {
        assert_eq!(s.body["position"].as_u64(), Some(*p as u64));
    }
    let retry = |p: usize| statuses[p - 1].1.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap();
    assert!(retry(1000) > retry(1), "Retry-After grows with position: {} vs {}", retry(1000), retry(1));
    assert!(statuses[999].1.body["etaSeconds"].as_u64() > statuses[0].1.body["etaSeconds"].as_u64());
}

pub async fn admission_respects_max_active_and_drops_no_shows(b: Backend) {
    let opts = Opts {
        max_active: 5,
        admission_rate: 200.0,
        // Long enough that the keeper's next poll (every 5 ms) comes in time even when the CI
        // box stalls this test for a while (300 ms once did: the keeper was dropped as a no-show).
        claim_window: Duration::from_secs(1),
        seed: SeedSpec { users: 40, concerts: 1, schedules: 1, seats: 10, balance: 0 },
        ..Opts::default()
    };
    let app = TestApp::spawn(b, opts).await;
    // Sample the room's active count the whole time.
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let queue = app.server().app.queue.clone();
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                for s in queue.stats().await.unwrap() {
                    peak.fetch_max(s.active, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut tokens = Vec::new();
    for u in 1..=40 {
        let r = app.join(u, 1).await;
        tokens.push(r.body["token"].as_str().unwrap().to_owned());
    }
    // User 30 keeps polling, as a person would; nobody else ever comes back.
    let keeper = app.wait_for_status(&tokens[29], "ACTIVE", Duration::from_secs(30)).await;
    assert_eq!(keeper.status, StatusCode::OK);
    // Everyone ahead of the keeper was admitted and, never showing up, dropped.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = app.server().app.queue.stats().await.unwrap();
        let (waiting, active) = (s[0].waiting, s[0].active);
        if waiting == 0 && active == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no-shows were never dropped: waiting {waiting}, active {active}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    assert!(peak.load(Ordering::Relaxed) <= 5, "active users exceeded max-active: {}", peak.load(Ordering::Relaxed));
    assert!(peak.load(Ordering::Relaxed) >= 1);
    for (i, t) in tokens.iter().enumerate() {
        let s = app.status(t).await;
        let want = if i == 29 { "ACTIVE" } else { "EXPIRED" };
        assert_eq!(s.body["status"], want, "user {} is {}", i + 1, s.body);
    }
    let dropped = app.hold(&tokens[0], 1, 1).await;
    assert_eq!((dropped.status, dropped.code()), (StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED"));
    // A dropped user may join again, at the back of the line.
    let rejoin = app.join(1, 1).await;
    assert_eq!(rejoin.status, StatusCode::CREATED);
    assert_ne!(rejoin.body["token"], tokens[0].as_str());
    app.assert_audit_clean().await;
}

pub async fn restart_keeps_places_and_active_users(b: Backend) {
    let opts = Opts {
        max_active: 3,
        admission_rate: 1_000.0,
        seed: SeedSpec { users: 20, concerts: 1, schedules: 1, seats: 10, balance: 0 },
        ..Opts::default()
    };
    let mut app = TestApp::spawn(b, opts).await;
    let mut tokens = Vec::new();
    for u in 1..=10 {
        tokens.push(app.join(u, 1).await.body["token"].as_str().unwrap().to_owned());
    }
    for t in &tokens[..3] {
        app.wait_for_status(t, "ACTIVE", Duration::from_secs(10)).await;
    }
    let before: Vec<_> = join_all(tokens.iter().map(|t| app.status(t))).await.into_iter().map(|r| r.body).collect();
    assert_eq!(before[3]["position"], 1);
    assert_eq!(before[9]["position"], 7);

    app.restart().await;

    let after: Vec<_> = join_all(tokens.iter().map(|t| app.status(t))).await.into_iter().map(|r| r.body).collect();
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        assert_eq!(a["status"], b["status"], "user {} changed state across the restart", i + 1);
        assert_eq!(a["position"], b["position"], "user {} changed place across the restart", i + 1);
    }
    let stats = app.server().app.queue.stats().await.unwrap();
    assert_eq!((stats[0].active, stats[0].waiting), (3, 7), "nobody jumped the line or the limit");
    // A newcomer after the restart queues behind everyone who was already waiting.
    let late = app.join(11, 1).await;
    assert_eq!(late.body["position"], 8);
    let token = app.activate(1, 1).await;
    assert_eq!(token, tokens[0], "an active user's token survives the restart");
    app.assert_audit_clean().await;
}

pub async fn live_position_streams_over_sse(b: Backend) {
    let opts = Opts {
        max_active: 1,
        admission_rate: 1_000.0,
        claim_window: Duration::from_millis(300),
        seed: SeedSpec { users: 5, concerts: 1, schedules: 1, seats: 10, balance: 0 },
        ..Opts::default()
    };
    let app = TestApp::spawn(b, opts).await;
    let a = app.join(1, 1).await.body["token"].as_str().unwrap().to_owned();
    let bt = app.join(2, 1).await.body["token"].as_str().unwrap().to_owned();
    // The token in the query string, as a browser's EventSource sends it.
    let mut res = app.client.get(format!("{}/api/v1/queue/events?token={bt}", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    // User 1 never comes back, so after the claim window user 2 is admitted and told at once.
    while !seen.contains("\"status\":\"ACTIVE\"") {
        assert!(Instant::now() < deadline, "no ACTIVE event: {seen}");
        let chunk =
            tokio::time::timeout(Duration::from_secs(10), res.chunk()).await.expect("an event in time").unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("stream still open")));
    }
    assert!(seen.starts_with("event: status\ndata: {\"status\":\"WAITING\""), "{seen}");
    assert!(seen.contains("\"position\":1,"), "the place falls to the front before admission: {seen}");
    // An ended token gets 204, which stops an EventSource from reconnecting.
    assert_eq!(app.status(&a).await.body["status"], "EXPIRED");
    let ended = app.client.get(format!("{}/api/v1/queue/events", app.base)).bearer_auth(&a).send().await.unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let forged = app.get("/api/v1/queue/events?token=bo1.x.y", None).await;
    assert_eq!((forged.status, forged.code()), (StatusCode::UNAUTHORIZED, "TOKEN_INVALID"));
    let missing = app.get("/api/v1/queue/events", None).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::UNAUTHORIZED, "TOKEN_MISSING"));
}

/// One user hammering the join endpoint gets 429 with Retry-After once past their budget (the
/// default: a burst of 10, then 2 per second); their place is kept, and other users are unaffected.
pub async fn a_user_flooding_joins_is_told_to_slow_down_and_keeps_their_place(b: Backend) {
    let app = TestApp::spawn(b, Opts { max_active: 1, ..Opts::default() }).await;
    // User 9 takes the one active slot, so user 1 waits at position 1 and nothing moves.
    app.activate(9, 1).await;
    let first = app.join(1, 1).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let place = first.body["position"].clone();
    let token = first.body["token"].clone();
    // The first join spent one of the 10; 9 more go through.
    for _ in 0..9 {
        let again = app.join(1, 1).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        assert_eq!(again.body["token"], token);
    }
    let mut refused = 0;
    for _ in 0..20 {
        let r = app.join(1, 1).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
            assert_eq!(r.code(), "JOIN_RATE_LIMITED");
            let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=2).contains(&retry), "Retry-After {retry}");
        } else {
            assert_eq!(r.status, StatusCode::OK);
        }
    }
    // 20 requests take far less than the 2.5 s that would refill 5 tokens.
    assert!(refused >= 15, "only {refused} of 20 refused");
    // The place is the same, and another user joins as usual.
    let standing = app.status(token.as_str().unwrap()).await;
    assert_eq!((&standing.body["status"], &standing.body["position"]), (&serde_json::json!("WAITING"), &place));
    assert_eq!(place, 1);
    assert_eq!(app.join(2, 1).await.status, StatusCode::CREATED);
}

/// A join into a line with nobody waiting and a free slot is admitted in its own answer; with
/// someone waiting, a newcomer waits behind them even when a slot is free.
pub async fn a_join_with_room_and_nobody_waiting_is_admitted_at_once(b: Backend) {
    // Ticks an hour apart: during this test only a join can admit anyone.
    let opts = Opts {
        max_active: 1,
        admission_tick: Duration::from_secs(3600),
        seed: SeedSpec { users: 5, concerts: 1, schedules: 1, seats: 10, balance: 1_000_000 },
        ..Opts::default()
    };
    let app = TestApp::spawn(b, opts).await;
    let first = app.join(1, 1).await;
    assert_eq!((first.status, first.body["status"].as_str()), (StatusCode::CREATED, Some("ACTIVE")), "{}", first.body);
    assert!(first.body["activeUntil"].is_string(), "{}", first.body);
    let token1 = first.body["token"].as_str().unwrap().to_owned();
    // The one slot is taken: the next person waits.
    let second = app.join(2, 1).await;
    assert_eq!((second.body["status"].as_str(), second.body["position"].as_u64()), (Some("WAITING"), Some(1)));
    // User 1 buys, which frees the slot; no tick runs, so user 2 is still waiting...
    let hold = app.hold(&token1, 1, 4).await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.body);
    let paid = app.pay(&token1, hold.body["reservationId"].as_i64().unwrap(), "at-once").await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    // ...and a newcomer is not let in ahead of them, free slot or not.
    let third = app.join(3, 1).await;
    assert_eq!((third.body["status"].as_str(), third.body["position"].as_u64()), (Some("WAITING"), Some(2)));
    let still = app.status(second.body["token"].as_str().unwrap()).await;
    assert_eq!((still.body["status"].as_str(), still.body["position"].as_u64()), (Some("WAITING"), Some(1)));
    app.assert_audit_clean().await;
}
