-- A customer's security history, and contact changes requested by staff
-- that wait for the customer's confirmation.

CREATE TABLE security_events (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    kind        TEXT NOT NULL,
    -- Who acted: customer, staff, api_key or system.
    actor       TEXT NOT NULL,
    -- Masked details only: never a code, token, hash or full contact.
    field       TEXT,
    value       TEXT,
    session_id  TEXT,
    ip          TEXT,
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX security_events_page ON security_events (customer_id, created_at, id);

CREATE TABLE contact_changes (
    id              TEXT PRIMARY KEY NOT NULL,
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    -- email or mobile.
    field           TEXT NOT NULL,
    new_value       TEXT NOT NULL,
    -- staff or api_key, and its id.
    requested_by    TEXT NOT NULL,
    requester_id    TEXT NOT NULL,
    code_hash       TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    max_attempts    INTEGER NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    -- pending, confirmed or superseded.
    status          TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    decided_at      TIMESTAMP
);
CREATE INDEX contact_changes_customer ON contact_changes (customer_id, status, created_at);
