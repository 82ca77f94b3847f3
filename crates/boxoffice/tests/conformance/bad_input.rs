use crate::{Backend, Opts, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// What a client can see of the data: nothing in here may change after bad input.
async fn snapshot(app: &TestApp, token: &str) -> (i64, String, String, bool) {
    let seats = app.get("/api/v1/schedules/1/seats", Some(token)).await.body.to_string();
    let history = app.get("/api/v1/users/1/points/history", None).await.body.to_string();
    (app.balance(1).await, seats, history, app.audit().await.ok)
}

pub async fn malformed_bodies_are_400_and_change_nothing(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let token = app.activate(1, 1).await;
    let before = snapshot(&app, &token).await;
    let cases: &[(&str, &str, &str)] = &[
        ("/api/v1/users/1/points/charge", "{\"amount\": ", "MALFORMED_JSON"),
        ("/api/v1/users/1/points/charge", "not json", "MALFORMED_JSON"),
        ("/api/v1/users/1/points/charge", "{\"amount\": \"100\"}", "INVALID_BODY"),
        ("/api/v1/users/1/points/charge", "{}", "INVALID_BODY"),
        ("/api/v1/users/1/points/charge", "\"a string\"", "INVALID_BODY"),
        ("/api/v1/users/1/points/use", "{\"amount\": null}", "INVALID_BODY"),
        ("/api/v1/queue/tokens", "{\"userId\": \"one\", \"concertId\": 1}", "INVALID_BODY"),
        ("/api/v1/queue/tokens", "{\"userId\": 1}", "INVALID_BODY"),
        ("/api/v1/queue/tokens", "{\"userId\": 1.5, \"concertId\": 1}", "INVALID_BODY"),
    ];
    for (path, body, code) in cases {
        let r = app.raw_post(path, "application/json", body.as_bytes().to_vec()).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, *code), "{path} {body}: {}", r.body);
    }
    let r = app.raw_post("/api/v1/users/1/points/charge", "text/plain", b"{\"amount\": 5}".to_vec()).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "UNSUPPORTED_MEDIA_TYPE"));
    // Booking bodies with a valid token.
    for body in [json!({ "scheduleId": 1 }), json!({ "scheduleId": "1", "seatNo": 1 }), json!({ "seatNo": 1 })] {
        let r = app.post("/api/v1/reservations", Some(&token), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
    }
    let r = app.send(Method::POST, "/api/v1/payments", Some(&token), Some(json!({ "reservationId": 1 })), &[]).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED"));
    let r = app.get("/api/v1/schedules/abc/seats", Some(&token)).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "INVALID_PATH"));
    // A path id is read as the contract's integers are (as in bodies): 1.0 is 1, 1.5 is no id.
    let (whole, one) = (app.get("/api/v1/users/1.0/points", None).await, app.get("/api/v1/users/1/points", None).await);
    assert_eq!((whole.status, &whole.body), (StatusCode::OK, &one.body));
    let r = app.get("/api/v1/users/1.5/points", None).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "INVALID_PATH"));
    let r = app.get("/api/v1/schedules/1/seats?status=WHATEVER", Some(&token)).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "INVALID_QUERY"));
    let r = app.get("/api/v1/users/1/points/history?limit=-4", None).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "INVALID_QUERY"));
    let r = app.send(Method::DELETE, "/api/v1/concerts", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = app.get("/api/v1/nowhere", None).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND"));
    assert_eq!(snapshot(&app, &token).await, before, "bad input changed data");
}

pub async fn invalid_values_are_422(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let token = app.activate(1, 1).await;
    let before = snapshot(&app, &token).await;
    for amount in ["0", "-1", "-9223372036854775808", "100000001", "1e30", "18446744073709551616", "2.5"] {
        for op in ["charge", "use"] {
            let r = app
                .raw_post(
                    &format!("/api/v1/users/1/points/{op}"),
                    "application/json",
                    format!("{{\"amount\": {amount}}}").into_bytes(),
                )
                .await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_AMOUNT"),
                "{op} {amount}: {}",
                r.body
            );
        }
    }
    for seat in ["0", "-3", "1.5", "100001", "99999999999999999999"] {
        let r = app
            .raw_post_token("/api/v1/reservations", &token, format!("{{\"scheduleId\": 1, \"seatNo\": {seat}}}"))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_SEAT_NO"),
            "seat {seat}: {}",
            r.body
        );
    }
    for (path, body) in [
        ("/api/v1/queue/tokens", json!({ "userId": 0, "concertId": 1 })),
        ("/api/v1/queue/tokens", json!({ "userId": 1, "concertId": -2 })),
    ] {
        let r = app.post(path, None, body).await;
        assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_ID"));
    }
    let r = app.post("/api/v1/reservations", Some(&token), json!({ "scheduleId": 0, "seatNo": 1 })).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_ID"));
    let r = app.get("/api/v1/users/-1/points", None).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_ID"));
    // A balance may not pass its ceiling, however it is approached.
    for _ in 0..10_000 {
        let r = app.charge(2, 100_000_000).await;
        if r.status != StatusCode::OK {
            assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "BALANCE_LIMIT"));
            break;
        }
    }
    assert_eq!(app.balance(2).await, boxoffice::domain::Points::MAX_BALANCE);
    assert_eq!(snapshot(&app, &token).await, before, "bad input changed data");
}

pub async fn unknown_ids_are_404(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let token = app.activate(1, 1).await;
    let before = snapshot(&app, &token).await;
    let checks = [
        (app.join(999_999, 1).await, "USER_NOT_FOUND"),
        (app.join(1, 999).await, "CONCERT_NOT_FOUND"),
        (app.charge(999_999, 10).await, "USER_NOT_FOUND"),
        (app.get("/api/v1/users/999999/points", None).await, "USER_NOT_FOUND"),
        (app.get("/api/v1/users/999999/points/history", None).await, "USER_NOT_FOUND"),
        (app.get("/api/v1/schedules/999/seats", Some(&token)).await, "SCHEDULE_NOT_FOUND"),
        (app.get("/api/v1/concerts/999/schedules", Some(&token)).await, "CONCERT_NOT_FOUND"),
        (app.hold(&token, 999, 1).await, "SCHEDULE_NOT_FOUND"),
        (app.hold(&token, 1, 51).await, "SEAT_NOT_FOUND"),
        (app.get("/api/v1/reservations/424242", Some(&token)).await, "RESERVATION_NOT_FOUND"),
        (app.pay(&token, 424242, "k").await, "RESERVATION_NOT_FOUND"),
    ];
    for (r, code) in checks {
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, code), "{}", r.body);
    }
    assert_eq!(snapshot(&app, &token).await, before, "bad input changed data");
}

pub async fn tokens_missing_forged_expired_or_for_another_concert_are_401(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let token = app.activate(1, 1).await;
    let before = snapshot(&app, &token).await;
    let other_concert = app.activate(2, 2).await;
    // Concert 2's dates are schedules 3 and 4 in the seeded data.
    let (forged_payload, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{forged_payload}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let endpoints = [
        (Method::GET, "/api/v1/queue/status", None),
        (Method::GET, "/api/v1/concerts/1/schedules", None),
        (Method::GET, "/api/v1/schedules/1/seats", None),
        (Method::POST, "/api/v1/reservations", Some(json!({ "scheduleId": 1, "seatNo": 1 }))),
        (Method::GET, "/api/v1/reservations/1", None),
    ];
    for (m, path, body) in &endpoints {
        let r = app.send(m.clone(), path, None, body.clone(), &[]).await;
        assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "TOKEN_MISSING"), "{path}");
        for bad in [forged.as_str(), "garbage", ""] {
            let r = app.send(m.clone(), path, Some(bad), body.clone(), &[]).await;
            assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "TOKEN_INVALID"), "{path} with {bad:?}");
        }
        let r = app.send(m.clone(), path, None, body.clone(), &[("Authorization", "Basic dXNlcjpwYXNz")]).await;
        assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "TOKEN_INVALID"), "{path}");
    }
    for (m, path, body) in &endpoints[1..4] {
        let r = app.send(m.clone(), path, Some(&other_concert), body.clone(), &[]).await;
        assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "TOKEN_WRONG_CONCERT"), "{path}");
    }
    // A token ended by payment is expired everywhere.
    let hold = app.hold(&token, 1, 2).await;
    let reservation = hold.body["reservationId"].as_i64().unwrap();
    app.charge(1, 1_000_000).await;
    assert_eq!(app.pay(&token, reservation, "pay-1").await.status, StatusCode::CREATED);
    let before = (before.0 + 1_000_000 - hold.body["price"].as_i64().unwrap(), snapshot(&app, &token).await);
    for (m, path, body) in &endpoints[1..] {
        let r = app.send(m.clone(), path, Some(&token), body.clone(), &[]).await;
        assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED"), "{path}");
    }
    assert_eq!(app.status(&token).await.body["status"], "EXPIRED");
    assert_eq!(app.balance(1).await, before.0);
    assert_eq!(snapshot(&app, &token).await, before.1);
}

pub async fn waiting_token_on_booking_endpoint_is_403_with_position(b: Backend) {
    let opts = Opts { max_active: 1, ..Opts::default() };
    let app = TestApp::spawn(b, opts).await;
    let active = app.activate(1, 1).await;
    let before = snapshot(&app, &active).await;
    let waiting = app.join(2, 1).await.body["token"].as_str().unwrap().to_owned();
    let r = app.hold(&waiting, 1, 1).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "TOKEN_WAITING"));
    assert_eq!(r.body["position"], 1);
    assert!(r.headers.get("retry-after").is_some());
    for path in ["/api/v1/concerts/1/schedules", "/api/v1/schedules/1/seats", "/api/v1/reservations/1"] {
        let r = app.get(path, Some(&waiting)).await;
        assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "TOKEN_WAITING"), "{path}");
    }
    assert_eq!(snapshot(&app, &active).await, before);
}

pub async fn oversized_body_is_413(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let token = app.activate(1, 1).await;
    let before = snapshot(&app, &token).await;
    let huge = format!("{{\"amount\": 5, \"pad\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    for (path, token) in [
        ("/api/v1/users/1/points/charge", None),
        ("/api/v1/queue/tokens", None),
        ("/api/v1/reservations", Some(token.as_str())),
    ] {
        let (status, body) = app.post_large(path, token, huge.as_bytes()).await;
        assert_eq!((status, body["code"].as_str()), (413, Some("PAYLOAD_TOO_LARGE")), "{path}: {body}");
    }
    assert_eq!(snapshot(&app, &token).await, before);
}
