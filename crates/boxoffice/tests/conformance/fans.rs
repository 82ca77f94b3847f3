//! What a fan can do besides one seat per admission: leave the line, let go of a hold, hold
//! seats together, hold again what they hold, and see their tickets; with the races each move
//! can meet.

use crate::{Backend, Opts, TestApp};
use boxoffice::store::SeedSpec;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

fn token(r: &crate::support::Resp) -> String {
    r.body["token"].as_str().expect("a token").to_owned()
}

async fn leave(app: &TestApp, token: &str) -> crate::support::Resp {
    app.post("/api/v1/queue/leave", Some(token), json!({})).await
}

async fn hold_seats(app: &TestApp, token: &str, schedule: i64, seats: &[i64]) -> crate::support::Resp {
    app.post("/api/v1/reservations", Some(token), json!({ "scheduleId": schedule, "seatNos": seats })).await
}

async fn release(app: &TestApp, token: &str, reservation: i64) -> crate::support::Resp {
    app.post(&format!("/api/v1/reservations/{reservation}/release"), Some(token), json!({})).await
}

/// Leaving while waiting moves everyone behind up at once; leaving while active frees the slot
/// for the next person; the audit keeps FIFO and the limit.
pub async fn leaving_the_line_moves_it_up_and_frees_the_slot(b: Backend) {
    let opts = Opts {
        max_active: 1,
        seed: SeedSpec { users: 10, concerts: 1, schedules: 1, seats: 10, balance: 0 },
        ..Opts::default()
    };
    let mut app = TestApp::spawn(b, opts).await;
    let first = app.join(1, 1).await;
    assert_eq!(first.body["status"], "ACTIVE");
    let mut waiting = Vec::new();
    for u in 2..=5 {
        let r = app.join(u, 1).await;
        assert_eq!(r.body["position"], u - 1);
        waiting.push(token(&r));
    }
    // User 3 (position 2) leaves: users 4 and 5 move up.
    let left = leave(&app, &waiting[1]).await;
    assert_eq!((left.status, left.body["was"].as_str()), (StatusCode::OK, Some("WAITING")));
    assert_eq!(app.status(&waiting[1]).await.body["status"], "EXPIRED");
    assert_eq!(app.status(&waiting[2]).await.body["position"], 2);
    assert_eq!(app.status(&waiting[3]).await.body["position"], 3);
    // Leaving twice changes nothing.
    assert_eq!(leave(&app, &waiting[1]).await.body["was"], "ENDED");
    // A newcomer queues behind the people still there.
    let late = app.join(6, 1).await;
    assert_eq!(late.body["position"], 4);
    // The active user leaves: the slot goes to the front of the line (user 2).
    assert_eq!(leave(&app, &token(&first)).await.body["was"], "ACTIVE");
    app.wait_for_status(&waiting[0], "ACTIVE", Duration::from_secs(10)).await;
    assert_eq!(app.status(&waiting[2]).await.body["position"], 1);
    // And someone who left may join again, at the back.
    let back = app.join(3, 1).await;
    assert_eq!((back.status, back.body["position"].as_u64()), (StatusCode::CREATED, Some(4)));
    app.restart().await;
    assert_eq!(app.status(&waiting[3]).await.body["position"], 2, "a restart keeps the line as left");
    assert_eq!(app.join(7, 1).await.body["position"], 5);
    app.assert_audit_clean().await;
}

/// People leave while the admission loop admits them: nobody is admitted twice or out of
/// order, the limit holds, and everyone who left ends.
pub async fn leaving_while_being_admitted_keeps_fifo_and_the_limit(b: Backend) {
    let opts = Opts {
        max_active: 3,
        admission_rate: 200.0,
        claim_window: Duration::from_millis(200),
        seed: SeedSpec { users: 60, concerts: 1, schedules: 1, seats: 10, balance: 0 },
        ..Opts::default()
    };
    let app = TestApp::spawn(b, opts).await;
    let mut tokens = Vec::new();
    for u in 1..=60 {
        tokens.push(token(&app.join(u, 1).await));
    }
    // Every other person leaves, at once, while the line is being admitted from the front.
    let leavers: Vec<&String> = tokens.iter().skip(1).step_by(2).collect();
    let answers = join_all(leavers.iter().map(|t| leave(&app, t))).await;
    for a in &answers {
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert!(["WAITING", "ACTIVE", "ENDED"].contains(&a.body["was"].as_str().unwrap()));
    }
    for t in &leavers {
        assert_eq!(app.status(t).await.body["status"], "EXPIRED");
    }
    // Those who stayed are served in order: positions of the ones still waiting are 1..k. The
    // statuses are read one by one while admission goes on, so an admission between two reads
    // shows as a repeated position; read again until a whole pass saw no admission (the reads
    // claim the admitted people's slots, so admission stops at the limit).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut positions: Vec<u64> = Vec::new();
        for t in tokens.iter().step_by(2) {
            if let Some(p) = app.status(t).await.body["position"].as_u64() {
                positions.push(p);
            }
        }
        let expected: Vec<u64> = (1..=positions.len() as u64).collect();
        if positions == expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the people still waiting hold places 1..k in order: {positions:?}"
        );
    }
    app.assert_audit_clean().await;
}

/// A group hold is all or nothing: of two holds that overlap by one seat exactly one wins
/// whole, the other holds nothing and is told which seat was taken; one payment buys all.
pub async fn seats_together_all_or_nothing(b: Backend) {
    let opts = Opts {
        seed: SeedSpec { users: 50, concerts: 1, schedules: 1, seats: 200, balance: 2_000_000 },
        ..Opts::default()
    };
    let app = TestApp::spawn(b, opts).await;
    for round in 0..12i64 {
        let base = round * 10 + 1;
        let (a, c) = (app.activate(2 * round + 1, 1).await, app.activate(2 * round + 2, 1).await);
        let (group_a, group_c) = ([base, base + 1, base + 2], [base + 2, base + 3]);
        let (ra, rc) = futures::join!(hold_seats(&app, &a, 1, &group_a), hold_seats(&app, &c, 1, &group_c));
        let (winner, loser, won_seats, lost_seats): (&crate::support::Resp, &crate::support::Resp, Vec<i64>, Vec<i64>) =
            match (ra.status, rc.status) {
                (StatusCode::CREATED, StatusCode::CONFLICT) => {
                    (&ra, &rc, vec![base, base + 1, base + 2], vec![base + 3])
                }
                (StatusCode::CONFLICT, StatusCode::CREATED) => {
                    (&rc, &ra, vec![base + 2, base + 3], vec![base, base + 1])
                }
                other => panic!("exactly one of two overlapping holds wins: {other:?} {} {}", ra.body, rc.body),
            };
        assert_eq!(loser.code(), "SEAT_UNAVAILABLE");
        assert_eq!(loser.body["seats"], json!([base + 2]), "the refusal names the seat that was taken");
        let held: Vec<i64> = winner.body["seatNos"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(held, won_seats);
        for s in &won_seats {
            assert_eq!(app.seat_status(&a, 1, *s).await, "HELD");
        }
        for s in &lost_seats {
            assert_eq!(app.seat_status(&a, 1, *s).await, "AVAILABLE", "the losing hold took nothing");
        }
    }
    // One payment for a group of four: one debit of the total, every seat sold.
    let t = app.activate(40, 1).await;
    let group = hold_seats(&app, &t, 1, &[190, 191, 192, 193]).await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    let total = group.body["price"].as_i64().unwrap();
    let per_seat: i64 = group.body["seats"].as_array().unwrap().iter().map(|s| s["price"].as_i64().unwrap()).sum();
    assert_eq!(total, per_seat);
    let before = app.balance(40).await;
    let paid = app.pay(&t, group.body["reservationId"].as_i64().unwrap(), "group").await;
    assert_eq!((paid.status, paid.body["amount"].as_i64()), (StatusCode::CREATED, Some(total)), "{}", paid.body);
    assert_eq!(app.balance(40).await, before - total);
    let t2 = app.activate(41, 1).await;
    for s in 190..=193 {
        assert_eq!(app.seat_status(&t2, 1, s).await, "SOLD");
    }
    // Too many seats, a seat twice, a seat that does not exist: refused, nothing held.
    let too_many = hold_seats(&app, &t2, 1, &[1, 2, 3, 4, 5]).await;
    assert_eq!((too_many.status, too_many.code()), (StatusCode::UNPROCESSABLE_ENTITY, "TOO_MANY_SEATS"));
    let dates = app.get("/api/v1/concerts/1/schedules", Some(&t2)).await;
    assert_eq!(dates.body["maxSeatsPerOrder"], 4, "the limit is told, not guessed");
    let twice = hold_seats(&app, &t2, 1, &[7, 7]).await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    let beyond = hold_seats(&app, &t2, 1, &[150, 999]).await;
    assert_eq!((beyond.status, beyond.code()), (StatusCode::NOT_FOUND, "SEAT_NOT_FOUND"));
    assert_eq!(app.seat_status(&t2, 1, 150).await, "AVAILABLE");
    app.assert_audit_clean().await;
}

/// Holding what you hold answers it again; other seats while you hold some are refused until
/// you let go; letting go frees the seats at once; my tickets shows what happened.
pub async fn hold_again_release_and_my_tickets(b: Backend) {
    let opts = Opts {
        seed: SeedSpec { users: 10, concerts: 1, schedules: 1, seats: 20, balance: 1_000_000 },
        ..Opts::default()
    };
    let app = TestApp::spawn(b, opts).await;
    let t = app.activate(1, 1).await;
    let first = app.hold(&t, 1, 5).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let id = first.body["reservationId"].as_i64().unwrap();
    let again = app.hold(&t, 1, 5).await;
    assert_eq!((again.status, again.body["reservationId"].as_i64()), (StatusCode::OK, Some(id)), "{}", again.body);
    let other = app.hold(&t, 1, 6).await;
    assert_eq!((other.status, other.code()), (StatusCode::CONFLICT, "HOLD_LIMIT"));
    // Someone else cannot let it go, nor see it.
    let stranger = app.activate(2, 1).await;
    let theirs = release(&app, &stranger, id).await;
    assert_eq!((theirs.status, theirs.code()), (StatusCode::NOT_FOUND, "RESERVATION_NOT_FOUND"));
    let released = release(&app, &t, id).await;
    assert_eq!((released.status, released.body["status"].as_str()), (StatusCode::OK, Some("RELEASED")));
    assert_eq!(app.seat_status(&stranger, 1, 5).await, "AVAILABLE", "the seat is free at once");
    assert_eq!(release(&app, &t, id).await.body["status"], "RELEASED", "releasing again changes nothing");
    // The seat is the stranger's to take now, and the fan may hold another.
    assert_eq!(app.hold(&stranger, 1, 5).await.status, StatusCode::CREATED);
    let next = app.hold(&t, 1, 6).await;
    assert_eq!(next.status, StatusCode::CREATED);
    let paid = app.pay(&t, next.body["reservationId"].as_i64().unwrap(), "mine").await;
    assert_eq!(paid.status, StatusCode::CREATED);
    // A paid ticket cannot be released.
    let sold = release(&app, &t, next.body["reservationId"].as_i64().unwrap()).await;
    assert_eq!((sold.status, sold.code()), (StatusCode::CONFLICT, "ALREADY_PAID"));
    // My tickets, with the token that ended when the payment went through.
    let mine = app.get("/api/v1/me/reservations", Some(&t)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    let list = mine.body["reservations"].as_array().unwrap();
    let states: Vec<(&str, i64)> =
        list.iter().map(|r| (r["status"].as_str().unwrap(), r["seatNo"].as_i64().unwrap())).collect();
    assert_eq!(states, vec![("CONFIRMED", 6), ("RELEASED", 5)]);
    let theirs = app.get("/api/v1/me/reservations", Some(&stranger)).await;
    let seen: Vec<&Value> = theirs.body["reservations"].as_array().unwrap().iter().collect();
    assert!(seen.iter().all(|r| r["userId"] == 2), "a fan never sees another fan's reservations");
    assert_eq!(seen.len(), 1);
    let forged = app.get("/api/v1/me/reservations", Some("bo1.x.y")).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    app.assert_audit_clean().await;
}

/// A release racing with other fans' holds and the holder's own payment: each seat is sold at
/// most once, a paid hold is never released, and the audit stays clean.
pub async fn a_release_racing_holds_and_payments_sells_each_seat_once(b: Backend) {
    let opts = Opts {
        seed: SeedSpec { users: 100, concerts: 1, schedules: 1, seats: 40, balance: 10_000_000 },
        ..Opts::default()
    };
    let app = TestApp::spawn(b, opts).await;
    let mut sold = 0;
    for round in 0..16i64 {
        let seat = round + 1;
        let owner = app.activate(round * 5 + 1, 1).await;
        let rivals = join_all((2..=4).map(|k| app.activate(round * 5 + k, 1))).await;
        let held = app.hold(&owner, 1, seat).await;
        assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
        let id = held.body["reservationId"].as_i64().unwrap();
        let key = format!("race-{round}");
        let (rel, pay, holds) = futures::join!(
            release(&app, &owner, id),
            app.pay(&owner, id, &key),
            join_all(rivals.iter().map(|t| app.hold(t, 1, seat)))
        );
        let paid = pay.status == StatusCode::CREATED;
        let released = rel.status == StatusCode::OK && rel.body["status"] == "RELEASED";
        assert!(paid != released, "exactly one of paying and releasing wins: pay {} / release {}", pay.body, rel.body);
        if paid {
            sold += 1;
            assert_eq!(rel.code(), "ALREADY_PAID");
        }
        let rival_wins = holds.iter().filter(|h| h.status == StatusCode::CREATED).count();
        assert!(rival_wins <= 1, "one seat, one hold");
        assert!(!(paid && rival_wins == 1), "a sold seat was held again");
        for h in &holds {
            assert!(h.status == StatusCode::CREATED || h.code() == "SEAT_UNAVAILABLE", "{}", h.body);
        }
    }
    assert!(sold <= 16);
    app.assert_audit_clean().await;
}

/// Leaving while active lets one's held seats go (the turn is over: they could never be paid),
/// and the one-hold rule is per concert.
pub async fn leaving_lets_held_seats_go_and_holds_are_per_concert(b: Backend) {
    let opts =
        Opts { seed: SeedSpec { users: 10, concerts: 2, schedules: 1, seats: 20, balance: 0 }, ..Opts::default() };
    let app = TestApp::spawn(b, opts).await;
    let first = app.activate(1, 1).await;
    let second = app.activate(1, 2).await;
    assert_eq!(hold_seats(&app, &first, 1, &[1, 2]).await.status, StatusCode::CREATED);
    let other = hold_seats(&app, &second, 2, &[5]).await;
    assert_eq!(other.status, StatusCode::CREATED, "a hold on another concert is allowed: {}", other.body);
    assert_eq!(leave(&app, &first).await.body["was"], "ACTIVE");
    let look = app.activate(2, 1).await;
    assert_eq!(app.seat_status(&look, 1, 1).await, "AVAILABLE", "leaving let the held seats go");
    assert_eq!(app.seat_status(&look, 1, 2).await, "AVAILABLE");
    let mine = app.get("/api/v1/me/reservations", Some(&first)).await;
    let states: Vec<&str> =
        mine.body["reservations"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(states, vec!["HELD", "RELEASED"], "only the hold of the concert left is released");
    app.assert_audit_clean().await;
}
