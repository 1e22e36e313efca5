-- The order deliveries were queued in, so that the dispatcher sends one
-- endpoint's deliveries due at the same instant (several events of one
-- change, or of one second) in the order their events happened. SQLite
-- numbers rows in insertion order (rowid); the trigger copies that number.
ALTER TABLE webhook_deliveries ADD COLUMN seq BIGINT;
UPDATE webhook_deliveries SET seq = rowid;
CREATE TRIGGER webhook_deliveries_seq AFTER INSERT ON webhook_deliveries
BEGIN
    UPDATE webhook_deliveries SET seq = NEW.rowid WHERE rowid = NEW.rowid;
END;
CREATE INDEX webhook_deliveries_due_order ON webhook_deliveries (status, next_attempt_at, seq);
