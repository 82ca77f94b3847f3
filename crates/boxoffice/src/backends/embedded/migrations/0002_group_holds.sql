-- Holds of several seats, releases, and sales recorded per seat (issues 13 and 15).
-- Runs with foreign keys off (migrate.rs), as SQLite's procedure for rebuilding a table asks;
-- migrate.rs checks them before committing.

-- The seats of each reservation, at the price each was held for.
CREATE TABLE reservation_seats (
    reservation_id INTEGER NOT NULL REFERENCES reservations (id),
    schedule_id    INTEGER NOT NULL,
    seat_no        INTEGER NOT NULL,
    price          INTEGER NOT NULL CHECK (price > 0),
    PRIMARY KEY (reservation_id, seat_no)
) WITHOUT ROWID;
INSERT INTO reservation_seats (reservation_id, schedule_id, seat_no, price)
    SELECT id, schedule_id, seat_no, price FROM reservations;
CREATE INDEX reservation_seats_seat ON reservation_seats (schedule_id, seat_no);

-- The last line of defence against a double sale: a seat is sold once, whatever the reservation.
CREATE TABLE sold_seats (
    schedule_id    INTEGER NOT NULL,
    seat_no        INTEGER NOT NULL,
    reservation_id INTEGER NOT NULL REFERENCES reservations (id),
    payment_id     INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, seat_no)
) WITHOUT ROWID;
INSERT INTO sold_seats (schedule_id, seat_no, reservation_id, payment_id)
    SELECT schedule_id, seat_no, id, payment_id FROM reservations WHERE status = 'CONFIRMED';

-- Reservations lose their single seat and may be RELEASED; `price` is the total of their seats.
CREATE TABLE reservations_new (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    schedule_id  INTEGER NOT NULL,
    price        INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('HELD', 'CONFIRMED', 'EXPIRED', 'RELEASED')),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    confirmed_at INTEGER,
    ended_at     INTEGER,
    payment_id   INTEGER
);
INSERT INTO reservations_new (id, user_id, schedule_id, price, status, created_at, expires_at, confirmed_at, payment_id)
    SELECT id, user_id, schedule_id, price, status, created_at, expires_at, confirmed_at, payment_id FROM reservations;
DROP TABLE reservations;
ALTER TABLE reservations_new RENAME TO reservations;
CREATE INDEX reservations_held ON reservations (expires_at) WHERE status = 'HELD';
CREATE INDEX reservations_user ON reservations (user_id, id);
CREATE INDEX reservations_user_held ON reservations (user_id) WHERE status = 'HELD';
