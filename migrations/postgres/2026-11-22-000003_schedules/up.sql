-- Instalment schedules (the BNPL customer space): payment settings, contact
-- channels, cards (gateway tokens with display data, never a card number),
-- orders with their instalments, adjustments and refunds, charges sent to
-- the gateway, and idempotency keys of money-moving requests.

CREATE TABLE payment_settings (
    org_id                  TEXT PRIMARY KEY NOT NULL REFERENCES organizations (id),
    collections_phone       TEXT,
    card_change_notice_days INTEGER NOT NULL,
    accepted_brands         TEXT NOT NULL,
    retry_count             INTEGER NOT NULL,
    retry_delay_days        INTEGER NOT NULL,
    updated_at              TIMESTAMP NOT NULL
);

CREATE TABLE contact_channels (
    org_id     TEXT PRIMARY KEY NOT NULL REFERENCES organizations (id),
    time_zone  TEXT NOT NULL,
    channels   TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE cards (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    token       TEXT NOT NULL,
    brand       TEXT NOT NULL,
    last4       TEXT NOT NULL,
    exp_month   INTEGER NOT NULL,
    exp_year    INTEGER NOT NULL,
    funding     TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX cards_customer ON cards (customer_id);

CREATE TABLE orders (
    id             TEXT PRIMARY KEY NOT NULL,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    customer_id    TEXT NOT NULL REFERENCES customers (id),
    order_number   TEXT NOT NULL,
    merchant_brand TEXT NOT NULL,
    purchase_date  DATE NOT NULL,
    total_amount   BIGINT NOT NULL,
    currency       TEXT NOT NULL,
    card_id        TEXT NOT NULL REFERENCES cards (id),
    status         TEXT NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    UNIQUE (org_id, order_number)
);
CREATE INDEX orders_customer ON orders (customer_id, status, purchase_date, id);

CREATE TABLE instalments (
    id              TEXT PRIMARY KEY NOT NULL,
    order_id        TEXT NOT NULL REFERENCES orders (id),
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    number          INTEGER NOT NULL,
    due_date        DATE NOT NULL,
    amount          BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    paid_at         TIMESTAMP,
    attempts        INTEGER NOT NULL,
    next_attempt_on DATE,
    debit_on        DATE,
    claim_token     TEXT,
    claimed_until   TIMESTAMP,
    UNIQUE (order_id, number)
);
-- Debit runs look for pending instalments whose debit date has come.
CREATE INDEX instalments_due ON instalments (status, debit_on);
CREATE INDEX instalments_order ON instalments (order_id, number);

CREATE TABLE adjustments (
    id            TEXT PRIMARY KEY NOT NULL,
    order_id      TEXT NOT NULL REFERENCES orders (id),
    kind          TEXT NOT NULL,
    amount        BIGINT NOT NULL,
    refund_amount BIGINT,
    created_at    TIMESTAMP NOT NULL
);
CREATE INDEX adjustments_order ON adjustments (order_id, created_at);

CREATE TABLE refunds (
    id                TEXT PRIMARY KEY NOT NULL,
    order_id          TEXT NOT NULL REFERENCES orders (id),
    adjustment_id     TEXT NOT NULL REFERENCES adjustments (id),
    amount            BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL,
    gateway_refund_id TEXT,
    created_at        TIMESTAMP NOT NULL
);
CREATE INDEX refunds_order ON refunds (order_id);

CREATE TABLE charges (
    id                TEXT PRIMARY KEY NOT NULL,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    order_id          TEXT NOT NULL REFERENCES orders (id),
    instalment_id     TEXT REFERENCES instalments (id),
    idempotency_key   TEXT NOT NULL UNIQUE,
    amount            BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL,
    gateway_charge_id TEXT,
    failure_code      TEXT,
    created_at        TIMESTAMP NOT NULL,
    completed_at      TIMESTAMP
);
CREATE INDEX charges_order ON charges (order_id);

CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code  INTEGER,
    response     TEXT,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, key)
);
