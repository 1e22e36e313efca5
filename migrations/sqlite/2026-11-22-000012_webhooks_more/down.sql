DROP INDEX webhook_deliveries_due_order;
DROP TRIGGER webhook_deliveries_seq;
ALTER TABLE webhook_deliveries DROP COLUMN seq;
