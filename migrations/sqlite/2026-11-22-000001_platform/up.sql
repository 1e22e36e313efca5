-- Organizations: the businesses that run a Guichet portal for their customers.
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY NOT NULL,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    locale     TEXT NOT NULL DEFAULT 'fr',
    created_at TIMESTAMP NOT NULL
);
