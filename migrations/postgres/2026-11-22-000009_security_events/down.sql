DROP TABLE contact_changes;
DROP TABLE security_events;
