DROP INDEX webhook_deliveries_due_order;
ALTER TABLE webhook_deliveries DROP COLUMN seq;
