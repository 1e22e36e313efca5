-- Events (what happened, written in the same transaction as the change that
-- causes it) and the webhooks that tell a business's systems about them.

CREATE TABLE events (
    -- evt_...
    id           TEXT PRIMARY KEY NOT NULL,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    -- noun.verb, e.g. schedule.card_changed.
    event_type   TEXT NOT NULL,
    -- The object the event is about (its API id) and its kind (schedule,
    -- instalment, order, mandate, collection, customer, ...).
    object_type  TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    -- For customer actions: which customer.
    customer_id  TEXT,
    -- Who acted: customer, staff, api_key or system.
    actor        TEXT NOT NULL,
    -- A JSON snapshot of the object as the API shows it. Never a PAN, CVC,
    -- code, password, token or full IBAN.
    data         TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX events_page ON events (org_id, created_at, id);
CREATE INDEX events_type_page ON events (org_id, event_type, created_at, id);
CREATE INDEX events_age ON events (created_at);

CREATE TABLE webhook_endpoints (
    -- whe_...
    id                          TEXT PRIMARY KEY NOT NULL,
    org_id                      TEXT NOT NULL REFERENCES organizations (id),
    url                         TEXT NOT NULL,
    description                 TEXT NOT NULL,
    -- A JSON array of event types, or ["*"] for all of them.
    event_types                 TEXT NOT NULL,
    enabled                     BOOLEAN NOT NULL,
    -- Why it was disabled: manual, or failing (3 days of failures).
    disabled_reason             TEXT,
    -- The signing secret (whsec_...), sealed with the server's outbox key.
    secret_sealed               TEXT NOT NULL,
    -- The secret before the last rotation, valid until the given instant.
    previous_secret_sealed      TEXT,
    previous_secret_expires_at  TIMESTAMP,
    -- Since when every delivery has failed (NULL after a success).
    failing_since               TIMESTAMP,
    created_at                  TIMESTAMP NOT NULL,
    updated_at                  TIMESTAMP NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, created_at, id);

-- One event to one endpoint, until it succeeds or is given up.
CREATE TABLE webhook_deliveries (
    -- whd_...
    id               TEXT PRIMARY KEY NOT NULL,
    org_id           TEXT NOT NULL REFERENCES organizations (id),
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_id         TEXT NOT NULL REFERENCES events (id),
    -- pending, succeeded or failed.
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    -- When the next attempt is due (NULL once succeeded or failed).
    next_attempt_at  TIMESTAMP,
    -- A dispatcher's claim: its token and until when it holds.
    claim_token      TEXT,
    claimed_until    TIMESTAMP,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

-- Every attempt of a delivery: the delivery log.
CREATE TABLE webhook_attempts (
    -- wha_...
    id              TEXT PRIMARY KEY NOT NULL,
    delivery_id     TEXT NOT NULL REFERENCES webhook_deliveries (id),
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_id        TEXT NOT NULL REFERENCES events (id),
    attempt         INTEGER NOT NULL,
    -- succeeded or failed.
    outcome         TEXT NOT NULL,
    -- The receiver's HTTP status (NULL when none came: timeout, refused).
    http_status     INTEGER,
    latency_ms      INTEGER NOT NULL,
    -- The first 1 KiB of the answer, as text.
    response        TEXT NOT NULL,
    -- What went wrong without an HTTP status (timeout, connection refused,
    -- address forbidden).
    error           TEXT,
    -- When the delivery is tried again (NULL on success or when given up).
    next_retry_at   TIMESTAMP,
    started_at      TIMESTAMP NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, started_at, id);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
