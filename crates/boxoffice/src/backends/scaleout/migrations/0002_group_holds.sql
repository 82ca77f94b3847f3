-- Holds of several seats, releases, and sales recorded per seat (issues 13 and 15).

CREATE TABLE reservation_seats (
    reservation_id BIGINT NOT NULL REFERENCES reservations (id),
    schedule_id    BIGINT NOT NULL,
    seat_no        INT    NOT NULL,
    price          BIGINT NOT NULL CHECK (price > 0),
    PRIMARY KEY (reservation_id, seat_no)
);
INSERT INTO reservation_seats (reservation_id, schedule_id, seat_no, price)
    SELECT id, schedule_id, seat_no, price FROM reservations;
CREATE INDEX reservation_seats_seat ON reservation_seats (schedule_id, seat_no);

-- The last line of defence against a double sale: a seat is sold once, whatever the reservation.
CREATE TABLE sold_seats (
    schedule_id    BIGINT NOT NULL,
    seat_no        INT    NOT NULL,
    reservation_id BIGINT NOT NULL REFERENCES reservations (id),
    payment_id     BIGINT NOT NULL,
    PRIMARY KEY (schedule_id, seat_no)
);
INSERT INTO sold_seats (schedule_id, seat_no, reservation_id, payment_id)
    SELECT schedule_id, seat_no, id, payment_id FROM reservations WHERE status = 'CONFIRMED';

ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
    CHECK (status IN ('HELD', 'CONFIRMED', 'EXPIRED', 'RELEASED'));
DROP INDEX reservations_one_confirmed;
DROP INDEX reservations_seat;
ALTER TABLE reservations DROP COLUMN seat_no;
ALTER TABLE reservations ADD COLUMN ended_at BIGINT;
CREATE INDEX reservations_user ON reservations (user_id, id);
CREATE INDEX reservations_user_held ON reservations (user_id) WHERE status = 'HELD';
