-- `instalments_order` (order_id, number) repeated the index that the table's
-- UNIQUE (order_id, number) constraint already creates: the same lookups,
-- the same order, and a second B-tree to update on every instalment written
-- (debit runs, cancellations, regularizations). Reads now use the unique one.
DROP INDEX instalments_order;
