-- SEPA direct-debit mandates (seed 003): the creditor's settings, customer
-- accounts with their balance and its history, mandates signed by one-time
-- code with their immutable signed PDF, and the collections they allow.

CREATE TABLE creditor_settings (
    org_id               TEXT PRIMARY KEY NOT NULL REFERENCES organizations (id),
    name                 TEXT NOT NULL,
    -- Lines separated by '\n'.
    address              TEXT NOT NULL,
    creditor_id          TEXT NOT NULL,
    -- The creditor's own account, credited by the collections (pain.008).
    iban                 TEXT NOT NULL,
    bic                  TEXT NOT NULL,
    -- Days between the pre-notification e-mail and the collection (2 to 14).
    prenotification_days INTEGER NOT NULL,
    updated_at           TIMESTAMP NOT NULL
);

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    label       TEXT NOT NULL,
    reference   TEXT NOT NULL,
    -- What the customer owes now, in minor units.
    balance     BIGINT NOT NULL,
    currency    TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    UNIQUE (org_id, reference)
);
CREATE INDEX accounts_customer ON accounts (customer_id, id);
CREATE INDEX accounts_org ON accounts (org_id, id);

-- Every change of an account's balance: charges added by the business,
-- collections taken from it, rejected collections put back.
CREATE TABLE account_entries (
    id            TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    kind          TEXT NOT NULL,
    -- Signed: positive raises the balance.
    amount        BIGINT NOT NULL,
    label         TEXT NOT NULL,
    collection_id TEXT,
    created_at    TIMESTAMP NOT NULL
);
CREATE INDEX account_entries_account ON account_entries (account_id, created_at);

CREATE TABLE mandates (
    id             TEXT PRIMARY KEY NOT NULL,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    customer_id    TEXT NOT NULL REFERENCES customers (id),
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    -- draft, signed, revoked, expired
    status         TEXT NOT NULL,
    -- one_off, recurrent
    payment_type   TEXT NOT NULL,
    iban           TEXT NOT NULL,
    bic            TEXT NOT NULL,
    email          TEXT NOT NULL,
    -- One-off: the amount to collect (EUR minor units); recurrent: NULL.
    amount         BIGINT,
    -- Recurrent only: the balance spread over this many monthly collections.
    spread_months  INTEGER,
    debtor_name    TEXT NOT NULL,
    debtor_address TEXT,
    -- The unique mandate reference, assigned at signature.
    umr            TEXT UNIQUE,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);
CREATE INDEX mandates_customer ON mandates (customer_id, created_at);
CREATE INDEX mandates_account ON mandates (account_id, status);
CREATE INDEX mandates_org ON mandates (org_id, id);

-- What a signature leaves, and the life of the signed mandate after it.
CREATE TABLE mandate_signatures (
    mandate_id        TEXT PRIMARY KEY NOT NULL REFERENCES mandates (id),
    signed_at         TIMESTAMP NOT NULL,
    -- sms, email
    channel           TEXT NOT NULL,
    -- Masked, as shown on the document.
    destination       TEXT NOT NULL,
    ip                TEXT NOT NULL,
    user_agent        TEXT NOT NULL,
    document_sha256   TEXT NOT NULL,
    last_collected_at TIMESTAMP,
    revoked_at        TIMESTAMP,
    expired_at        TIMESTAMP
);
-- Expiry looks for recurrent mandates unused for 36 months.
CREATE INDEX mandate_signatures_use ON mandate_signatures (expired_at, revoked_at, last_collected_at, signed_at);

-- The signed PDF, written once at signature and never changed.
CREATE TABLE mandate_documents (
    mandate_id TEXT PRIMARY KEY NOT NULL REFERENCES mandates (id),
    pdf        BYTEA NOT NULL,
    sha256     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE sepa_collections (
    id             TEXT PRIMARY KEY NOT NULL,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    mandate_id     TEXT NOT NULL REFERENCES mandates (id),
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    end_to_end_id  TEXT NOT NULL UNIQUE,
    -- FRST, RCUR, OOFF
    sequence_type  TEXT NOT NULL,
    amount         BIGINT NOT NULL,
    currency       TEXT NOT NULL,
    due_date       DATE NOT NULL,
    -- scheduled, presented, paid, rejected, cancelled
    status         TEXT NOT NULL,
    prenotified_at TIMESTAMP,
    presented_at   TIMESTAMP,
    settled_at     TIMESTAMP,
    reject_reason  TEXT,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);
CREATE INDEX sepa_collections_due ON sepa_collections (status, due_date);
CREATE INDEX sepa_collections_org_date ON sepa_collections (org_id, due_date, sequence_type, id);
CREATE INDEX sepa_collections_mandate ON sepa_collections (mandate_id, due_date);

-- Files of outbox e-mails (the signed mandate attached to its confirmation).
CREATE TABLE outbox_attachments (
    id           TEXT PRIMARY KEY NOT NULL,
    outbox_id    TEXT NOT NULL REFERENCES outbox (id),
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content      BYTEA NOT NULL
);
CREATE INDEX outbox_attachments_outbox ON outbox_attachments (outbox_id);
