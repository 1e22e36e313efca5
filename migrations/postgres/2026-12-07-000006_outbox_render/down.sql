ALTER TABLE outbox_attachments DROP COLUMN render;
