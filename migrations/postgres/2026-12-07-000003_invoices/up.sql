-- Invoices and payment requests, their lines, their payments (online and
-- offline), and the numbering counters. Amounts are minor units.

ALTER TABLE payment_settings
    ADD COLUMN invoice_partial_payments BOOLEAN NOT NULL DEFAULT FALSE;

-- The last number generated per organization, kind and year.
CREATE TABLE invoice_counters (
    org_id   TEXT NOT NULL REFERENCES organizations (id),
    kind     TEXT NOT NULL,
    year     INTEGER NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (org_id, kind, year)
);

CREATE TABLE invoices (
    -- inv_...
    id            TEXT PRIMARY KEY NOT NULL,
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    customer_id   TEXT NOT NULL REFERENCES customers (id),
    -- invoice (with lines) or payment_request (an amount and a reason).
    kind          TEXT NOT NULL,
    -- Chosen by the business, or generated when the invoice is issued.
    number        TEXT,
    -- draft, open, paid or void (overdue is computed from due_date).
    status        TEXT NOT NULL,
    currency      TEXT NOT NULL,
    subtotal      BIGINT NOT NULL,
    tax           BIGINT NOT NULL,
    total         BIGINT NOT NULL,
    amount_paid   BIGINT NOT NULL,
    reason        TEXT,
    note          TEXT,
    issue_date    DATE NOT NULL,
    due_date      DATE NOT NULL,
    -- The PDF shared with the customer when the invoice was issued.
    document_id   TEXT REFERENCES documents (id),
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    issued_at     TIMESTAMP,
    paid_at       TIMESTAMP,
    voided_at     TIMESTAMP,
    void_reason   TEXT,
    CHECK (amount_paid >= 0 AND amount_paid <= total)
);
CREATE UNIQUE INDEX invoices_number ON invoices (org_id, number) WHERE number IS NOT NULL;
CREATE INDEX invoices_customer ON invoices (org_id, customer_id, status, due_date);
CREATE INDEX invoices_org ON invoices (org_id, created_at, id);
CREATE INDEX invoices_open_due ON invoices (due_date, id) WHERE status = 'open';

CREATE TABLE invoice_lines (
    invoice_id   TEXT NOT NULL REFERENCES invoices (id),
    position     INTEGER NOT NULL,
    description  TEXT NOT NULL,
    quantity     BIGINT NOT NULL,
    unit_amount  BIGINT NOT NULL,
    tax_rate_bp  INTEGER NOT NULL,
    net          BIGINT NOT NULL,
    tax          BIGINT NOT NULL,
    PRIMARY KEY (invoice_id, position)
);

-- Every payment of an invoice. An online one is written `pending` before
-- the gateway is called, under a gateway key derived from the invoice and
-- the attempt's number, and completed after it: a crash in between is
-- found and reconciled with the same key.
CREATE TABLE invoice_payments (
    -- ipy_...
    id                TEXT PRIMARY KEY NOT NULL,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    invoice_id        TEXT NOT NULL REFERENCES invoices (id),
    customer_id       TEXT NOT NULL REFERENCES customers (id),
    amount            BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    -- customer (online, in the portal), autopay (the debit run) or staff
    -- (recorded offline).
    source            TEXT NOT NULL,
    -- card, sepa_debit, cash, cheque, bank_transfer or other.
    method            TEXT NOT NULL,
    -- pending, succeeded or failed.
    status            TEXT NOT NULL,
    gateway_key       TEXT UNIQUE,
    gateway_charge_id TEXT,
    failure_code      TEXT,
    -- The client request that asked for it: idempotency scope and key.
    request_scope     TEXT,
    request_key       TEXT,
    -- What finishing it needs (JSON): the card token and what may be shown
    -- of the card.
    details           TEXT,
    -- What the business noted of an offline payment.
    reference         TEXT,
    paid_on           DATE,
    created_at        TIMESTAMP NOT NULL,
    completed_at      TIMESTAMP
);
-- One payment in flight per invoice: two requests can never both charge it.
CREATE UNIQUE INDEX invoice_payments_one_pending ON invoice_payments (invoice_id)
    WHERE status = 'pending';
CREATE UNIQUE INDEX invoice_payments_request ON invoice_payments (request_scope, request_key)
    WHERE request_key IS NOT NULL;
CREATE INDEX invoice_payments_invoice ON invoice_payments (invoice_id, created_at);
CREATE INDEX invoice_payments_pending ON invoice_payments (created_at) WHERE status = 'pending';
