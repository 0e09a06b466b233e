-- Customers are contacts (issue 14, item 6): organisations, contacts, leads, the per-tenant
-- identity secret, and the links from conversations and tickets to their contact.
-- Data model and rules: docs/contacts.md; code: helpdesk/contacts.py, helpdesk/leads.py,
-- helpdesk/identity.py.

CREATE TABLE organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Lower-case host name (``example.com``), no scheme or path.
    domain      text CHECK (domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
                            AND length(domain) <= 253),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organizations_domain ON organizations (tenant_id, domain)
    WHERE domain IS NOT NULL;
CREATE INDEX organizations_tenant ON organizations (tenant_id, name);

CREATE TABLE contacts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name             text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    -- Normalised by helpdesk.contacts.normalize_email (trimmed, lower-cased): so the unique
    -- index below is case-insensitive without an expression index ON CONFLICT must name.
    email            text CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    -- Normalised by helpdesk.contacts.normalize_phone: digits, with a leading + when the
    -- number was given with its country code.
    phone            text CHECK (phone ~ '^\+?[0-9]{6,15}$'),
    organization_id  uuid REFERENCES organizations (id) ON DELETE SET NULL,
    -- Ids of this person in other systems: {"hubspot": "123", "site": "user-42"}.
    external_ids     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(external_ids) = 'object'),
    notes            text NOT NULL DEFAULT '' CHECK (length(notes) <= 10000),
    -- When the business's site last vouched for this contact (a good identity signature).
    verified_at      timestamptz,
    -- A merged duplicate: kept for audit, pointing at the contact that absorbed it. Never
    -- resolved, listed or edited again; the unique indexes below only count live contacts.
    merged_into      uuid REFERENCES contacts (id),
    merged_at        timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (merged_into IS NULL OR merged_into <> id),
    CHECK ((merged_into IS NULL) = (merged_at IS NULL))
);
-- One live contact per email and per phone in a tenant: what makes a concurrent double
-- resolve create one row (INSERT ... ON CONFLICT DO NOTHING, then read the winner).
CREATE UNIQUE INDEX contacts_email ON contacts (tenant_id, email)
    WHERE email IS NOT NULL AND merged_into IS NULL;
CREATE UNIQUE INDEX contacts_phone ON contacts (tenant_id, phone)
    WHERE phone IS NOT NULL AND merged_into IS NULL;
CREATE INDEX contacts_tenant ON contacts (tenant_id, updated_at DESC) WHERE merged_into IS NULL;
CREATE INDEX contacts_organization ON contacts (organization_id) WHERE organization_id IS NOT NULL;

-- The contact a conversation is with, and whether the business's site vouched for it.
ALTER TABLE conversations
    ADD COLUMN contact_id       uuid REFERENCES contacts (id) ON DELETE SET NULL,
    ADD COLUMN contact_verified boolean NOT NULL DEFAULT false;
CREATE INDEX conversations_contact ON conversations (contact_id) WHERE contact_id IS NOT NULL;

ALTER TABLE tickets ADD COLUMN contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL;
CREATE INDEX tickets_contact ON tickets (contact_id) WHERE contact_id IS NOT NULL;

-- A ticket opened in a conversation that already has its contact starts with it, whoever
-- opens it (the hand-off node, a later channel): the hand-off code need not know contacts.
-- Linking a conversation later updates its tickets in helpdesk.contacts.link_conversation.
CREATE FUNCTION deskgraph_ticket_contact() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.contact_id IS NULL AND NEW.conversation_id IS NOT NULL THEN
        SELECT c.contact_id INTO NEW.contact_id FROM conversations c
        WHERE c.id = NEW.conversation_id AND c.tenant_id = NEW.tenant_id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER tickets_contact_from_conversation BEFORE INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION deskgraph_ticket_contact();

-- A quote request that came with contact details: what sales follows up.
CREATE TABLE leads (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    contact_id       uuid NOT NULL REFERENCES contacts (id),
    -- Kept when retention deletes the conversation: the lead is the business's record.
    conversation_id  uuid REFERENCES conversations (id) ON DELETE SET NULL,
    request          text NOT NULL DEFAULT '' CHECK (length(request) <= 4000),
    status           text NOT NULL DEFAULT 'new'
                     CHECK (status IN ('new', 'contacted', 'won', 'lost')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- One lead per conversation: offering details twice, or concurrently, records one.
CREATE UNIQUE INDEX leads_one_per_conversation ON leads (conversation_id)
    WHERE conversation_id IS NOT NULL;
CREATE INDEX leads_tenant ON leads (tenant_id, status, created_at DESC);
CREATE INDEX leads_contact ON leads (contact_id);

-- The secret a business's own server signs its signed-in customers' identity with (HMAC,
-- helpdesk/identity.py). Kept as it is, not hashed: checking an HMAC needs the key itself.
CREATE TABLE identity_secrets (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    secret      text NOT NULL CHECK (length(secret) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['organizations', 'contacts', 'leads', 'identity_secrets'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO deskgraph_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I TO deskgraph_app'
            ' USING (tenant_id = deskgraph_current_tenant())'
            ' WITH CHECK (tenant_id = deskgraph_current_tenant())',
            t
        );
    END LOOP;
END
$$;
