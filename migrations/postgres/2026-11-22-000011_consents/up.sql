-- Consent invitations: a business orders, for one of its client accounts,
-- a service the client's cardholder consents to alone through an expiring
-- link (SMS code, card, client reference, terms, the bank's strong
-- authentication).

-- What the organization's invitations show and link to.
CREATE TABLE consent_settings (
    org_id          TEXT PRIMARY KEY NOT NULL REFERENCES organizations (id),
    -- The cardholder's activation page; `{token}` is replaced by the link's
    -- token.
    activation_url  TEXT NOT NULL,
    -- The explainer video the invitation links to.
    video_url       TEXT NOT NULL,
    -- The terms the cardholder accepts, by version and address.
    terms_version   TEXT NOT NULL,
    terms_url       TEXT NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);

-- The client accounts the service can be ordered for.
CREATE TABLE consent_accounts (
    -- cac_...
    id                TEXT PRIMARY KEY NOT NULL,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    -- The client company.
    company_name      TEXT NOT NULL,
    -- The card account's client reference, as printed on its statements.
    client_reference  TEXT NOT NULL,
    created_at        TIMESTAMP NOT NULL
);
CREATE INDEX consent_accounts_page ON consent_accounts (org_id, id);
CREATE UNIQUE INDEX consent_accounts_reference ON consent_accounts (org_id, client_reference);

CREATE TABLE consents (
    -- cns_...
    id                  TEXT PRIMARY KEY NOT NULL,
    org_id              TEXT NOT NULL REFERENCES organizations (id),
    account_id          TEXT NOT NULL REFERENCES consent_accounts (id),
    cardholder_name     TEXT NOT NULL,
    -- In clear until the confirmation is sent, then NULL (erased).
    email               TEXT,
    mobile              TEXT,
    -- What stays: the masked forms.
    email_masked        TEXT NOT NULL,
    mobile_masked       TEXT NOT NULL,
    -- fr or en.
    language            TEXT NOT NULL,
    -- invitation_sent, opened, code_sent, code_verified, awaiting_bank,
    -- active, failed, expired or revoked.
    status              TEXT NOT NULL,
    -- Why the last attempt failed (failed only).
    failure_reason      TEXT,
    -- When the current link dies.
    expires_at          TIMESTAMP NOT NULL,
    -- Active: the first day statements are shared from.
    effective_from      DATE,
    -- The gateway's strong-authentication session of the current bank
    -- step. The card shown, the attempts, the confirmation message and the
    -- erasure are steps of the timeline (consent_steps).
    sca_session_id      TEXT,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL
);
CREATE INDEX consents_page ON consents (org_id, id);
CREATE INDEX consents_status_page ON consents (org_id, status, id);

-- Each link sent: only the newest of a consent is alive.
CREATE TABLE consent_invitations (
    -- cin_...
    id           TEXT PRIMARY KEY NOT NULL,
    consent_id   TEXT NOT NULL REFERENCES consents (id),
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    -- SHA-256 of the link's token (256 random bits); the token is never kept.
    token_hash   TEXT NOT NULL,
    -- Where it was sent (NULL once erased) and its masked form.
    email        TEXT,
    email_masked TEXT NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    -- When a newer link (or a revocation) killed it.
    dead_at      TIMESTAMP,
    opened_at    TIMESTAMP,
    created_at   TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX consent_invitations_token ON consent_invitations (token_hash);
CREATE INDEX consent_invitations_consent ON consent_invitations (consent_id);

-- The timeline the office follows.
CREATE TABLE consent_steps (
    -- cst_...
    id          TEXT PRIMARY KEY NOT NULL,
    consent_id  TEXT NOT NULL REFERENCES consents (id),
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    -- The step's rank in the consent's timeline (1, 2, ...).
    seq         INTEGER NOT NULL,
    -- invitation_sent, link_opened, code_sent, code_verified,
    -- card_refused, bank_started (detail: the card, e.g. `visa 4242`),
    -- bank_succeeded, bank_failed (detail: the reason), confirmation_sent,
    -- contacts_erased, contacts_edited, expired, revoked.
    kind        TEXT NOT NULL,
    -- A masked destination, an outcome or a refusal code.
    detail      TEXT,
    -- The outbox message of this step, if any (erased with the contacts).
    message_id  TEXT,
    at          TIMESTAMP NOT NULL
);
CREATE INDEX consent_steps_consent ON consent_steps (consent_id, seq);
CREATE INDEX consent_steps_message ON consent_steps (message_id);

-- The sandbox issuer's strong-authentication sessions (the bank page).
CREATE TABLE sandbox_sca_sessions (
    -- sca_...
    id               TEXT PRIMARY KEY NOT NULL,
    merchant         TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    -- The card token (never the number).
    card_token       TEXT NOT NULL,
    -- NULL while the cardholder has not answered; then succeeded,
    -- online_payments_disabled, card_blocked, card_not_activated,
    -- wrong_data or technical_error.
    outcome          TEXT,
    created_at       TIMESTAMP NOT NULL,
    decided_at       TIMESTAMP
);
CREATE UNIQUE INDEX sandbox_sca_sessions_key ON sandbox_sca_sessions (merchant, idempotency_key);
