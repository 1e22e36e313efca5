-- Identity and access: staff, API keys, customers, sessions, one-time
-- codes, proof-of-work challenges already used, and the notification outbox.

ALTER TABLE organizations ADD COLUMN login_methods TEXT NOT NULL DEFAULT 'both';
ALTER TABLE organizations ADD COLUMN support_email TEXT;
ALTER TABLE organizations ADD COLUMN support_phone TEXT;

CREATE TABLE staff_users (
    id            TEXT PRIMARY KEY NOT NULL,
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT,
    disabled_at   TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    UNIQUE (org_id, email)
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at);

CREATE TABLE customers (
    id            TEXT PRIMARY KEY NOT NULL,
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    mobile        TEXT,
    locale        TEXT NOT NULL,
    external_ref  TEXT,
    password_hash TEXT,
    registered_at TIMESTAMP,
    blocked_at    TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    UNIQUE (org_id, email)
);
CREATE INDEX customers_org_page ON customers (org_id, id);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    subject_kind TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    remember_me  BOOLEAN NOT NULL,
    user_agent   TEXT,
    ip           TEXT,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP
);
CREATE INDEX sessions_subject ON sessions (subject_kind, subject_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    created_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE one_time_codes (
    id              TEXT PRIMARY KEY NOT NULL,
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    subject_kind    TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    code_hash       TEXT NOT NULL,
    channel         TEXT NOT NULL,
    destination     TEXT NOT NULL,
    destination_key TEXT NOT NULL,
    payload         TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    consumed_at     TIMESTAMP,
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX one_time_codes_subject ON one_time_codes (subject_id, purpose, created_at);
CREATE INDEX one_time_codes_hash ON one_time_codes (code_hash);
CREATE INDEX one_time_codes_destination ON one_time_codes (destination_key, created_at);

-- Failed sign-ins per account key (a keyed hash of organization, kind and
-- e-mail), for known and unknown e-mails alike so that the throttle does not
-- reveal which accounts exist.
CREATE TABLE login_throttles (
    key           TEXT PRIMARY KEY NOT NULL,
    failed_logins INTEGER NOT NULL,
    locked_until  TIMESTAMP,
    updated_at    TIMESTAMP NOT NULL
);

CREATE TABLE used_challenges (
    id         TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY NOT NULL,
    org_id          TEXT REFERENCES organizations (id),
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    template        TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    sent_at         TIMESTAMP,
    failed_at       TIMESTAMP,
    last_error      TEXT,
    claim_token     TEXT,
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX outbox_due ON outbox (sent_at, failed_at, next_attempt_at);
