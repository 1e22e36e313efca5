-- Conversations between a customer and the business ("Contacter
-- l'entreprise"), their messages and the files attached to them.
CREATE TABLE conversations (
    -- cnv_...
    id                 TEXT PRIMARY KEY NOT NULL,
    org_id             TEXT NOT NULL REFERENCES organizations (id),
    customer_id        TEXT NOT NULL REFERENCES customers (id),
    subject            TEXT NOT NULL,
    -- open or closed.
    status             TEXT NOT NULL,
    -- The staff member in charge, if any.
    assigned_staff_id  TEXT REFERENCES staff_users (id),
    created_at         TIMESTAMP NOT NULL,
    last_message_at    TIMESTAMP NOT NULL,
    closed_at          TIMESTAMP
);
CREATE INDEX conversations_customer ON conversations (org_id, customer_id, last_message_at, id);
CREATE INDEX conversations_org ON conversations (org_id, status, last_message_at, id);

CREATE TABLE conversation_messages (
    -- cvm_...
    id               TEXT PRIMARY KEY NOT NULL,
    conversation_id  TEXT NOT NULL REFERENCES conversations (id),
    org_id           TEXT NOT NULL REFERENCES organizations (id),
    -- customer, staff or api_key, and which one.
    author_kind      TEXT NOT NULL,
    author_id        TEXT NOT NULL,
    body             TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    -- When the other side read it (read markers).
    read_at          TIMESTAMP
);
CREATE INDEX conversation_messages_thread ON conversation_messages (conversation_id, created_at, id);

-- A customer's uploaded attachment, attached to one message only.
CREATE TABLE message_attachments (
    document_id  TEXT PRIMARY KEY NOT NULL REFERENCES documents (id),
    message_id   TEXT NOT NULL REFERENCES conversation_messages (id),
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    position     INTEGER NOT NULL
);
CREATE INDEX message_attachments_message ON message_attachments (message_id, position);
