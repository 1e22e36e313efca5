ALTER TABLE portal_settings DROP COLUMN billing_contact_email;
ALTER TABLE portal_settings DROP COLUMN autopay_checkbox_default;
ALTER TABLE portal_settings DROP COLUMN autopay_auto_enable_on_new_method;
ALTER TABLE portal_settings DROP COLUMN autopay_customers_can_change;
DROP TABLE customer_autopay;
DROP TABLE payment_methods;
