-- A file attached to an e-mail that is made when the e-mail is sent (an
-- invoice receipt): what makes it, as JSON; its content is empty until then.
ALTER TABLE outbox_attachments ADD COLUMN render TEXT;
