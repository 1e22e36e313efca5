DROP TABLE outbox_attachments;
DROP TABLE sepa_collections;
DROP TABLE mandate_documents;
DROP TABLE mandate_signatures;
DROP TABLE mandates;
DROP TABLE account_entries;
DROP TABLE accounts;
DROP TABLE creditor_settings;
