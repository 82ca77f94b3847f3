-- Operator controls of each concert's line, and the log of every operator action (issue 14).
-- A line without a row runs on the server's start-up settings.
CREATE TABLE line_settings (
    concert_id     BIGINT PRIMARY KEY REFERENCES concerts (id),
    max_active     BIGINT CHECK (max_active > 0),
    admission_rate DOUBLE PRECISION CHECK (admission_rate > 0),
    paused         BOOLEAN NOT NULL DEFAULT FALSE,
    closed         BOOLEAN NOT NULL DEFAULT FALSE,
    on_sale_at     BIGINT,
    updated_at     BIGINT NOT NULL
);

-- The secret seed of each scheduled on-sale's draw, made when the on-sale is first set; only its
-- commitment (SHA-256) is published before the draw (domain::draw). The pre-queue and the drawn
-- order live in Redis with the line.
CREATE TABLE draws (
    concert_id BIGINT PRIMARY KEY REFERENCES concerts (id),
    seed       TEXT   NOT NULL,
    commitment TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- What was done, when, and the settings before and after (JSON).
CREATE TABLE admin_log (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT NOT NULL,
    concert_id BIGINT,
    action     TEXT   NOT NULL,
    before     TEXT,
    after      TEXT
);
