DROP INDEX orders_customer;
CREATE INDEX orders_customer ON orders (customer_id, status, purchase_date, id);
