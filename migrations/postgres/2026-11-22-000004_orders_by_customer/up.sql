-- A customer's schedule list reads `WHERE org_id = ? AND customer_id = ?
-- ORDER BY id LIMIT n` (as does the organization's order list filtered by
-- customer). The first index, on (customer_id, status, purchase_date, id),
-- neither held org_id nor gave the id order, and without statistics SQLite
-- preferred the organization's unique (org_id, order_number) index, reading
-- every order of the organization. This one selects the customer's orders
-- and returns them in page order.
DROP INDEX orders_customer;
CREATE INDEX orders_customer ON orders (org_id, customer_id, id);
