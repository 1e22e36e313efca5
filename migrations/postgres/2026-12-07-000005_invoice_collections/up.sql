-- Autopay through a SEPA mandate: an invoice's pending payment is paid by
-- a collection of the pain.008 flow. Such a collection does not move the
-- mandate's account balance; its bank answer settles the payment.
ALTER TABLE sepa_collections ADD COLUMN invoice_id TEXT REFERENCES invoices (id);
ALTER TABLE sepa_collections ADD COLUMN invoice_payment_id TEXT REFERENCES invoice_payments (id);
CREATE UNIQUE INDEX sepa_collections_invoice_payment ON sepa_collections (invoice_payment_id)
    WHERE invoice_payment_id IS NOT NULL;
