DROP TABLE notifications;
DROP TABLE portal_customer_overrides;
DROP TABLE portal_logos;
DROP TABLE portal_settings;
