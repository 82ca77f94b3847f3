//! Every invariant of DESIGN.md that the embedded store can see, as SQL that lists offenders.

use super::sqlite_error::db_err;
use crate::audit::{AuditCheck, AuditReport, AUDIT_SAMPLE};
use crate::domain::{Millis, Result};
use rusqlite::types::Value;
use rusqlite::Connection;

/// (name, queries): a check passes when none of its queries returns a row.
/// `?1` in a query is bound to the audit's `now`.
const CHECKS: &[(&str, &[&str])] = &[
    (
        "seat_sold_at_most_once",
        &["SELECT 'seat', rs.schedule_id, rs.seat_no, 'confirmed reservations', COUNT(*) FROM reservation_seats rs \
           JOIN reservations r ON r.id = rs.reservation_id WHERE r.status = 'CONFIRMED' \
           GROUP BY rs.schedule_id, rs.seat_no HAVING COUNT(*) > 1"],
    ),
    (
        "sold_seat_has_one_completed_payment",
        &[
            "SELECT 'seat', s.schedule_id, s.seat_no, 'payments', \
               (SELECT COUNT(*) FROM payments p WHERE p.reservation_id = s.reservation_id) AS n \
             FROM seats s WHERE s.status = 'SOLD' AND n != 1",
            "SELECT 'seat', s.schedule_id, s.seat_no, 'sold without a confirmed reservation', s.reservation_id FROM seats s \
             WHERE s.status = 'SOLD' AND NOT EXISTS (SELECT 1 FROM reservations r JOIN reservation_seats rs \
               ON rs.reservation_id = r.id WHERE r.id = s.reservation_id AND r.status = 'CONFIRMED' \
               AND rs.schedule_id = s.schedule_id AND rs.seat_no = s.seat_no)",
            "SELECT 'seat', s.schedule_id, s.seat_no, 'sold without its sale record' FROM seats s WHERE s.status = 'SOLD' \
             AND NOT EXISTS (SELECT 1 FROM sold_seats x WHERE x.schedule_id = s.schedule_id AND x.seat_no = s.seat_no \
               AND x.reservation_id = s.reservation_id)",
            "SELECT 'reservation', r.id, 'confirmed but seat not sold to it', rs.seat_no FROM reservations r \
             JOIN reservation_seats rs ON rs.reservation_id = r.id WHERE r.status = 'CONFIRMED' \
             AND NOT EXISTS (SELECT 1 FROM seats s WHERE s.schedule_id = rs.schedule_id AND s.seat_no = rs.seat_no \
               AND s.status = 'SOLD' AND s.reservation_id = r.id)",
            "SELECT 'payment', p.id, 'for a reservation that is not confirmed, of another user or of another price' \
             FROM payments p JOIN reservations r ON r.id = p.reservation_id \
             WHERE r.status != 'CONFIRMED' OR r.user_id != p.user_id OR r.price != p.amount OR r.payment_id != p.id \
               OR r.price != (SELECT SUM(price) FROM reservation_seats rs WHERE rs.reservation_id = r.id)",
        ],
    ),
    (
        "holds_are_consistent",
        &[
            "SELECT 'seat', s.schedule_id, s.seat_no, 'held for a reservation that is not its live hold', s.reservation_id \
             FROM seats s WHERE s.status = 'HELD' AND NOT EXISTS (SELECT 1 FROM reservations r JOIN reservation_seats rs \
               ON rs.reservation_id = r.id WHERE r.id = s.reservation_id AND rs.schedule_id = s.schedule_id \
               AND rs.seat_no = s.seat_no AND r.status = 'HELD' AND r.expires_at = s.hold_expires_at)",
            "SELECT 'reservation', r.id, 'live hold whose seat does not point to it', rs.seat_no FROM reservations r \
             JOIN reservation_seats rs ON rs.reservation_id = r.id WHERE r.status = 'HELD' AND r.expires_at > ?1 \
             AND NOT EXISTS (SELECT 1 FROM seats s WHERE s.schedule_id = rs.schedule_id AND s.seat_no = rs.seat_no \
               AND s.status = 'HELD' AND s.reservation_id = r.id)",
            "SELECT 'seat', rs.schedule_id, rs.seat_no, 'live holds', COUNT(*) FROM reservations r \
             JOIN reservation_seats rs ON rs.reservation_id = r.id WHERE r.status = 'HELD' AND r.expires_at > ?1 \
             GROUP BY rs.schedule_id, rs.seat_no HAVING COUNT(*) > 1",
            "SELECT 'reservation', r.id, 'has no seats' FROM reservations r \
             WHERE NOT EXISTS (SELECT 1 FROM reservation_seats rs WHERE rs.reservation_id = r.id)",
        ],
    ),
    (
        "one_live_hold_per_user_and_concert",
        &["SELECT 'user', r.user_id, 'concert', c.concert_id, 'live holds', COUNT(*) FROM reservations r \
           JOIN schedules c ON c.id = r.schedule_id WHERE r.status = 'HELD' AND r.expires_at > ?1 \
           GROUP BY r.user_id, c.concert_id HAVING COUNT(*) > 1"],
    ),
    (
        "balance_equals_ledger_and_is_not_negative",
        &["SELECT 'user', u.id, 'balance', u.balance, 'ledger sum', COALESCE(l.total, 0) FROM users u \
           LEFT JOIN (SELECT user_id, SUM(CASE kind WHEN 'CHARGE' THEN amount ELSE -amount END) AS total \
                      FROM point_ledger GROUP BY user_id) l ON l.user_id = u.id \
           WHERE u.balance != COALESCE(l.total, 0) OR u.balance < 0"],
    ),
    (
        "each_payment_debited_once",
        &[
            "SELECT 'payment', p.id, 'debits', COUNT(l.id), 'amount', p.amount, 'debited', COALESCE(SUM(l.amount), 0) \
             FROM payments p LEFT JOIN point_ledger l ON l.payment_id = p.id AND l.kind = 'USE' \
             GROUP BY p.id HAVING COUNT(l.id) != 1 OR COALESCE(SUM(l.amount), 0) != p.amount",
            "SELECT 'ledger', l.id, 'names missing payment', l.payment_id FROM point_ledger l \
             WHERE l.payment_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = l.payment_id)",
        ],
    ),
    (
        "idempotency_key_applied_at_most_once",
        &["SELECT 'user', user_id, 'key', idempotency_key, 'payments', COUNT(*) FROM payments \
           GROUP BY user_id, idempotency_key HAVING COUNT(*) > 1"],
    ),
    (
        "admission_is_fifo",
        &[
            // Someone later in line was admitted before someone earlier.
            "SELECT 'concert', concert_id, 'seq', seq, 'admitted before an earlier place' FROM ( \
               SELECT concert_id, seq, admitted_at, MAX(admitted_at) OVER (PARTITION BY concert_id ORDER BY seq \
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_max \
               FROM queue_entries WHERE admitted_at IS NOT NULL) WHERE admitted_at < earlier_max",
            // Someone is still waiting behind a person who was already admitted... in front of them.
            "SELECT 'concert', w.concert_id, 'seq', w.seq, 'still waiting behind later admitted place', a.last_admitted \
             FROM queue_entries w JOIN (SELECT concert_id, MAX(seq) AS last_admitted FROM queue_entries \
               WHERE admitted_at IS NOT NULL GROUP BY concert_id) a ON a.concert_id = w.concert_id \
             WHERE w.state = 'WAITING' AND w.seq < a.last_admitted",
            "SELECT 'concert', concert_id, 'seq', seq, 'ended without being admitted or leaving' FROM queue_entries \
             WHERE state = 'EXPIRED' AND admitted_at IS NULL \
             AND end_reason NOT IN ('LEFT', 'SOLD_OUT', 'LINE_CLOSED')",
        ],
    ),
    (
        "active_users_within_limit",
        &[
            "SELECT 'concert', concert_id, 'seq', seq, 'active after admission', active_after, 'limit', max_active \
             FROM queue_entries WHERE active_after > max_active",
            "SELECT 'concert', concert_id, 'active now', COUNT(*), 'limit', MAX(max_active) FROM queue_entries \
             WHERE state = 'ACTIVE' GROUP BY concert_id HAVING COUNT(*) > MAX(max_active)",
        ],
    ),
];

fn render(row: &rusqlite::Row, width: usize) -> rusqlite::Result<String> {
    let mut parts = Vec::with_capacity(width);
    for i in 0..width {
        parts.push(match row.get::<_, Value>(i)? {
            Value::Null => "null".to_owned(),
            Value::Integer(v) => v.to_string(),
            Value::Real(v) => v.to_string(),
            Value::Text(t) => t,
            Value::Blob(_) => "<blob>".to_owned(),
        });
    }
    Ok(parts.join(" "))
}

pub fn run(conn: &Connection, now: Millis) -> Result<AuditReport> {
    let mut checks = Vec::new();
    for (name, queries) in CHECKS {
        let mut violations = Vec::new();
        for sql in *queries {
            let mut stmt = conn.prepare(sql).map_err(db_err)?;
            let width = stmt.column_count();
            let binds_now = sql.contains("?1");
            let mut rows = if binds_now { stmt.query([now.0]) } else { stmt.query([]) }.map_err(db_err)?;
            while let Some(row) = rows.next().map_err(db_err)? {
                if violations.len() >= AUDIT_SAMPLE {
                    break;
                }
                violations.push(render(row, width).map_err(db_err)?);
            }
        }
        checks.push(AuditCheck { name, ok: violations.is_empty(), violations });
    }
    Ok(AuditReport::from_checks(checks))
}
