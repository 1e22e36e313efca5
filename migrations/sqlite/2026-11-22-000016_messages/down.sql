DROP TABLE message_attachments;
DROP TABLE conversation_messages;
DROP TABLE conversations;
