-- The sandbox's list of a merchant's operations reads them by merchant and
-- date (the kind is a filter). With the kind in this index, the planner,
-- on statistics taken while the ledger was small, could prefer it to the
-- primary key (merchant, kind, idempotency_key) for the lookup of one key,
-- reading every operation of the merchant at each charge.
DROP INDEX sandbox_ledger_list;
CREATE INDEX sandbox_ledger_list ON sandbox_ledger (merchant, created_at);
