-- The email channel's plumbing (issue 16 items 1-4 and the outbox of item 6): mailboxes with
-- encrypted secrets and their IMAP sync position, the threads and messages read from them, the
-- attachments kept for staff, and the outbox of replies going out. Nothing here is wired to
-- tickets or conversations yet: mail_threads carries nullable links for that.

CREATE TABLE mailboxes (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                  text NOT NULL,
    imap_host             text NOT NULL,
    imap_port             integer NOT NULL CHECK (imap_port BETWEEN 1 AND 65535),
    imap_security         text NOT NULL CHECK (imap_security IN ('tls', 'starttls', 'none')),
    imap_user             text NOT NULL,
    -- Fernet tokens (helpdesk/mailboxes.py); the key is in the settings, never in the database.
    imap_password_enc     bytea NOT NULL,
    imap_folder           text NOT NULL DEFAULT 'INBOX',
    smtp_host             text,
    smtp_port             integer CHECK (smtp_port BETWEEN 1 AND 65535),
    smtp_security         text CHECK (smtp_security IN ('tls', 'starttls', 'none')),
    smtp_user             text,
    smtp_password_enc     bytea,
    from_address          text NOT NULL,
    from_name             text,
    poll_interval_s       integer NOT NULL DEFAULT 60 CHECK (poll_interval_s > 0),
    -- Where the IMAP sync stands: the folder's UIDVALIDITY and the last UID committed under it.
    uidvalidity           bigint,
    last_uid              bigint NOT NULL DEFAULT 0,
    last_polled_at        timestamptz,
    last_error            text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE mail_threads (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    mailbox_id       uuid NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    -- The token in our Message-IDs and subjects ("[ref:TOKEN]") that brings replies back here.
    reply_token      text NOT NULL UNIQUE,
    subject          text NOT NULL DEFAULT '',
    -- The customer's address (lower case): a subject token alone joins mail only from them.
    contact_email    text NOT NULL,
    -- Links for the ticket desk and the conversation layer, filled in when they are wired.
    conversation_id  uuid REFERENCES conversations (id) ON DELETE SET NULL,
    ticket_id        uuid REFERENCES tickets (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_threads_contact ON mail_threads (tenant_id, contact_email);

CREATE TABLE mail_messages (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    mailbox_id          uuid NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    thread_id           uuid NOT NULL REFERENCES mail_threads (id) ON DELETE CASCADE,
    -- The Message-ID, angle brackets kept; derived from the content when the mail had none.
    message_id          text NOT NULL,
    message_id_derived  boolean NOT NULL DEFAULT false,
    in_reply_to         text,
    refs                text[] NOT NULL DEFAULT '{}',
    from_address        text NOT NULL DEFAULT '',
    from_name           text NOT NULL DEFAULT '',
    to_addresses        text[] NOT NULL DEFAULT '{}',
    cc_addresses        text[] NOT NULL DEFAULT '{}',
    subject             text NOT NULL DEFAULT '',
    sent_at             timestamptz,
    imap_uidvalidity    bigint,
    imap_uid            bigint,
    size_bytes          bigint NOT NULL,
    -- The message as received, for staff (and a re-parse later).
    raw                 bytea NOT NULL,
    body_text           text NOT NULL DEFAULT '',
    body_html           text,
    -- Quoted history and signature stripped: what the AI and the preview read.
    clean_text          text NOT NULL DEFAULT '',
    -- e.g. oversize, unparseable, charset_fallback, mime_defects.
    flags               text[] NOT NULL DEFAULT '{}',
    needs_person        boolean NOT NULL DEFAULT false,
    -- auto_reply, bounce, list, loop: recorded and never answered.
    auto_kind           text CHECK (auto_kind IN ('auto_reply', 'bounce', 'list', 'loop')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, message_id)
);
CREATE INDEX mail_messages_thread ON mail_messages (thread_id, created_at);

CREATE TABLE mail_attachments (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    message_id       uuid NOT NULL REFERENCES mail_messages (id) ON DELETE CASCADE,
    filename         text NOT NULL DEFAULT '',
    content_type     text NOT NULL,
    size_bytes       bigint NOT NULL,
    -- NULL when refused (too large, a blocked type): the reason says why.
    content          bytea,
    refused_reason   text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_attachments_message ON mail_attachments (message_id);

CREATE TABLE mail_outbox (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    mailbox_id       uuid NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    thread_id        uuid REFERENCES mail_threads (id) ON DELETE SET NULL,
    -- Our Message-ID, fixed when the row is written: every attempt sends the same message.
    message_id       text NOT NULL,
    to_addresses     text[] NOT NULL,
    raw              bytea NOT NULL,
    -- pending -> sending -> sent; a refusal -> pending again (backoff) or failed; a claim that
    -- never came back (a crash after the server may have accepted it) -> uncertain, for a person.
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'uncertain')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claimed_at       timestamptz,
    sent_at          timestamptz,
    last_error       text,
    approved_by      text,
    approved_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, message_id)
);
CREATE INDEX mail_outbox_due ON mail_outbox (state, next_attempt_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON mailboxes, mail_threads, mail_messages,
    mail_attachments, mail_outbox TO deskgraph_app;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['mailboxes', 'mail_threads', 'mail_messages', 'mail_attachments',
                             'mail_outbox'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I TO deskgraph_app'
                       ' USING (tenant_id = deskgraph_current_tenant())'
                       ' WITH CHECK (tenant_id = deskgraph_current_tenant())', t);
    END LOOP;
END $$;
