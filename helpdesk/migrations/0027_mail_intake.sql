-- Mail into the desk and replies back out (desk/email/intake.py): each stored inbound message
-- is taken in once (a conversation, a ticket, an AI turn), and each reply of an email
-- conversation becomes one outbox mail.
ALTER TABLE mail_messages ADD COLUMN intake_at timestamptz;
-- Mail stored before this migration was never meant for the AI: taken in as it is.
UPDATE mail_messages SET intake_at = created_at;
CREATE INDEX mail_messages_intake ON mail_messages (created_at) WHERE intake_at IS NULL;

ALTER TABLE mail_outbox ADD COLUMN source_message_id uuid REFERENCES messages (id) ON DELETE SET NULL;
CREATE UNIQUE INDEX mail_outbox_one_per_reply ON mail_outbox (tenant_id, source_message_id)
    WHERE source_message_id IS NOT NULL;
