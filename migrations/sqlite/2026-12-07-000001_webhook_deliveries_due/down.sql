CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
