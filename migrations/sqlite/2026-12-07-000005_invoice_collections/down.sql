DROP INDEX sepa_collections_invoice_payment;
ALTER TABLE sepa_collections DROP COLUMN invoice_payment_id;
ALTER TABLE sepa_collections DROP COLUMN invoice_id;
