-- boxoffice scale-out schema, version 1. Times are Unix milliseconds; points are whole units.

CREATE TABLE users (
    id      BIGINT PRIMARY KEY,
    balance BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0)
);

CREATE TABLE point_ledger (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id),
    kind          TEXT   NOT NULL CHECK (kind IN ('CHARGE', 'USE')),
    amount        BIGINT NOT NULL CHECK (amount > 0),
    balance_after BIGINT NOT NULL CHECK (balance_after >= 0),
    payment_id    BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX point_ledger_user ON point_ledger (user_id, id);
CREATE INDEX point_ledger_payment ON point_ledger (payment_id) WHERE payment_id IS NOT NULL;

CREATE TABLE concerts (
    id    BIGINT PRIMARY KEY,
    title TEXT NOT NULL,
    venue TEXT NOT NULL
);

CREATE TABLE schedules (
    id         BIGINT PRIMARY KEY,
    concert_id BIGINT NOT NULL REFERENCES concerts (id),
    starts_at  BIGINT NOT NULL,
    seat_count INT    NOT NULL CHECK (seat_count > 0)
);
CREATE INDEX schedules_concert ON schedules (concert_id);

CREATE TABLE seats (
    schedule_id     BIGINT NOT NULL REFERENCES schedules (id),
    seat_no         INT    NOT NULL CHECK (seat_no > 0),
    price           BIGINT NOT NULL CHECK (price > 0),
    status          TEXT   NOT NULL DEFAULT 'AVAILABLE' CHECK (status IN ('AVAILABLE', 'HELD', 'SOLD')),
    reservation_id  BIGINT,
    hold_expires_at BIGINT,
    PRIMARY KEY (schedule_id, seat_no)
);
CREATE INDEX seats_held ON seats (hold_expires_at) WHERE status = 'HELD';

CREATE TABLE reservations (
    id           BIGINT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    schedule_id  BIGINT NOT NULL,
    seat_no      INT    NOT NULL,
    price        BIGINT NOT NULL,
    status       TEXT   NOT NULL CHECK (status IN ('HELD', 'CONFIRMED', 'EXPIRED')),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    payment_id   BIGINT
);
CREATE SEQUENCE reservations_id_seq OWNED BY reservations.id;
CREATE INDEX reservations_held ON reservations (expires_at) WHERE status = 'HELD';
CREATE INDEX reservations_seat ON reservations (schedule_id, seat_no);
-- The last line of defence against a double sale.
CREATE UNIQUE INDEX reservations_one_confirmed ON reservations (schedule_id, seat_no) WHERE status = 'CONFIRMED';

CREATE TABLE payments (
    id              BIGSERIAL PRIMARY KEY,
    reservation_id  BIGINT NOT NULL UNIQUE REFERENCES reservations (id),
    user_id         BIGINT NOT NULL REFERENCES users (id),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    idempotency_key TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (user_id, idempotency_key)
);

-- Stored outcomes of idempotent requests. A row is inserted first (response NULL) to claim the key:
-- a concurrent request with the same key waits on the unique index until the first one ends.
CREATE TABLE idempotency (
    user_id    BIGINT NOT NULL,
    scope      TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    request    TEXT   NOT NULL,
    response   TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, scope, key)
);
