-- Operator controls of each concert's line, and the log of every operator action (issue 14).
-- A line without a row runs on the server's start-up settings.
CREATE TABLE line_settings (
    concert_id     BIGINT PRIMARY KEY REFERENCES concerts (id),
    max_active     BIGINT CHECK (max_active > 0),
    admission_rate DOUBLE PRECISION CHECK (admission_rate > 0),
    paused         BOOLEAN NOT NULL DEFAULT FALSE,
    closed         BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at     BIGINT NOT NULL
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
