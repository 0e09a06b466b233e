-- The HTTP API: conversation leases and queue timing, idempotency keys, feedback, and
-- row-level security for the tenant tables.

-- One turn (or agent action) at a time per conversation, across processes: a lease rather
-- than a held lock, so no pooled connection is pinned while a turn runs, and a crashed
-- process only blocks its conversation until the lease expires.
ALTER TABLE conversations
    ADD COLUMN lease_token   uuid,
    ADD COLUMN lease_until   timestamptz,
    -- When the conversation last started waiting on a person (the queue's order).
    ADD COLUMN waiting_since timestamptz;
CREATE INDEX conversations_waiting ON conversations (tenant_id, waiting_since)
    WHERE status = 'waiting_human';

-- A retried POST with the same Idempotency-Key replays the first result instead of running a
-- second turn. Keys are scoped to the conversation the customer token names.
CREATE TABLE idempotency_keys (
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    key              text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    request_hash     text NOT NULL,
    status           text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
    response         jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    PRIMARY KEY (conversation_id, key)
);

-- Thumbs up/down per message (one vote per message, changeable) and one CSAT per conversation.
CREATE TABLE feedback (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id       uuid REFERENCES messages (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('rating', 'csat')),
    rating           text CHECK (rating IN ('up', 'down')),
    csat             smallint CHECK (csat BETWEEN 1 AND 5),
    comment          text NOT NULL DEFAULT '' CHECK (length(comment) <= 2000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (kind = 'rating' AND rating IS NOT NULL AND message_id IS NOT NULL AND csat IS NULL)
        OR (kind = 'csat' AND csat IS NOT NULL AND rating IS NULL AND message_id IS NULL)
    )
);
CREATE UNIQUE INDEX feedback_one_rating ON feedback (message_id) WHERE kind = 'rating';
CREATE UNIQUE INDEX feedback_one_csat ON feedback (conversation_id) WHERE kind = 'csat';
CREATE INDEX feedback_tenant ON feedback (tenant_id, created_at);

-- Row-level security. Tenant-scoped API work runs inside a transaction as the non-superuser
-- role deskgraph_app with app.tenant_id set (helpdesk.tenancy.tenant_scope); the policies
-- below then hide every other tenant's rows even from a query that forgot its tenant filter.
-- Superusers and table owners bypass RLS (no FORCE): migrations, the graph's own writes and
-- key look-ups (which must find the tenant first) run as the owner and filter explicitly.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'deskgraph_app') THEN
        BEGIN
            CREATE ROLE deskgraph_app NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database on this server
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'deskgraph needs the role deskgraph_app for row-level security'
                    USING HINT = format('As an administrator: CREATE ROLE deskgraph_app NOLOGIN;'
                                        ' GRANT deskgraph_app TO %I;', current_user);
        END;
    END IF;
    -- A non-superuser owner must be a member to SET ROLE to it.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT deskgraph_app TO %I', current_user);
    END IF;
END
$$;

CREATE FUNCTION deskgraph_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

GRANT USAGE ON SCHEMA public TO deskgraph_app;
GRANT SELECT ON tenants TO deskgraph_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    api_keys, conversations, messages, conversation_events, tickets, kb_articles,
    idempotency_keys, feedback
    TO deskgraph_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO deskgraph_app;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants TO deskgraph_app
    USING (id = deskgraph_current_tenant());

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'api_keys', 'conversations', 'messages', 'conversation_events', 'tickets',
        'kb_articles', 'idempotency_keys', 'feedback', 'ingestion_jobs'
    ] LOOP
        -- ingestion_jobs comes with the KB jobs migration; protect it when it is there.
        CONTINUE WHEN to_regclass(t) IS NULL;
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
