-- (status, next_attempt_at) is a prefix of webhook_deliveries_due_order,
-- which serves every query it served. With both, a planner without
-- statistics on a fresh backlog could take this one and sort every due
-- delivery to claim a batch of them.
DROP INDEX webhook_deliveries_due;
