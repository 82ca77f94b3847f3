//! The booking invariants of DESIGN.md as PostgreSQL queries that list offenders (the same checks
//! as the SQLite backend's audit, in this dialect). Queue invariants live in the waiting room.

use super::statements::Statements;
use super::store::pg_err;
use crate::audit::{AuditCheck, AuditReport, AUDIT_SAMPLE};
use crate::domain::{Millis, Result};
use sqlx::{PgConnection, Row};

/// (name, queries): a check passes when none of its queries returns a row. Each query returns
/// one text column describing the offender; `$1` is the audit's `now`.
const CHECKS: &[(&str, &[&str])] = &[
    (
        "seat_sold_at_most_once",
        &["SELECT format('seat %s/%s has %s confirmed reservations', rs.schedule_id, rs.seat_no, COUNT(*)) \
           FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id \
           WHERE r.status = 'CONFIRMED' AND $1 IS NOT NULL GROUP BY rs.schedule_id, rs.seat_no HAVING COUNT(*) > 1"],
    ),
    (
        "sold_seat_has_one_completed_payment",
        &[
            "SELECT format('seat %s/%s has %s payments', s.schedule_id, s.seat_no, n) FROM ( \
               SELECT s.*, (SELECT COUNT(*) FROM payments p WHERE p.reservation_id = s.reservation_id) AS n \
               FROM seats s WHERE s.status = 'SOLD') s WHERE n != 1 AND $1 IS NOT NULL",
            "SELECT format('seat %s/%s sold without a confirmed reservation', s.schedule_id, s.seat_no) FROM seats s \
             WHERE s.status = 'SOLD' AND $1 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM reservations r \
               JOIN reservation_seats rs ON rs.reservation_id = r.id WHERE r.id = s.reservation_id \
               AND r.status = 'CONFIRMED' AND rs.schedule_id = s.schedule_id AND rs.seat_no = s.seat_no)",
            "SELECT format('seat %s/%s sold without its sale record', s.schedule_id, s.seat_no) FROM seats s \
             WHERE s.status = 'SOLD' AND $1 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sold_seats x \
               WHERE x.schedule_id = s.schedule_id AND x.seat_no = s.seat_no AND x.reservation_id = s.reservation_id)",
            "SELECT format('reservation %s is confirmed but seat %s is not sold to it', r.id, rs.seat_no) \
             FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id \
             WHERE r.status = 'CONFIRMED' AND $1 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM seats s \
               WHERE s.schedule_id = rs.schedule_id AND s.seat_no = rs.seat_no AND s.status = 'SOLD' AND s.reservation_id = r.id)",
            "SELECT format('payment %s is for a reservation that is not confirmed, of another user or of another price', p.id) \
             FROM payments p JOIN reservations r ON r.id = p.reservation_id WHERE $1 IS NOT NULL AND \
             (r.status != 'CONFIRMED' OR r.user_id != p.user_id OR r.price != p.amount OR r.payment_id IS DISTINCT FROM p.id \
              OR r.price != (SELECT SUM(price) FROM reservation_seats rs WHERE rs.reservation_id = r.id))",
        ],
    ),
    (
        "holds_are_consistent",
        &[
            "SELECT format('seat %s/%s is held for reservation %s, which is not its live hold', s.schedule_id, s.seat_no, s.reservation_id) \
             FROM seats s WHERE s.status = 'HELD' AND $1 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM reservations r \
               JOIN reservation_seats rs ON rs.reservation_id = r.id WHERE r.id = s.reservation_id \
               AND rs.schedule_id = s.schedule_id AND rs.seat_no = s.seat_no AND r.status = 'HELD' AND r.expires_at = s.hold_expires_at)",
            "SELECT format('reservation %s is a live hold whose seat %s does not point to it', r.id, rs.seat_no) \
             FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id \
             WHERE r.status = 'HELD' AND r.expires_at > $1 AND NOT EXISTS (SELECT 1 FROM seats s \
               WHERE s.schedule_id = rs.schedule_id AND s.seat_no = rs.seat_no AND s.status = 'HELD' AND s.reservation_id = r.id)",
            "SELECT format('seat %s/%s has %s live holds', rs.schedule_id, rs.seat_no, COUNT(*)) FROM reservations r \
             JOIN reservation_seats rs ON rs.reservation_id = r.id WHERE r.status = 'HELD' AND r.expires_at > $1 \
             GROUP BY rs.schedule_id, rs.seat_no HAVING COUNT(*) > 1",
            "SELECT format('reservation %s has no seats', r.id) FROM reservations r WHERE $1 IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM reservation_seats rs WHERE rs.reservation_id = r.id)",
        ],
    ),
    (
        "one_live_hold_per_user_and_concert",
        &["SELECT format('user %s has %s live holds for concert %s', r.user_id, COUNT(*), c.concert_id) \
           FROM reservations r JOIN schedules c ON c.id = r.schedule_id WHERE r.status = 'HELD' AND r.expires_at > $1 \
           GROUP BY r.user_id, c.concert_id HAVING COUNT(*) > 1"],
    ),
    (
        "balance_equals_ledger_and_is_not_negative",
        &["SELECT format('user %s has balance %s but ledger sum %s', u.id, u.balance, COALESCE(l.total, 0)) FROM users u \
           LEFT JOIN (SELECT user_id, SUM(CASE kind WHEN 'CHARGE' THEN amount ELSE -amount END) AS total \
                      FROM point_ledger GROUP BY user_id) l ON l.user_id = u.id \
           WHERE $1 IS NOT NULL AND (u.balance != COALESCE(l.total, 0) OR u.balance < 0)"],
    ),
    (
        "each_payment_debited_once",
        &[
            "SELECT format('payment %s has %s debits totalling %s for amount %s', p.id, COUNT(l.id), COALESCE(SUM(l.amount), 0), p.amount) \
             FROM payments p LEFT JOIN point_ledger l ON l.payment_id = p.id AND l.kind = 'USE' WHERE $1 IS NOT NULL \
             GROUP BY p.id HAVING COUNT(l.id) != 1 OR COALESCE(SUM(l.amount), 0) != p.amount",
            "SELECT format('ledger row %s names missing payment %s', l.id, l.payment_id) FROM point_ledger l \
             WHERE $1 IS NOT NULL AND l.payment_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = l.payment_id)",
        ],
    ),
    (
        "idempotency_key_applied_at_most_once",
        &["SELECT format('user %s key %s has %s payments', user_id, idempotency_key, COUNT(*)) FROM payments \
           WHERE $1 IS NOT NULL GROUP BY user_id, idempotency_key HAVING COUNT(*) > 1"],
    ),
];

pub async fn run(c: &mut PgConnection, stmts: Statements, now: Millis) -> Result<AuditReport> {
    let mut checks = Vec::new();
    for (name, queries) in CHECKS {
        let mut violations = Vec::new();
        for sql in *queries {
            let rows = stmts
                .query(&format!("{sql} LIMIT {AUDIT_SAMPLE}"))
                .bind(now.0)
                .fetch_all(&mut *c)
                .await
                .map_err(pg_err)?;
            violations.extend(rows.iter().map(|r| r.get::<String, _>(0)));
        }
        violations.truncate(AUDIT_SAMPLE);
        checks.push(AuditCheck { name, ok: violations.is_empty(), violations });
    }
    Ok(AuditReport::from_checks(checks))
}
