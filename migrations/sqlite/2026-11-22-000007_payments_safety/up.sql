-- Money moves exactly once (docs/ARCHITECTURE.md, "Payments safety").

-- An idempotency key still running is locked for a short lease only: after
-- `locked_until` a retry with the same key takes it over and resumes the
-- request. NULL once the answer is stored.
ALTER TABLE idempotency_keys ADD COLUMN locked_until TIMESTAMP;

-- What each charge is for (`instalment`, `regularization`), the client
-- request that asked for it (idempotency scope and key, when there was
-- one), and, for a regularization, the recovery point: the chosen plan and
-- card as JSON, so that whoever learns the outcome (the retry or the
-- reconciliation job) can finish it.
ALTER TABLE charges ADD COLUMN purpose TEXT NOT NULL DEFAULT 'instalment';
ALTER TABLE charges ADD COLUMN request_scope TEXT;
ALTER TABLE charges ADD COLUMN request_key TEXT;
ALTER TABLE charges ADD COLUMN details TEXT;
CREATE INDEX charges_request ON charges (request_scope, request_key);
CREATE INDEX charges_status ON charges (status, created_at);

-- Refunds are paid by a job: leased, then settled (`paid`, `failed`).
ALTER TABLE refunds ADD COLUMN settled_at TIMESTAMP;
ALTER TABLE refunds ADD COLUMN failure_code TEXT;
ALTER TABLE refunds ADD COLUMN claim_token TEXT;
ALTER TABLE refunds ADD COLUMN claimed_until TIMESTAMP;
CREATE INDEX refunds_status ON refunds (status, created_at);

-- A refund is sent to the gateway as one part per charge it draws on, each
-- under its own deterministic key.
CREATE TABLE refund_parts (
    id                TEXT PRIMARY KEY NOT NULL,
    refund_id         TEXT NOT NULL REFERENCES refunds (id),
    charge_id         TEXT NOT NULL REFERENCES charges (id),
    idempotency_key   TEXT NOT NULL UNIQUE,
    amount            BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL,
    gateway_refund_id TEXT,
    failure_code      TEXT,
    created_at        TIMESTAMP NOT NULL,
    completed_at      TIMESTAMP
);
CREATE INDEX refund_parts_refund ON refund_parts (refund_id);
CREATE INDEX refund_parts_charge ON refund_parts (charge_id);

-- The sandbox gateway's own ledger, as an external PSP keeps it: every
-- charge and refund it received, by merchant (organization) and
-- idempotency key, written in its own transaction.
CREATE TABLE sandbox_ledger (
    merchant        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    id              TEXT NOT NULL UNIQUE,
    reference       TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    brand           TEXT,
    last4           TEXT,
    outcome         TEXT NOT NULL,
    failure_code    TEXT,
    refunded        BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (merchant, kind, idempotency_key)
);
CREATE INDEX sandbox_ledger_list ON sandbox_ledger (merchant, kind, created_at);
