DROP TABLE bookings;
DROP TABLE booking_exceptions;
DROP TABLE booking_windows;
DROP TABLE booking_service_providers;
DROP TABLE booking_services;
DROP TABLE booking_providers;
DROP TABLE booking_settings;
-- btree_gist stays: other objects of the database may use it.
