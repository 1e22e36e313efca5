//! Invoices and receipts.
