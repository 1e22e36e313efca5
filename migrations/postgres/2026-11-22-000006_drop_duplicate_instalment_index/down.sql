CREATE INDEX instalments_order ON instalments (order_id, number);
