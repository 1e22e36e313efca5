-- The client portal: what the business configures (actions, branding,
-- public slug, logo), what it changes for one customer, and the
-- notifications a customer reads in it.

-- One row per organization that has configured its portal; without a row
-- the portal has every action on, the organization's name and its slug.
-- The sign-in methods are the organization's own (organizations.login_methods).
CREATE TABLE portal_settings (
    org_id            TEXT PRIMARY KEY NOT NULL REFERENCES organizations (id),
    -- The public slug of GET /v1/portal/{slug}.
    slug              TEXT NOT NULL UNIQUE,
    -- A JSON array in display order:
    -- [{"action": "documents", "enabled": true, "labels": {"fr": "..."}}].
    actions           TEXT NOT NULL,
    display_name      TEXT,
    -- #rrggbb
    accent_color      TEXT,
    contact_email     TEXT,
    phone             TEXT,
    address           TEXT,
    website           TEXT,
    -- The organization's test customer (preview sessions), once created.
    test_customer_id  TEXT REFERENCES customers (id),
    updated_at        TIMESTAMP NOT NULL
);

-- The portal's logo (PNG or JPEG, at most 512 KiB), served publicly.
CREATE TABLE portal_logos (
    org_id        TEXT PRIMARY KEY NOT NULL REFERENCES organizations (id),
    content_type  TEXT NOT NULL,
    content       BLOB NOT NULL,
    sha256        TEXT NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

-- One action turned on or off for one customer, over the organization's
-- setting.
CREATE TABLE portal_customer_overrides (
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    customer_id  TEXT NOT NULL REFERENCES customers (id),
    -- bookings, payments, documents or messages.
    action       TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (customer_id, action)
);
CREATE INDEX portal_customer_overrides_org ON portal_customer_overrides (org_id);

-- What the portal tells one customer, in the customer's language.
CREATE TABLE notifications (
    -- ntf_...
    id           TEXT PRIMARY KEY NOT NULL,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    customer_id  TEXT NOT NULL REFERENCES customers (id),
    -- What caused it, e.g. schedule.card_changed, document.shared.
    kind         TEXT NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    -- The API path of the object it is about, e.g. /v1/me/schedules/sch_...
    link         TEXT,
    object_type  TEXT,
    object_id    TEXT,
    -- Caused by a preview session on the test customer.
    test         BOOLEAN NOT NULL,
    read_at      TIMESTAMP,
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX notifications_page ON notifications (customer_id, created_at, id);
CREATE INDEX notifications_org ON notifications (org_id);
