-- Operator controls of each concert's line, and the log of every operator action (issue 14).
-- A line without a row runs on the server's start-up settings.
CREATE TABLE line_settings (
    concert_id     INTEGER PRIMARY KEY REFERENCES concerts (id),
    max_active     INTEGER CHECK (max_active > 0),
    admission_rate REAL    CHECK (admission_rate > 0),
    paused         INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    closed         INTEGER NOT NULL DEFAULT 0 CHECK (closed IN (0, 1)),
    on_sale_at     INTEGER,
    updated_at     INTEGER NOT NULL
);

-- The secret seed of each scheduled on-sale's draw, made when the on-sale is first set; only its
-- commitment (SHA-256) is published before the draw (domain::draw).
CREATE TABLE draws (
    concert_id INTEGER PRIMARY KEY REFERENCES concerts (id),
    seed       TEXT    NOT NULL,
    commitment TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- The waiting room's pre-queue (joins before the on-sale) and the draws it held: written by the
-- embedded waiting room in the same transactions as its journal (queue_entries).
CREATE TABLE queue_pre (
    concert_id INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    entry_id   TEXT    NOT NULL,
    joined_at  INTEGER NOT NULL,
    PRIMARY KEY (concert_id, user_id)
) WITHOUT ROWID;

CREATE TABLE queue_draws (
    concert_id INTEGER PRIMARY KEY,
    seed       TEXT    NOT NULL,
    drawn_at   INTEGER NOT NULL,
    -- The entries given places, first place first (JSON array).
    entries    TEXT    NOT NULL
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
