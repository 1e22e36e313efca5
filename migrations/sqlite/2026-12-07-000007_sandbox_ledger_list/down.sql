DROP INDEX sandbox_ledger_list;
CREATE INDEX sandbox_ledger_list ON sandbox_ledger (merchant, kind, created_at);
