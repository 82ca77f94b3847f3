-- Operator controls of each concert's line, and the log of every operator action (issue 14).
-- A line without a row runs on the server's start-up settings.
CREATE TABLE line_settings (
    concert_id     INTEGER PRIMARY KEY REFERENCES concerts (id),
    max_active     INTEGER CHECK (max_active > 0),
    admission_rate REAL    CHECK (admission_rate > 0),
    paused         INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    closed         INTEGER NOT NULL DEFAULT 0 CHECK (closed IN (0, 1)),
    updated_at     INTEGER NOT NULL
);

-- What was done, when, and the settings before and after (JSON).
CREATE TABLE admin_log (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    concert_id INTEGER,
    action     TEXT    NOT NULL,
    before     TEXT,
    after      TEXT
);
