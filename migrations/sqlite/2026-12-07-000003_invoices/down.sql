DROP TABLE invoice_payments;
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP TABLE invoice_counters;
ALTER TABLE payment_settings DROP COLUMN invoice_partial_payments;
