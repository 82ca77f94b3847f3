//! The operator's live controls and the inventory's hold on admission: the admin secret, pause
//! and resume, a limit changed while people wait, and a sell-out that closes the line.

use crate::support::{Resp, ADMIN_TOKEN};
use crate::{Backend, Opts, TestApp};
use boxoffice::store::SeedSpec;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn token(r: &Resp) -> String {
    r.body["token"].as_str().expect("a token").to_owned()
}

async fn change(app: &TestApp, concert: i64, body: Value, secret: Option<&str>) -> Resp {
    app.send(Method::PATCH, &format!("/api/v1/admin/concerts/{concert}/line"), secret, Some(body), &[]).await
}

async fn line(app: &TestApp, concert: i64) -> Value {
    let r = app.get(&format!("/api/v1/admin/concerts/{concert}/line"), Some(ADMIN_TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Waits until the line's figures satisfy `done`; a condition with a deadline, not a sleep.
async fn line_until(app: &TestApp, concert: i64, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let l = line(app, concert).await;
        if done(&l) {
            return l;
        }
        assert!(Instant::now() < deadline, "the line never got there: {l}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Without the secret, or with a wrong one, every admin call is refused and changes nothing.
pub async fn admin_calls_without_the_secret_change_nothing(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let path = "/api/v1/admin/concerts/1/line";
    for secret in [None, Some("not-the-admin-secret"), Some(""), Some(&ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1])] {
        let r = change(&app, 1, json!({ "paused": true, "maxActive": 1 }), secret).await;
        assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "ADMIN_TOKEN_REQUIRED"), "{secret:?}");
        assert_eq!(app.get(path, secret).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(app.get("/api/v1/admin/audit", secret).await.status, StatusCode::UNAUTHORIZED);
    }
    // A fan's queue token is not the admin secret either.
    let fan = token(&app.join(1, 1).await);
    assert_eq!(change(&app, 1, json!({ "closed": true }), Some(&fan)).await.status, StatusCode::UNAUTHORIZED);
    let l = line(&app, 1).await;
    assert_eq!((l["paused"].clone(), l["closed"].clone()), (Value::Null, Value::Null));
    assert_eq!(
        l["settings"],
        json!({ "maxActive": null, "admissionRate": null, "paused": false, "closed": false, "onSaleAt": null })
    );
    let log = app.get("/api/v1/admin/audit", Some(ADMIN_TOKEN)).await;
    assert_eq!(log.body["entries"], json!([]), "nothing was logged");
    // Nonsense from the operator is refused too, and changes nothing.
    for bad in [json!({}), json!({ "maxActive": 0 }), json!({ "admissionRate": -1 })] {
        assert_eq!(change(&app, 1, bad, Some(ADMIN_TOKEN)).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(change(&app, 999, json!({ "paused": true }), Some(ADMIN_TOKEN)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/admin/audit", Some(ADMIN_TOKEN)).await.body["entries"], json!([]));
}

/// A paused line admits nobody, not even a join with room and nobody ahead; people waiting see
/// it is paused; resuming admits them; the log has both actions with the settings around them.
pub async fn a_paused_line_admits_nobody_until_resumed(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let r = change(&app, 1, json!({ "paused": true }), Some(ADMIN_TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["before"]["paused"].clone(), r.body["after"]["paused"].clone()), (json!(false), json!(true)));
    assert_eq!(r.body["line"]["paused"], "OPERATOR");
    let mut waiting = Vec::new();
    for u in 1..=3 {
        let j = app.join(u, 1).await;
        assert_eq!((j.body["status"].as_str(), j.body["paused"].as_str()), (Some("WAITING"), Some("OPERATOR")));
        waiting.push(token(&j));
    }
    // Several admission ticks (10 ms each) pass: nobody gets in.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        assert_eq!(app.status(&waiting[0]).await.body["status"], "WAITING");
    }
    assert_eq!(line(&app, 1).await["active"], 0);
    // The other concert's line is not paused.
    assert_eq!(app.join(1, 2).await.body["status"], "ACTIVE");
    let r = change(&app, 1, json!({ "paused": false }), Some(ADMIN_TOKEN)).await;
    assert_eq!(r.body["line"]["paused"], Value::Null);
    for t in &waiting {
        app.wait_for_status(t, "ACTIVE", Duration::from_secs(5)).await;
    }
    let log = app.get("/api/v1/admin/audit", Some(ADMIN_TOKEN)).await.body;
    let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["resume", "pause"], "newest first");
    assert_eq!(log["entries"][1]["before"]["paused"], false);
    assert_eq!(log["entries"][1]["after"]["paused"], true);
    assert_eq!(log["entries"][0]["concertId"], 1);
    app.assert_audit_clean().await;
}

/// The active limit changed while people wait takes effect at once: lowered, nobody more gets
/// in; raised, the next people are admitted on the next tick, in order.
pub async fn a_limit_changed_live_takes_effect(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let r = change(&app, 1, json!({ "maxActive": 2 }), Some(ADMIN_TOKEN)).await;
    assert_eq!(r.body["line"]["maxActive"], 2, "{}", r.body);
    let mut tokens = Vec::new();
    for u in 1..=5 {
        tokens.push(token(&app.join(u, 1).await));
    }
    for t in &tokens[..2] {
        app.wait_for_status(t, "ACTIVE", Duration::from_secs(5)).await;
    }
    let l = line(&app, 1).await;
    assert_eq!((l["active"].clone(), l["waiting"].clone()), (json!(2), json!(3)));
    assert_eq!(app.status(&tokens[2]).await.body["position"], 1);
    let r = change(&app, 1, json!({ "maxActive": 4, "admissionRate": 50 }), Some(ADMIN_TOKEN)).await;
    assert_eq!(
        (r.body["after"]["maxActive"].clone(), r.body["after"]["admissionRate"].clone()),
        (json!(4), json!(50.0))
    );
    for t in &tokens[2..4] {
        app.wait_for_status(t, "ACTIVE", Duration::from_secs(5)).await;
    }
    let l = line(&app, 1).await;
    assert_eq!(
        (l["active"].clone(), l["waiting"].clone(), l["admissionRate"].clone()),
        (json!(4), json!(1), json!(50.0))
    );
    assert_eq!(app.status(&tokens[4]).await.body["position"], 1, "the fifth still waits, first in line");
    app.assert_audit_clean().await;
}

/// While every seat left is held, admission pauses and the people waiting are told when a seat
/// may come back; when the last seat is sold, everyone waiting ends SOLD_OUT within a second,
/// nobody is admitted after the sale, new joins answer 410, and a restart keeps it so.
pub async fn selling_the_last_seat_closes_the_line(b: Backend) {
    let opts = Opts {
        max_active: 2,
        seed: SeedSpec { users: 20, concerts: 1, schedules: 1, seats: 2, balance: 1_000_000 },
        ..Opts::default()
    };
    let mut app = TestApp::spawn(b, opts).await;
    // The seed's seats are in the store; the line learns of them at its next refresh.
    line_until(&app, 1, Duration::from_secs(5), |l| l["seatsLeft"] == 2).await;
    let buyers = [app.activate(1, 1).await, app.activate(2, 1).await];
    let mut waiting = Vec::new();
    for u in 3..=10 {
        let j = app.join(u, 1).await;
        assert_eq!(j.body["status"], "WAITING");
        waiting.push(token(&j));
    }
    let h1 = app.hold(&buyers[0], 1, 1).await;
    assert_eq!(h1.status, StatusCode::CREATED, "{}", h1.body);
    let h2 = app.hold(&buyers[1], 1, 2).await;
    assert_eq!(h2.status, StatusCode::CREATED, "{}", h2.body);
    assert!(app.pay(&buyers[0], h1.body["reservationId"].as_i64().unwrap(), "k1").await.status.is_success());
    // Every seat left is held: admission pauses although a slot is free (buyer 1 has paid).
    let s = app.status(&waiting[0]).await;
    assert_eq!(
        (s.body["status"].as_str(), s.body["paused"].as_str()),
        (Some("WAITING"), Some("NO_SEATS")),
        "{}",
        s.body
    );
    assert!(s.body["seatsMayReturnAt"].is_string(), "when a seat may come back: {}", s.body);
    assert_eq!(line(&app, 1).await["active"], 1);
    // The last seat is sold.
    let paid = app.pay(&buyers[1], h2.body["reservationId"].as_i64().unwrap(), "k2").await;
    assert!(paid.status.is_success(), "{}", paid.body);
    let sold_at = Instant::now();
    for t in &waiting {
        app.wait_for_status(t, "SOLD_OUT", Duration::from_secs(1)).await;
    }
    assert!(sold_at.elapsed() < Duration::from_secs(1), "everyone heard within a second: {:?}", sold_at.elapsed());
    let l = line(&app, 1).await;
    assert_eq!(
        (l["closed"].as_str(), l["waiting"].clone(), l["active"].clone(), l["seatsLeft"].clone()),
        (Some("SOLD_OUT"), json!(0), json!(0), json!(0)),
        "nobody was admitted after the last sale: {l}"
    );
    let late = app.join(11, 1).await;
    assert_eq!((late.status, late.code()), (StatusCode::GONE, "SOLD_OUT"));
    // A booking call with a sent-home token says why.
    let r = app.get("/api/v1/concerts/1/schedules", Some(&waiting[0])).await;
    assert_eq!((r.status, r.code()), (StatusCode::GONE, "SOLD_OUT"));
    app.assert_audit_clean().await;
    app.restart().await;
    assert_eq!(app.join(12, 1).await.status, StatusCode::GONE, "still closed after a restart");
    assert_eq!(app.status(&waiting[3]).await.body["status"], "SOLD_OUT");
    app.assert_audit_clean().await;
}

/// The operator closes a line: everyone waiting is sent home (LINE_CLOSED), people admitted
/// keep their turn, new joins answer 410; reopening takes new places again.
pub async fn closing_and_reopening_a_line(b: Backend) {
    let opts = Opts { max_active: 1, ..Opts::default() };
    let app = TestApp::spawn(b, opts).await;
    let admitted = app.activate(1, 1).await;
    let waiting = token(&app.join(2, 1).await);
    let r = change(&app, 1, json!({ "closed": true }), Some(ADMIN_TOKEN)).await;
    assert_eq!(r.body["line"]["closed"], "LINE_CLOSED", "{}", r.body);
    assert_eq!(app.status(&waiting).await.body["status"], "LINE_CLOSED");
    assert_eq!(app.status(&admitted).await.body["status"], "ACTIVE", "an admitted person keeps their turn");
    let late = app.join(3, 1).await;
    assert_eq!((late.status, late.code()), (StatusCode::GONE, "LINE_CLOSED"));
    change(&app, 1, json!({ "closed": false }), Some(ADMIN_TOKEN)).await;
    let again = app.join(3, 1).await;
    assert_eq!((again.status, again.body["position"].clone()), (StatusCode::CREATED, json!(1)));
    app.assert_audit_clean().await;
}

/// A scheduled on-sale: joins before it wait in the pre-queue with an entry id and no place; a
/// restart keeps them; at the start one draw gives each entry one place in the order the
/// published seed ranks them, which anyone can recompute; later joins queue behind them all;
/// the draw is never held twice.
pub async fn an_on_sale_draws_the_pre_queue_once_in_a_verifiable_order(b: Backend) {
    use boxoffice::domain::draw::{verify, PublishedDraw};
    let mut app = TestApp::spawn(b, Opts { max_active: 1, ..Opts::default() }).await;
    let starts = chrono::Utc::now() + chrono::Duration::seconds(8);
    let r = change(&app, 1, json!({ "onSaleAt": starts.to_rfc3339() }), Some(ADMIN_TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let commitment = r.body["line"]["drawCommitment"].as_str().expect("a commitment before the draw").to_owned();
    let before = app.get("/api/v1/concerts/1/draw", None).await;
    assert_eq!((before.body["drawn"].clone(), before.body["seed"].clone()), (json!(false), Value::Null));
    assert_eq!(before.body["commitment"], commitment.as_str());
    let mut fans = Vec::new();
    for u in 1..=40 {
        let j = app.join(u, 1).await;
        assert_eq!((j.status, j.body["status"].as_str()), (StatusCode::CREATED, Some("PRE_QUEUE")), "{}", j.body);
        assert!(j.body["position"].is_null() && j.body["startsInSeconds"].as_u64().unwrap() <= 8);
        let entry = j.body["entryId"].as_str().expect("an entry id").to_owned();
        fans.push((token(&j), entry));
    }
    let again = app.join(7, 1).await;
    assert_eq!((again.status, again.body["token"].as_str()), (StatusCode::OK, Some(fans[6].0.as_str())));
    // A booking call before the on-sale says so.
    let early = app.get("/api/v1/concerts/1/schedules", Some(&fans[0].0)).await;
    assert_eq!((early.status, early.code()), (StatusCode::CONFLICT, "NOT_ON_SALE_YET"));
    app.restart().await;
    assert!(chrono::Utc::now() < starts, "the pre-queue filled and the server restarted before the on-sale");
    assert_eq!(line(&app, 1).await["preQueue"], 40, "a restart keeps every pre-queue entry");
    // Poll a fan without pause until the draw places them: from that moment the published draw
    // must show (it once lagged the places by the writer's commit, and a fan who looked found
    // no draw).
    let drawn = {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = app.status(&fans[0].0).await;
            if s.body["status"] != "PRE_QUEUE" {
                let d = app.get("/api/v1/concerts/1/draw", None).await;
                assert_eq!(
                    d.body["drawn"], true,
                    "a fan was placed ({}) but the draw is not published: {}",
                    s.body, d.body
                );
                break d.body;
            }
            assert!(Instant::now() < deadline, "the draw never ran: {}", s.body);
            tokio::task::yield_now().await;
        }
    };
    let published: PublishedDraw = serde_json::from_value(drawn.clone()).unwrap();
    assert_eq!(verify(&published), Ok(()), "the published draw recomputes");
    assert_eq!(published.commitment, commitment);
    let mut entries = published.entries.clone();
    entries.sort();
    let mut mine: Vec<String> = fans.iter().map(|(_, e)| e.clone()).collect();
    mine.sort();
    assert_eq!(entries, mine, "every entry drawn exactly once");
    // Each fan's place follows the draw: the first drawn is admitted (by the tick that follows
    // the draw), the others wait in order.
    let first = &fans.iter().find(|(_, e)| *e == published.entries[0]).unwrap().0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.status(first).await.body["status"] != "ACTIVE" {
        assert!(Instant::now() < deadline, "the first drawn was never admitted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (t, entry) in &fans {
        let place = published.entries.iter().position(|e| e == entry).unwrap() as u64;
        let s = app.status(t).await;
        if place == 0 {
            assert_eq!(s.body["status"], "ACTIVE", "{}", s.body);
        } else {
            assert_eq!(
                (s.body["status"].as_str(), s.body["position"].as_u64()),
                (Some("WAITING"), Some(place)),
                "{}",
                s.body
            );
        }
        assert_eq!(s.body["entryId"], entry.as_str());
    }
    let late = app.join(41, 1).await;
    assert_eq!((late.body["status"].as_str(), late.body["position"].as_u64()), (Some("WAITING"), Some(40)));
    let moved = change(&app, 1, json!({ "onSaleAt": starts.to_rfc3339() }), Some(ADMIN_TOKEN)).await;
    assert_eq!((moved.status, moved.code()), (StatusCode::CONFLICT, "ON_SALE_STARTED"));
    app.restart().await;
    assert_eq!(app.get("/api/v1/concerts/1/draw", None).await.body, drawn, "no second draw after a restart");
    assert_eq!(app.status(late.body["token"].as_str().unwrap()).await.body["position"], 40);
    app.assert_audit_clean().await;
}

/// The operator creates a concert with its dates, seat map and price tiers; fans can join its
/// line and see its seats at once; without the secret, or with tiers that leave a seat without a
/// price, nothing is created.
pub async fn an_operator_creates_a_concert(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let spec = json!({
        "title": "Winter night", "venue": "Blue Hall",
        "dates": ["2027-01-15T19:00:00Z", "2027-01-16T19:00:00Z"],
        "seatCount": 3,
        "priceTiers": [{ "fromSeat": 2, "toSeat": 3, "price": 200 }, { "fromSeat": 1, "toSeat": 1, "price": 500 }]
    });
    let create = |body: Value, secret: Option<&'static str>| {
        let app = &app;
        async move { app.send(Method::POST, "/api/v1/admin/concerts", secret, Some(body), &[]).await }
    };
    assert_eq!(create(spec.clone(), None).await.status, StatusCode::UNAUTHORIZED);
    let mut gap = spec.clone();
    gap["priceTiers"] =
        json!([{ "fromSeat": 1, "toSeat": 1, "price": 500 }, { "fromSeat": 3, "toSeat": 3, "price": 200 }]);
    let r = create(gap, Some(ADMIN_TOKEN)).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_VALUE"), "{}", r.body);
    let concerts = app.get("/api/v1/concerts", None).await.body["concerts"].as_array().unwrap().len();
    assert_eq!(concerts, 2, "nothing was created");
    let r = create(spec, Some(ADMIN_TOKEN)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["concertId"].as_i64().unwrap();
    assert_eq!(id, 3);
    assert_eq!(r.body["schedules"].as_array().unwrap().len(), 2);
    let schedule = r.body["schedules"][0]["scheduleId"].as_i64().unwrap();
    assert_eq!(r.body["schedules"][0]["startsAt"], "2027-01-15T19:00:00.000Z");
    let listed = app.get("/api/v1/concerts", None).await.body;
    assert!(listed["concerts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["concertId"] == id && c["title"] == "Winter night"));
    let fan = app.activate(1, id).await;
    let seats = app.get(&format!("/api/v1/schedules/{schedule}/seats"), Some(&fan)).await.body;
    let prices: Vec<i64> = seats["seats"].as_array().unwrap().iter().map(|s| s["price"].as_i64().unwrap()).collect();
    assert_eq!(prices, [500, 200, 200]);
    assert_eq!(line_until(&app, id, Duration::from_secs(5), |l| l["seatsLeft"] == 6).await["seatsFree"], 6);
    let log = app.get("/api/v1/admin/audit", Some(ADMIN_TOKEN)).await.body;
    assert_eq!(log["entries"][0]["action"], "create_concert");
    assert_eq!(log["entries"][0]["after"]["seatCount"], 3);
    app.assert_audit_clean().await;
}

/// Admission paused for want of seats resumes by itself when a hold runs out: the person waiting
/// is admitted without anyone touching a control.
pub async fn admission_resumes_when_a_hold_runs_out(b: Backend) {
    let opts = Opts {
        max_active: 2,
        hold_ttl: Duration::from_millis(1500),
        sweep_interval: Duration::from_millis(100),
        seed: SeedSpec { users: 5, concerts: 1, schedules: 1, seats: 1, balance: 0 },
        ..Opts::default()
    };
    let app = TestApp::spawn(b, opts).await;
    line_until(&app, 1, Duration::from_secs(5), |l| l["seatsLeft"] == 1).await;
    let holder = app.activate(1, 1).await;
    assert_eq!(app.hold(&holder, 1, 1).await.status, StatusCode::CREATED);
    let waiting = token(&app.join(2, 1).await);
    let s = app.status(&waiting).await;
    assert_eq!(
        (s.body["status"].as_str(), s.body["paused"].as_str()),
        (Some("WAITING"), Some("NO_SEATS")),
        "{}",
        s.body
    );
    // The hold runs out (1.5 s): the seat is free again and admission resumes.
    let admitted = app.wait_for_status(&waiting, "ACTIVE", Duration::from_secs(10)).await;
    assert!(admitted.body["paused"].is_null());
    let l = line(&app, 1).await;
    assert_eq!((l["paused"].clone(), l["seatsFree"].clone()), (Value::Null, json!(1)));
    app.assert_audit_clean().await;
}
