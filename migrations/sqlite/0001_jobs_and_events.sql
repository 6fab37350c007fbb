-- Jobs and their append-only event log.
CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    generation_id    TEXT    NOT NULL,
    request          TEXT    NOT NULL,
    state            TEXT    NOT NULL
        CHECK (state IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    progress         INTEGER NOT NULL DEFAULT 0,
    current_stage    TEXT,
    stages           TEXT    NOT NULL DEFAULT '{}',
    data             TEXT    NOT NULL DEFAULT '{}',
    result_path      TEXT,
    result           TEXT,
    error_message    TEXT,
    recoveries       INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL,
    started_at       TEXT,
    completed_at     TEXT,
    updated_at       TEXT    NOT NULL
);

CREATE INDEX jobs_by_state ON jobs (state, seq);
CREATE INDEX jobs_by_generation ON jobs (generation_id, seq);

CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id    TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    type      TEXT    NOT NULL,
    level     TEXT    NOT NULL CHECK (level IN ('info', 'success', 'warning', 'error')),
    message   TEXT    NOT NULL,
    stage     TEXT,
    kind      TEXT,
    payload   TEXT,
    timestamp REAL    NOT NULL
);

CREATE INDEX events_by_job ON events (job_id, id);
