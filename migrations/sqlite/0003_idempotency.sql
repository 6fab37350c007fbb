-- The answers of submits that carried an Idempotency-Key, kept 24 hours so
-- that a retry gets the same answer and creates no second job.
CREATE TABLE idempotency_keys (
    -- The route and the API key the Idempotency-Key belongs to.
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    -- SHA-256 of the request body, in a canonical JSON form.
    fingerprint  TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    content_type TEXT,
    body         BLOB    NOT NULL,
    -- Unix seconds.
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
