use crate::{Backend, Opts, TestApp};
use futures::future::join_all;
use reqwest::StatusCode;
use std::time::Duration;

pub async fn full_purchase_sells_the_seat_and_ends_the_token(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let token = app.activate(1, 1).await;

    let schedules = app.get("/api/v1/concerts/1/schedules", Some(&token)).await;
    assert_eq!(schedules.status, StatusCode::OK);
    let first = &schedules.body["schedules"][0];
    assert_eq!(first["availableSeats"], 50);
    let schedule = first["scheduleId"].as_i64().unwrap();

    let hold = app.hold(&token, schedule, 7).await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.body);
    assert_eq!(hold.body["status"], "HELD");
    let price = hold.body["price"].as_i64().unwrap();
    let reservation = hold.body["reservationId"].as_i64().unwrap();
    assert_eq!(app.seat_status(&token, schedule, 7).await, "HELD");
    let available = app.get(&format!("/api/v1/schedules/{schedule}/seats?status=AVAILABLE"), Some(&token)).await;
    assert_eq!(available.body["seats"].as_array().unwrap().len(), 49);

    // Not enough points yet: 409, and nothing moves.
    let short = app.pay(&token, reservation, "first-try").await;
    assert_eq!((short.status, short.code()), (StatusCode::CONFLICT, "INSUFFICIENT_POINTS"));
    assert_eq!(app.balance(1).await, 0);

    assert_eq!(app.charge(1, price + 500).await.status, StatusCode::OK);
    let paid = app.pay(&token, reservation, "second-try").await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    assert_eq!(paid.body["amount"], price);
    assert_eq!(paid.body["balance"], 500);
    assert_eq!(app.balance(1).await, 500);

    // The token ended with the payment; a new one sees the seat SOLD.
    let after = app.status(&token).await;
    assert_eq!(after.body["status"], "EXPIRED");
    let again = app.hold(&token, schedule, 8).await;
    assert_eq!((again.status, again.code()), (StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED"));
    let token2 = app.activate(2, 1).await;
    assert_eq!(app.seat_status(&token2, schedule, 7).await, "SOLD");
    let taken = app.hold(&token2, schedule, 7).await;
    assert_eq!((taken.status, taken.code()), (StatusCode::CONFLICT, "SEAT_UNAVAILABLE"));

    let token1b = app.activate(1, 1).await;
    let r = app.get(&format!("/api/v1/reservations/{reservation}"), Some(&token1b)).await;
    assert_eq!(r.body["status"], "CONFIRMED");
    assert_eq!(r.body["paymentId"], paid.body["paymentId"]);
    // Someone else's reservation reads as missing.
    let other = app.get(&format!("/api/v1/reservations/{reservation}"), Some(&token2)).await;
    assert_eq!((other.status, other.code()), (StatusCode::NOT_FOUND, "RESERVATION_NOT_FOUND"));

    let history = app.get("/api/v1/users/1/points/history", None).await;
    let kinds: Vec<_> =
        history.body["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["USE", "CHARGE"]);
    app.assert_audit_clean().await;
}

pub async fn two_hundred_users_race_for_one_seat(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let tokens = join_all((1..=200).map(|u| app.activate(u, 1))).await;
    let results = join_all(tokens.iter().map(|t| app.hold(t, 1, 1))).await;
    let won: Vec<_> = results.iter().filter(|r| r.status == StatusCode::CREATED).collect();
    let lost = results.iter().filter(|r| r.status == StatusCode::CONFLICT && r.code() == "SEAT_UNAVAILABLE").count();
    assert_eq!(won.len(), 1, "exactly one hold wins");
    assert_eq!(lost, 199, "everyone else gets 409 SEAT_UNAVAILABLE");
    assert_eq!(app.seat_status(&tokens[0], 1, 1).await, "HELD");
    app.assert_audit_clean().await;
}

async fn held_seat_with_points(app: &TestApp, user: i64) -> (String, i64) {
    let token = app.activate(user, 1).await;
    let hold = app.hold(&token, 1, 3).await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.body);
    let price = hold.body["price"].as_i64().unwrap();
    assert_eq!(app.charge(user, price * 3).await.status, StatusCode::OK);
    (token, hold.body["reservationId"].as_i64().unwrap())
}

pub async fn payment_with_one_key_twenty_times_debits_once(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let (token, reservation) = held_seat_with_points(&app, 5).await;
    let before = app.balance(5).await;
    let results = join_all((0..20).map(|_| app.pay(&token, reservation, "same-key"))).await;
    for r in &results {
        assert_eq!(r.status, StatusCode::CREATED, "a replay answers as the first call did: {}", r.body);
        assert_eq!(r.body, results[0].body, "every replay returns the same receipt");
    }
    let price = results[0].body["amount"].as_i64().unwrap();
    assert_eq!(app.balance(5).await, before - price, "debited exactly once");
    let history = app.get("/api/v1/users/5/points/history", None).await;
    let uses = history.body["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "USE").count();
    assert_eq!(uses, 1);
    // The same key for another reservation is refused, not applied.
    let reused = app.pay(&token, reservation + 1000, "same-key").await;
    assert_eq!((reused.status, reused.code()), (StatusCode::CONFLICT, "IDEMPOTENCY_KEY_REUSED"));
    app.assert_audit_clean().await;
}

pub async fn payment_with_twenty_keys_sells_once(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let (token, reservation) = held_seat_with_points(&app, 6).await;
    let before = app.balance(6).await;
    let results = join_all((0..20).map(|i| {
        let key = format!("key-{i}");
        let app = &app;
        let token = &token;
        async move { app.pay(token, reservation, &key).await }
    }))
    .await;
    let created = results.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!(created, 1, "exactly one payment");
    for r in results.iter().filter(|r| r.status != StatusCode::CREATED) {
        // Either the seat is already paid, or the payment already ended the token.
        assert!(
            matches!(
                (r.status, r.code()),
                (StatusCode::CONFLICT, "ALREADY_PAID") | (StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED")
            ),
            "unexpected {} {}",
            r.status,
            r.body
        );
    }
    let paid = results.iter().find(|r| r.status == StatusCode::CREATED).unwrap();
    assert_eq!(app.balance(6).await, before - paid.body["amount"].as_i64().unwrap(), "one debit");
    app.assert_audit_clean().await;
}

pub async fn expired_hold_frees_the_seat_before_the_sweeper(b: Backend) {
    let opts =
        Opts { hold_ttl: Duration::from_millis(300), sweep_interval: Duration::from_secs(3600), ..Opts::default() };
    let app = TestApp::spawn(b, opts).await;
    let a = app.activate(10, 1).await;
    let c = app.activate(11, 1).await;
    let hold = app.hold(&a, 2, 9).await;
    assert_eq!(hold.status, StatusCode::CREATED);
    let reservation = hold.body["reservationId"].as_i64().unwrap();
    assert_eq!(app.charge(10, 1_000_000).await.status, StatusCode::OK);
    assert_eq!(app.hold(&c, 2, 9).await.code(), "SEAT_UNAVAILABLE");

    // Wait for the hold to run out (a condition on the clock, checked through the API).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.seat_status(&c, 2, 9).await != "AVAILABLE" {
        assert!(std::time::Instant::now() < deadline, "the hold never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let late = app.pay(&a, reservation, "too-late").await;
    assert_eq!((late.status, late.code()), (StatusCode::GONE, "HOLD_EXPIRED"));
    assert_eq!(app.balance(10).await, 1_000_000, "an expired hold takes no points");
    let mine = app.get(&format!("/api/v1/reservations/{reservation}"), Some(&a)).await;
    assert_eq!(mine.body["status"], "EXPIRED");

    let retake = app.hold(&c, 2, 9).await;
    assert_eq!(retake.status, StatusCode::CREATED, "the expired hold freed the seat: {}", retake.body);
    let old = app.get(&format!("/api/v1/reservations/{reservation}"), Some(&a)).await;
    assert_eq!(old.body["status"], "EXPIRED");
    app.assert_audit_clean().await;
}

pub async fn sweeper_marks_expired_holds(b: Backend) {
    let opts =
        Opts { hold_ttl: Duration::from_millis(200), sweep_interval: Duration::from_millis(50), ..Opts::default() };
    let app = TestApp::spawn(b, opts).await;
    let a = app.activate(12, 1).await;
    let hold = app.hold(&a, 1, 20).await;
    let reservation = hold.body["reservationId"].as_i64().unwrap();
    // The sweeper must record the expiry in the store itself, not just in what readers see.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stored = app
            .server()
            .app
            .store
            .reservation(boxoffice::domain::ReservationId::parse(reservation).unwrap())
            .await
            .unwrap()
            .unwrap();
        if stored.status == boxoffice::domain::booking::ReservationStatus::Expired {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the sweeper never marked the hold");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.seat_status(&a, 1, 20).await, "AVAILABLE");
    app.assert_audit_clean().await;
}

/// Payments that cross users and seats, interleaved with wrong-owner attempts, charges, uses,
/// holds on taken seats and sweeps, straight at the store: every lock order meets every other,
/// and nothing may deadlock, fail for a dependency, or break an invariant.
pub async fn crossing_payments_do_not_deadlock(b: Backend) {
    use boxoffice::domain::booking::{PayRequest, PointsOp, PointsRequest};
    use boxoffice::domain::{IdempotencyKey, Millis, Points, ReservationId, ScheduleId, SeatNo, UserId};
    use boxoffice::store::HoldRequest;
    let opts = Opts {
        seed: boxoffice::store::SeedSpec { users: 80, concerts: 1, schedules: 2, seats: 40, balance: 10_000_000 },
        ..Opts::default()
    };
    let app = TestApp::spawn(b, opts).await;
    let store = app.server().app.store.clone();
    let now = Millis::now();
    let mut held = Vec::new();
    // Users 1..=40 each hold two neighbouring seats, so payments lock several seats each.
    for i in 0..40i64 {
        let user = UserId::parse(i + 1).unwrap();
        let first = (2 * (i / 2) + 1) as i32;
        let seats = vec![SeatNo::from_trusted(first), SeatNo::from_trusted(first + 1)];
        let schedule = ScheduleId::parse(i % 2 + 1).unwrap();
        let concert = boxoffice::domain::ConcertId::from_trusted(1);
        let req = HoldRequest { user, concert, schedule, seats, now, expires_at: now.plus(Duration::from_secs(60)) };
        held.push(store.hold(req).await.expect("hold").reservation);
    }
    let mut tasks = Vec::new();
    for (i, r) in held.iter().enumerate() {
        let store = store.clone();
        let (owner, id, other) = (r.user, r.id, UserId::parse((r.user.get() % 40) + 1).unwrap());
        tasks.push(tokio::spawn(async move {
            let key = |s: &str| IdempotencyKey::parse(&format!("{s}-{i}")).unwrap();
            // Someone else tries to pay it first: refused, but it takes locks on the way.
            let wrong =
                store.pay(PayRequest { user: other, reservation: id, key: key("wrong"), now: Millis::now() }).await;
            assert_eq!(wrong.unwrap_err().code.as_str(), "RESERVATION_NOT_FOUND");
            let charge = PointsRequest {
                user: owner,
                op: PointsOp::Charge,
                amount: Points::amount(7).unwrap(),
                key: None,
                now: Millis::now(),
            };
            store.move_points(charge).await.expect("charge");
            let paid =
                store.pay(PayRequest { user: owner, reservation: id, key: key("pay"), now: Millis::now() }).await;
            let spend = PointsRequest {
                user: other,
                op: PointsOp::Use,
                amount: Points::amount(3).unwrap(),
                key: None,
                now: Millis::now(),
            };
            store.move_points(spend).await.expect("use");
            paid.expect("payment")
        }));
    }
    // Holds on the taken seats (by users 41..=80) and sweeps, at the same time.
    for i in 0..40i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let req = HoldRequest {
                user: UserId::parse(i + 41).unwrap(),
                concert: boxoffice::domain::ConcertId::from_trusted(1),
                schedule: ScheduleId::parse(i % 2 + 1).unwrap(),
                seats: vec![SeatNo::from_trusted((i / 2 + 1) as i32), SeatNo::from_trusted(40 - (i / 2) as i32)],
                now: Millis::now(),
                expires_at: Millis::now().plus(Duration::from_secs(60)),
            };
            assert_eq!(store.hold(req).await.unwrap_err().code.as_str(), "SEAT_UNAVAILABLE");
            store.expire_holds(Millis::now()).await.expect("sweep");
            boxoffice::domain::booking::Receipt { payment_id: 0, reservation_id: 0, amount: 0, balance: 0 }
        }));
    }
    for t in tasks {
        t.await.expect("no task failed");
    }
    for r in &held {
        let stored = store.reservation(ReservationId::parse(r.id.get()).unwrap()).await.unwrap().unwrap();
        assert_eq!(stored.status, boxoffice::domain::booking::ReservationStatus::Confirmed);
    }
    app.assert_audit_clean().await;
}

/// A client that accepts gzip gets the same seat map gzipped, and a hold shows in it at once
/// (the compressed copy belongs to the snapshot, never outlives it).
pub async fn seat_map_is_gzipped_for_clients_that_accept_it(b: Backend) {
    use std::io::Read;
    let app = TestApp::spawn(b, Opts::default()).await;
    let token = app.activate(1, 1).await;
    let fetch = |accept: &'static str| {
        let req = app
            .client
            .get(format!("{}/api/v1/schedules/1/seats", app.base))
            .bearer_auth(&token)
            .header("accept-encoding", accept);
        async move {
            let res = req.send().await.expect("request reaches the server");
            let encoding = res.headers().get("content-encoding").map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(res.headers()["vary"], "accept-encoding");
            (res.status(), encoding, res.bytes().await.unwrap().to_vec())
        }
    };
    let gunzip = |raw: &[u8]| {
        let mut out = String::new();
        flate2::read::GzDecoder::new(raw).read_to_string(&mut out).expect("a valid gzip stream");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };

    let (status, encoding, plain) = fetch("identity").await;
    assert_eq!((status, encoding), (StatusCode::OK, None));
    let (status, encoding, packed) = fetch("br, gzip").await;
    assert_eq!((status, encoding.as_deref()), (StatusCode::OK, Some("gzip")));
    assert!(packed.len() * 3 < plain.len(), "gzip {} bytes vs plain {}", packed.len(), plain.len());
    assert_eq!(gunzip(&packed), serde_json::from_slice::<serde_json::Value>(&plain).unwrap());

    assert_eq!(app.hold(&token, 1, 3).await.status, StatusCode::CREATED);
    let (_, _, packed) = fetch("gzip").await;
    let seats = gunzip(&packed);
    assert_eq!(seats["seats"][2]["seatNo"], 3);
    assert_eq!(seats["seats"][2]["status"], "HELD");
    let (_, encoding, _) = fetch("gzip;q=0").await;
    assert_eq!(encoding, None);
}
