-- Saved payment methods and autopay (docs/PAYMENTS.md): the cards (gateway
-- tokens, never a number) and signed recurring SEPA mandates a customer
-- keeps for later payments, which one autopay uses, and the business's
-- three autopay settings with the portal settings.

CREATE TABLE payment_methods (
    -- pm_...
    id              TEXT PRIMARY KEY NOT NULL,
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    -- card or sepa_debit.
    kind            TEXT NOT NULL CHECK (kind IN ('card', 'sepa_debit')),
    -- card: the gateway's token and what may be shown of the card.
    card_token      TEXT,
    card_brand      TEXT,
    card_last4      TEXT,
    card_exp_month  INTEGER,
    card_exp_year   INTEGER,
    card_funding    TEXT,
    -- sepa_debit: the signed recurring mandate, its masked IBAN and
    -- reference (UMR) as shown.
    mandate_id      TEXT REFERENCES mandates (id),
    iban_masked     TEXT,
    umr             TEXT,
    is_default      BOOLEAN NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    -- Removed by the customer: kept for history, never shown nor charged.
    removed_at      TIMESTAMP,
    CHECK ((kind = 'card' AND card_token IS NOT NULL AND mandate_id IS NULL)
        OR (kind = 'sepa_debit' AND mandate_id IS NOT NULL AND card_token IS NULL)),
    CHECK (removed_at IS NULL OR NOT is_default)
);
CREATE INDEX payment_methods_customer ON payment_methods (customer_id, created_at);
CREATE INDEX payment_methods_org ON payment_methods (org_id);
-- At most one default per customer, and one live method per card token or
-- mandate.
CREATE UNIQUE INDEX payment_methods_one_default ON payment_methods (customer_id)
    WHERE is_default AND removed_at IS NULL;
CREATE UNIQUE INDEX payment_methods_card_once ON payment_methods (customer_id, card_token)
    WHERE card_token IS NOT NULL AND removed_at IS NULL;
CREATE UNIQUE INDEX payment_methods_mandate_once ON payment_methods (customer_id, mandate_id)
    WHERE mandate_id IS NOT NULL AND removed_at IS NULL;

-- A customer's autopay: on or off, and the method it uses. No row: off.
CREATE TABLE customer_autopay (
    org_id             TEXT NOT NULL REFERENCES organizations (id),
    customer_id        TEXT NOT NULL REFERENCES customers (id),
    enabled            BOOLEAN NOT NULL,
    payment_method_id  TEXT REFERENCES payment_methods (id),
    updated_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, customer_id),
    CHECK (payment_method_id IS NOT NULL OR NOT enabled)
);

-- The business's autopay settings (seed 004), read at each request.
ALTER TABLE portal_settings ADD COLUMN autopay_customers_can_change BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE portal_settings ADD COLUMN autopay_auto_enable_on_new_method BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE portal_settings ADD COLUMN autopay_checkbox_default BOOLEAN NOT NULL DEFAULT FALSE;
-- Who receives the autopay e-mails (else the branding's contact e-mail,
-- else the organization's admins).
ALTER TABLE portal_settings ADD COLUMN billing_contact_email TEXT;
