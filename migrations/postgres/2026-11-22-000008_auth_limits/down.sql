DROP TABLE rate_limit_hits;
DROP TABLE rate_limit_keys;
