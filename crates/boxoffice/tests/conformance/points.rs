use crate::{Backend, Opts, TestApp};
use boxoffice::store::SeedSpec;
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;

pub async fn concurrent_charges_and_uses_keep_the_ledger_exact(b: Backend) {
    let opts =
        Opts { seed: SeedSpec { users: 5, concerts: 1, schedules: 1, seats: 10, balance: 1_000 }, ..Opts::default() };
    let app = TestApp::spawn(b, opts).await;
    let charges = (0..100).map(|_| app.post("/api/v1/users/3/points/charge", None, json!({ "amount": 7 })));
    let uses = (0..100).map(|_| app.post("/api/v1/users/3/points/use", None, json!({ "amount": 3 })));
    let (c, u) = futures::join!(join_all(charges), join_all(uses));
    assert!(c.iter().all(|r| r.status == StatusCode::OK), "every charge succeeds");
    assert!(u.iter().all(|r| r.status == StatusCode::OK), "every use succeeds (the balance never runs short)");
    assert_eq!(app.balance(3).await, 1_000 + 700 - 300);

    let history = app.get("/api/v1/users/3/points/history?limit=1000", None).await;
    let entries = history.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 201, "the seed charge plus 200 moves");
    let sum: i64 = entries
        .iter()
        .map(|e| if e["kind"] == "CHARGE" { e["amount"].as_i64().unwrap() } else { -e["amount"].as_i64().unwrap() })
        .sum();
    assert_eq!(sum, 1_400, "the ledger sums to the balance");
    // Every balanceAfter is distinct and consistent with its predecessor: no lost update.
    let mut chronological: Vec<_> = entries.iter().collect();
    chronological.reverse();
    let mut running = 0;
    for e in chronological {
        running += if e["kind"] == "CHARGE" { e["amount"].as_i64().unwrap() } else { -e["amount"].as_i64().unwrap() };
        assert_eq!(e["balanceAfter"].as_i64().unwrap(), running);
    }
    // Using more than the balance is refused and changes nothing.
    let over = app.post("/api/v1/users/3/points/use", None, json!({ "amount": 1_401 })).await;
    assert_eq!((over.status, over.code()), (StatusCode::CONFLICT, "INSUFFICIENT_POINTS"));
    assert_eq!(app.balance(3).await, 1_400);
    app.assert_audit_clean().await;
}

pub async fn charge_with_idempotency_key_applies_once(b: Backend) {
    let app = TestApp::spawn(b, Opts::default()).await;
    let send = |amount: i64| {
        app.send(
            Method::POST,
            "/api/v1/users/4/points/charge",
            None,
            Some(json!({ "amount": amount })),
            &[("Idempotency-Key", "top-up-1")],
        )
    };
    let results = join_all((0..10).map(|_| send(250))).await;
    assert!(results.iter().all(|r| r.status == StatusCode::OK && r.body == results[0].body), "replays answer the same");
    assert_eq!(app.balance(4).await, 250);
    let other = send(300).await;
    assert_eq!((other.status, other.code()), (StatusCode::CONFLICT, "IDEMPOTENCY_KEY_REUSED"));
    assert_eq!(app.balance(4).await, 250);
    let bad_key = app
        .send(
            Method::POST,
            "/api/v1/users/4/points/charge",
            None,
            Some(json!({ "amount": 1 })),
            &[("Idempotency-Key", "has space")],
        )
        .await;
    assert_eq!((bad_key.status, bad_key.code()), (StatusCode::BAD_REQUEST, "INVALID_IDEMPOTENCY_KEY"));
    assert_eq!(app.balance(4).await, 250);
    app.assert_audit_clean().await;
}
