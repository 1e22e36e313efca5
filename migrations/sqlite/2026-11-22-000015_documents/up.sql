-- Files staff share with one customer, and files customers attach to their
-- messages. The bytes live in the blob store (a local directory or an
-- S3-compatible bucket); the database keeps only what describes them and
-- their SHA-256, checked on every download.
CREATE TABLE documents (
    -- doc_...
    id               TEXT PRIMARY KEY NOT NULL,
    org_id           TEXT NOT NULL REFERENCES organizations (id),
    customer_id      TEXT NOT NULL REFERENCES customers (id),
    -- shared (by staff, listed to the customer) or attachment (of a
    -- customer's message).
    kind             TEXT NOT NULL,
    title            TEXT NOT NULL,
    -- The file name offered for download, already sanitized.
    filename         TEXT NOT NULL,
    -- From the magic bytes: application/pdf, image/png, image/jpeg or
    -- text/plain.
    content_type     TEXT NOT NULL,
    size_bytes       BIGINT NOT NULL,
    -- SHA-256 of the bytes, lower-case hex.
    sha256           TEXT NOT NULL,
    -- The object's key in the blob store (under its prefix).
    blob_key         TEXT NOT NULL,
    -- Who put it there: staff, api_key or customer, and which one.
    created_by_kind  TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    -- When the customer first downloaded it (NULL: still new).
    first_opened_at  TIMESTAMP,
    -- Withdrawn by staff: the customer no longer sees it; the row stays.
    withdrawn_at     TIMESTAMP,
    withdrawn_by     TEXT
);
CREATE INDEX documents_customer ON documents (org_id, customer_id, kind, created_at, id);
CREATE INDEX documents_org ON documents (org_id, kind, created_at, id);
