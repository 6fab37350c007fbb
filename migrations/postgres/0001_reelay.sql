-- Reelay on PostgreSQL: the same tables as on SQLite, with the same column
-- types as far as the drivers see them (text, bigint, double precision,
-- bytea), plus what several instances on one database need: job owners,
-- instance heartbeats, and one sequence for event ids.

CREATE TABLE jobs (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    generation_id    TEXT    NOT NULL,
    request          TEXT    NOT NULL,
    state            TEXT    NOT NULL
        CHECK (state IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    cancel_requested BIGINT  NOT NULL DEFAULT 0,
    progress         BIGINT  NOT NULL DEFAULT 0,
    current_stage    TEXT,
    stages           TEXT    NOT NULL DEFAULT '{}',
    data             TEXT    NOT NULL DEFAULT '{}',
    result_path      TEXT,
    result           TEXT,
    error_message    TEXT,
    recoveries       BIGINT  NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL,
    started_at       TEXT,
    completed_at     TEXT,
    updated_at       TEXT    NOT NULL,
    -- The instance whose lease covers a running job.
    owner            TEXT
);

CREATE INDEX jobs_by_state ON jobs (state, seq);
CREATE INDEX jobs_by_generation ON jobs (generation_id, seq);

-- Event ids come from this one sequence, drawn only under the event-order
-- lock (see the store's writer), so id order is commit order.
CREATE TABLE events (
    id        BIGSERIAL PRIMARY KEY,
    job_id    TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    type      TEXT    NOT NULL,
    level     TEXT    NOT NULL CHECK (level IN ('info', 'success', 'warning', 'error')),
    message   TEXT    NOT NULL,
    stage     TEXT,
    kind      TEXT,
    payload   TEXT,
    timestamp DOUBLE PRECISION NOT NULL
);

CREATE INDEX events_by_job ON events (job_id, id);

-- Live instances: each renews its heartbeat; a running job whose owner's
-- heartbeat is older than the lease is rescued by another instance.
CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE webhook_endpoints (
    id                    TEXT    PRIMARY KEY,
    url                   TEXT    NOT NULL,
    events                TEXT    NOT NULL,
    job_id                TEXT    REFERENCES jobs (id) ON DELETE CASCADE,
    secret                TEXT,
    previous_secret       TEXT,
    previous_secret_until DOUBLE PRECISION,
    cursor                BIGINT  NOT NULL DEFAULT 0,
    description           TEXT,
    created_at            TEXT    NOT NULL,
    failing_since         DOUBLE PRECISION,
    disabled_at           TEXT,
    done                  BIGINT  NOT NULL DEFAULT 0
);

CREATE INDEX webhook_endpoints_active ON webhook_endpoints (done, disabled_at);

CREATE TABLE webhook_deliveries (
    id              TEXT    PRIMARY KEY,
    endpoint_id     TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    job_id          TEXT    NOT NULL,
    event_id        BIGINT  NOT NULL,
    event_type      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    created_at      TEXT    NOT NULL,
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_lanes ON webhook_deliveries (status, endpoint_id, job_id, event_id);
CREATE INDEX webhook_deliveries_history ON webhook_deliveries (endpoint_id, event_id);

CREATE TABLE webhook_attempts (
    id           BIGSERIAL PRIMARY KEY,
    delivery_id  TEXT    NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at TEXT    NOT NULL,
    status_code  BIGINT,
    latency_ms   DOUBLE PRECISION NOT NULL,
    error        TEXT
);

CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, id);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE idempotency_keys (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    status       BIGINT  NOT NULL,
    content_type TEXT,
    body         BYTEA   NOT NULL,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
