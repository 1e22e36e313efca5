-- Limits that must hold across API nodes: a lock row per limited key
-- (codes and links sent per destination and per client address), and one
-- row per reservation inside the sliding window.

CREATE TABLE rate_limit_keys (
    key        TEXT PRIMARY KEY NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE rate_limit_hits (
    id  TEXT PRIMARY KEY NOT NULL,
    key TEXT NOT NULL,
    at  TIMESTAMP NOT NULL
);
CREATE INDEX rate_limit_hits_key_at ON rate_limit_hits (key, at);
