-- The exclusion constraint below compares provider_id (text) with '=' in a
-- GiST index, which needs btree_gist (a trusted extension: any role with
-- CREATE on the database may install it).
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Bookings: the services a business offers, who delivers them (staff
-- members or resources), when they are open, and the appointments its
-- customers hold. Statuses and kinds are plain text; their rules are the
-- domain's (guichet_domain::bookings).

-- One row per organization that has configured online booking; without a
-- row the domain's defaults apply.
CREATE TABLE booking_settings (
    org_id                  TEXT PRIMARY KEY NOT NULL REFERENCES organizations (id),
    online_booking          BOOLEAN NOT NULL,
    -- automatic or manual (held as pending until staff approve).
    confirmation            TEXT NOT NULL,
    -- How far ahead customers may book.
    horizon_days            INTEGER NOT NULL,
    -- The minimum notice before a customer's booking starts.
    min_notice_minutes      INTEGER NOT NULL,
    cancel_allowed          BOOLEAN NOT NULL,
    cancel_until_hours      INTEGER NOT NULL,
    reschedule_allowed      BOOLEAN NOT NULL,
    reschedule_until_hours  INTEGER NOT NULL,
    -- Pending requests one customer may hold.
    max_pending             INTEGER NOT NULL,
    reminder_hours_before   INTEGER NOT NULL,
    -- IANA name; opening windows are local times in it.
    time_zone               TEXT NOT NULL,
    updated_at              TIMESTAMP NOT NULL
);

-- Who or what delivers services: a staff member or a resource (a room,
-- a machine). Deactivated rather than deleted: bookings name them.
CREATE TABLE booking_providers (
    -- prv_...
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    name        TEXT NOT NULL,
    -- staff or resource.
    kind        TEXT NOT NULL,
    -- The staff account of a staff member, when it has one.
    staff_id    TEXT REFERENCES staff_users (id),
    active      BOOLEAN NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE INDEX booking_providers_page ON booking_providers (org_id, created_at, id);

CREATE TABLE booking_services (
    -- svc_...
    id                    TEXT PRIMARY KEY NOT NULL,
    org_id                TEXT NOT NULL REFERENCES organizations (id),
    -- A JSON object, language -> name: {"fr": "Coupe", "en": "Haircut"}.
    names                 TEXT NOT NULL,
    duration_minutes      INTEGER NOT NULL,
    -- Time the provider stays busy after each booking.
    buffer_after_minutes  INTEGER NOT NULL,
    -- Minor units; no price when NULL.
    price_amount          BIGINT,
    price_currency        TEXT,
    active                BOOLEAN NOT NULL,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL
);
CREATE INDEX booking_services_page ON booking_services (org_id, created_at, id);

-- Which providers can deliver which service.
CREATE TABLE booking_service_providers (
    service_id   TEXT NOT NULL REFERENCES booking_services (id),
    provider_id  TEXT NOT NULL REFERENCES booking_providers (id),
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    PRIMARY KEY (service_id, provider_id)
);
CREATE INDEX booking_service_providers_provider ON booking_service_providers (provider_id);

-- Weekly opening windows, in local time of the organization's zone.
CREATE TABLE booking_windows (
    -- bwn_...
    id            TEXT PRIMARY KEY NOT NULL,
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    provider_id   TEXT NOT NULL REFERENCES booking_providers (id),
    -- 1 = Monday .. 7 = Sunday.
    weekday       INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    -- Minutes since local midnight, end exclusive (1440 = midnight).
    start_minute  INTEGER NOT NULL,
    end_minute    INTEGER NOT NULL,
    CHECK (start_minute < end_minute)
);
CREATE INDEX booking_windows_provider ON booking_windows (provider_id);

-- One day's exception to the weekly windows: closed (all day, or the
-- minutes given) or an extra opening.
CREATE TABLE booking_exceptions (
    -- bex_...
    id            TEXT PRIMARY KEY NOT NULL,
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    provider_id   TEXT NOT NULL REFERENCES booking_providers (id),
    -- The local day.
    day           DATE NOT NULL,
    -- closed or open.
    kind          TEXT NOT NULL,
    start_minute  INTEGER,
    end_minute    INTEGER,
    note          TEXT,
    created_at    TIMESTAMP NOT NULL
);
CREATE INDEX booking_exceptions_provider ON booking_exceptions (provider_id, day);

CREATE TABLE bookings (
    -- bkg_...
    id                 TEXT PRIMARY KEY NOT NULL,
    org_id             TEXT NOT NULL REFERENCES organizations (id),
    customer_id        TEXT NOT NULL REFERENCES customers (id),
    service_id         TEXT NOT NULL REFERENCES booking_services (id),
    provider_id        TEXT NOT NULL REFERENCES booking_providers (id),
    start_at           TIMESTAMP NOT NULL,
    end_at             TIMESTAMP NOT NULL,
    -- end_at plus the service's buffer: the provider is busy in
    -- [start_at, busy_until).
    busy_until         TIMESTAMP NOT NULL,
    -- pending, confirmed, declined, cancelled, completed or no_show;
    -- pending and confirmed hold the slot.
    status             TEXT NOT NULL,
    -- The customer's note.
    note               TEXT,
    -- customer, staff or api_key, and which one.
    created_by_kind    TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    -- Why it was declined or cancelled, and by whom (customer, staff,
    -- api_key).
    reason             TEXT,
    cancelled_by_kind  TEXT,
    -- The iCalendar SEQUENCE: bumped at each reschedule and cancellation.
    sequence           INTEGER NOT NULL DEFAULT 0,
    -- Made in a preview session on the test customer.
    test               BOOLEAN NOT NULL,
    reminder_due_at    TIMESTAMP,
    reminder_sent_at   TIMESTAMP,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    CHECK (start_at < end_at AND end_at <= busy_until)
);
CREATE INDEX bookings_customer ON bookings (org_id, customer_id, start_at, id);
CREATE INDEX bookings_org ON bookings (org_id, start_at, id);
CREATE INDEX bookings_provider ON bookings (provider_id, start_at);
-- What a provider holds from an instant on (busy_until > from): the busy
-- ranges of the slot search and the overlap check read only bookings
-- that end after the range they look at, not the provider's history.
CREATE INDEX bookings_provider_busy ON bookings (provider_id, busy_until);
CREATE INDEX bookings_reminder_due ON bookings (reminder_due_at)
    WHERE reminder_sent_at IS NULL AND status = 'confirmed';

-- No double booking: a provider's pending and confirmed bookings never
-- overlap; [start_at, busy_until) ranges, so touching ones do not. Two
-- nodes inserting the same slot at once: the second waits for the first
-- to commit, then fails with 23P01, which the store maps to SlotTaken.
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
    EXCLUDE USING gist (provider_id WITH =, tsrange(start_at, busy_until) WITH &&)
    WHERE (status IN ('pending', 'confirmed'));
