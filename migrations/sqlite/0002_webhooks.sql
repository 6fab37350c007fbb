-- Webhook subscriptions, the deliveries made for them, and each attempt.

-- A subscription: global (job_id NULL) or one job's own webhook. Its cursor
-- is the id of the last event it has turned into deliveries.
CREATE TABLE webhook_endpoints (
    id                    TEXT    PRIMARY KEY,
    url                   TEXT    NOT NULL,
    events                TEXT    NOT NULL,
    job_id                TEXT    REFERENCES jobs (id) ON DELETE CASCADE,
    -- NULL: signed with the server's default secret.
    secret                TEXT,
    previous_secret       TEXT,
    previous_secret_until REAL,
    cursor                INTEGER NOT NULL DEFAULT 0,
    description           TEXT,
    created_at            TEXT    NOT NULL,
    failing_since         REAL,
    disabled_at           TEXT,
    -- A job's webhook is done once its job's terminal event is queued.
    done                  INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX webhook_endpoints_active ON webhook_endpoints (done, disabled_at);

-- One message per endpoint and event; its id is the `webhook-id` header,
-- the same on every attempt.
CREATE TABLE webhook_deliveries (
    id              TEXT    PRIMARY KEY,
    endpoint_id     TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    job_id          TEXT    NOT NULL,
    event_id        INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL,
    created_at      TEXT    NOT NULL,
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
-- Each subscription and job's oldest pending message: the next to send.
CREATE INDEX webhook_deliveries_lanes ON webhook_deliveries (status, endpoint_id, job_id, event_id);
-- A subscription's history, newest first.
CREATE INDEX webhook_deliveries_history ON webhook_deliveries (endpoint_id, event_id);

CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  TEXT    NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at TEXT    NOT NULL,
    status_code  INTEGER,
    latency_ms   REAL    NOT NULL,
    error        TEXT
);

CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, id);

-- Server-wide settings: the default signing secret.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
