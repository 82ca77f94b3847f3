-- boxoffice embedded schema, version 1. Times are Unix milliseconds; points are whole units.

CREATE TABLE users (
    id      INTEGER PRIMARY KEY,
    balance INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0)
);

CREATE TABLE point_ledger (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    kind          TEXT    NOT NULL CHECK (kind IN ('CHARGE', 'USE')),
    amount        INTEGER NOT NULL CHECK (amount > 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    payment_id    INTEGER,
    created_at    INTEGER NOT NULL
);
CREATE INDEX point_ledger_user ON point_ledger (user_id, id);
CREATE INDEX point_ledger_payment ON point_ledger (payment_id) WHERE payment_id IS NOT NULL;

CREATE TABLE concerts (
    id    INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    venue TEXT NOT NULL
);

CREATE TABLE schedules (
    id         INTEGER PRIMARY KEY,
    concert_id INTEGER NOT NULL REFERENCES concerts (id),
    starts_at  INTEGER NOT NULL,
    seat_count INTEGER NOT NULL CHECK (seat_count > 0)
);
CREATE INDEX schedules_concert ON schedules (concert_id);

CREATE TABLE seats (
    schedule_id     INTEGER NOT NULL REFERENCES schedules (id),
    seat_no         INTEGER NOT NULL CHECK (seat_no > 0),
    price           INTEGER NOT NULL CHECK (price > 0),
    status          TEXT    NOT NULL DEFAULT 'AVAILABLE' CHECK (status IN ('AVAILABLE', 'HELD', 'SOLD')),
    reservation_id  INTEGER,
    hold_expires_at INTEGER,
    PRIMARY KEY (schedule_id, seat_no)
) WITHOUT ROWID;
CREATE INDEX seats_held ON seats (hold_expires_at) WHERE status = 'HELD';

CREATE TABLE reservations (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    schedule_id  INTEGER NOT NULL,
    seat_no      INTEGER NOT NULL,
    price        INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('HELD', 'CONFIRMED', 'EXPIRED')),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    confirmed_at INTEGER,
    payment_id   INTEGER
);
CREATE INDEX reservations_held ON reservations (expires_at) WHERE status = 'HELD';
CREATE INDEX reservations_seat ON reservations (schedule_id, seat_no);
-- The last line of defence against a double sale.
CREATE UNIQUE INDEX reservations_one_confirmed ON reservations (schedule_id, seat_no) WHERE status = 'CONFIRMED';

CREATE TABLE payments (
    id              INTEGER PRIMARY KEY,
    reservation_id  INTEGER NOT NULL UNIQUE REFERENCES reservations (id),
    user_id         INTEGER NOT NULL REFERENCES users (id),
    amount          INTEGER NOT NULL CHECK (amount > 0),
    idempotency_key TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (user_id, idempotency_key)
);

-- Stored outcomes of idempotent requests, so a replay answers exactly as the first call did.
CREATE TABLE idempotency (
    user_id    INTEGER NOT NULL,
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    request    TEXT    NOT NULL,
    response   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, scope, key)
) WITHOUT ROWID;

-- The embedded waiting room's journal: what a restart reloads, and what the audit checks.
CREATE TABLE queue_entries (
    concert_id     INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    user_id        INTEGER NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('WAITING', 'ACTIVE', 'EXPIRED')),
    joined_at      INTEGER NOT NULL,
    admitted_at    INTEGER,
    claim_deadline INTEGER,
    claimed_at     INTEGER,
    active_until   INTEGER,
    active_after   INTEGER,
    max_active     INTEGER,
    ended_at       INTEGER,
    end_reason     TEXT,
    PRIMARY KEY (concert_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX queue_live_user ON queue_entries (concert_id, user_id) WHERE state IN ('WAITING', 'ACTIVE');
CREATE INDEX queue_live ON queue_entries (state) WHERE state IN ('WAITING', 'ACTIVE');
