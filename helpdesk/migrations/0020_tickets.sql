-- Tickets with a real lifecycle (issue 15 items 1-3, 7, 12): tickets that exist with or without a
-- conversation, numbered per tenant (T-1, T-2...), with the help-desk fields; resolutions; CSAT
-- once per resolution (on the existing feedback table); internal notes; a per-ticket event log
-- for the timeline. The lifecycle itself (which moves are legal) is the one table in
-- helpdesk/tickets.py; see docs/tickets.md.

-- Per-tenant numbers. A BEFORE INSERT trigger takes the next number from the tenant's counter
-- row; the row lock of the upsert serialises concurrent inserts of one tenant, so two tickets
-- never share a number (a rolled-back insert leaves a gap, which is fine).
CREATE TABLE ticket_counters (
    tenant_id    uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    last_number  bigint NOT NULL
);

ALTER TABLE tickets ALTER COLUMN number DROP IDENTITY IF EXISTS;
-- Existing tickets are renumbered 1..n per tenant, in the order they were opened.
UPDATE tickets t SET number = r.n
FROM (
    SELECT id, row_number() OVER (PARTITION BY tenant_id ORDER BY created_at, number) AS n
    FROM tickets
) r
WHERE r.id = t.id;
INSERT INTO ticket_counters (tenant_id, last_number)
    SELECT tenant_id, max(number) FROM tickets GROUP BY tenant_id;
ALTER TABLE tickets ALTER COLUMN number SET NOT NULL;
ALTER TABLE tickets ADD CONSTRAINT tickets_number_per_tenant UNIQUE (tenant_id, number);
ALTER TABLE tickets ADD CONSTRAINT tickets_tenant_id_id UNIQUE (tenant_id, id);

CREATE FUNCTION deskgraph_ticket_number() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO ticket_counters (tenant_id, last_number) VALUES (NEW.tenant_id, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET last_number = ticket_counters.last_number + 1
    RETURNING last_number INTO NEW.number;
    RETURN NEW;
END
$$;
CREATE TRIGGER tickets_number BEFORE INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION deskgraph_ticket_number();

ALTER TABLE tickets
    ADD COLUMN description       text NOT NULL DEFAULT '' CHECK (length(description) <= 20000),
    ADD COLUMN impact            text NOT NULL DEFAULT 'none' CHECK (impact IN (
                                     'none', 'single_user', 'several_users', 'all_users',
                                     'site_down')),
    ADD COLUMN channel           text NOT NULL DEFAULT 'agent' CHECK (channel IN (
                                     'web', 'email', 'api', 'phone', 'agent')),
    ADD COLUMN category          text CHECK (length(category) BETWEEN 1 AND 100),
    ADD COLUMN sub_category      text CHECK (length(sub_category) BETWEEN 1 AND 100),
    ADD COLUMN tags              text[] NOT NULL DEFAULT '{}',
    ADD COLUMN custom_fields     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom_fields) = 'object'),
    ADD COLUMN organization_id   uuid REFERENCES organizations (id) ON DELETE SET NULL,
    ADD COLUMN assignee_id       uuid,
    ADD COLUMN team_id           uuid,
    ADD COLUMN first_response_at timestamptz,
    ADD COLUMN ai_first_response boolean,
    ADD COLUMN ai_confidence     real CHECK (ai_confidence BETWEEN 0 AND 1),
    ADD COLUMN resolved_at       timestamptz,
    ADD COLUMN closed_at         timestamptz,
    ADD COLUMN reopen_count      integer NOT NULL DEFAULT 0,
    ADD COLUMN parent_ticket_id  uuid REFERENCES tickets (id) ON DELETE SET NULL,
    ADD COLUMN created_by        text NOT NULL DEFAULT 'ai',
    -- Assignee and team of the same tenant, by the composite keys of 0010_staff.
    ADD CONSTRAINT tickets_assignee FOREIGN KEY (tenant_id, assignee_id)
        REFERENCES users (tenant_id, id) ON DELETE SET NULL (assignee_id),
    ADD CONSTRAINT tickets_team FOREIGN KEY (tenant_id, team_id)
        REFERENCES teams (tenant_id, id) ON DELETE SET NULL (team_id),
    ADD CONSTRAINT tickets_not_own_parent CHECK (parent_ticket_id <> id);

-- Hand-off tickets made before this migration: channel of their conversation, and the stamps
-- their status implies (the statuses themselves were already the lifecycle's).
UPDATE tickets t SET channel = c.channel
FROM conversations c WHERE c.id = t.conversation_id AND c.channel IN ('web', 'email', 'api');
UPDATE tickets SET resolved_at = updated_at WHERE status IN ('resolved', 'closed');
UPDATE tickets SET closed_at = updated_at WHERE status = 'closed';
ALTER TABLE tickets ALTER COLUMN channel SET DEFAULT 'agent';

CREATE INDEX tickets_list ON tickets (tenant_id, number DESC);
CREATE INDEX tickets_assignee_open ON tickets (tenant_id, assignee_id) WHERE assignee_id IS NOT NULL;
CREATE INDEX tickets_team_open ON tickets (tenant_id, team_id) WHERE team_id IS NOT NULL;
CREATE INDEX tickets_resolved ON tickets (resolved_at) WHERE status = 'resolved';
CREATE INDEX tickets_conversation ON tickets (conversation_id, number DESC)
    WHERE conversation_id IS NOT NULL;

-- How a ticket was resolved. A ticket may be resolved several times (reopened in between):
-- each resolve is a row, tickets.resolution_id points at the current one.
CREATE TABLE resolutions (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    ticket_id            uuid NOT NULL,
    type                 text NOT NULL CHECK (type IN (
                             'answered_question', 'workaround', 'permanent_fix', 'duplicate',
                             'invalid')),
    summary              text NOT NULL CHECK (length(summary) BETWEEN 1 AND 5000),
    steps                text NOT NULL DEFAULT '' CHECK (length(steps) <= 20000),
    root_cause           text NOT NULL DEFAULT '' CHECK (length(root_cause) <= 5000),
    article_id           uuid REFERENCES kb_articles (id) ON DELETE SET NULL,
    -- The references used: [{"kind": "article" | "url", "ref": "...", "title": "..."}].
    refs                 jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(refs) = 'array'),
    resolved_by          text NOT NULL CHECK (resolved_by IN ('user', 'ai')),
    resolved_by_user_id  uuid,
    resolved_by_name     text NOT NULL DEFAULT '',
    ai_generated         boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, resolved_by_user_id) REFERENCES users (tenant_id, id)
        ON DELETE SET NULL (resolved_by_user_id)
);
CREATE INDEX resolutions_ticket ON resolutions (tenant_id, ticket_id, created_at);
ALTER TABLE tickets ADD COLUMN resolution_id uuid;
ALTER TABLE tickets ADD CONSTRAINT tickets_resolution FOREIGN KEY (tenant_id, resolution_id)
    REFERENCES resolutions (tenant_id, id) ON DELETE SET NULL (resolution_id);

-- CSAT once per resolution, on the one feedback table (metrics read it). Rows of the older
-- per-conversation CSAT (POST .../feedback) have no resolution and stay one per conversation.
ALTER TABLE feedback ADD COLUMN resolution_id uuid REFERENCES resolutions (id) ON DELETE CASCADE;
DROP INDEX feedback_one_csat;
CREATE UNIQUE INDEX feedback_one_csat ON feedback (conversation_id)
    WHERE kind = 'csat' AND resolution_id IS NULL;
CREATE UNIQUE INDEX feedback_one_csat_per_resolution ON feedback (resolution_id)
    WHERE kind = 'csat' AND resolution_id IS NOT NULL;

-- Internal notes: staff only. No customer route, no prompt and no graph state reads this table.
CREATE TABLE internal_notes (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    ticket_id        uuid,
    conversation_id  uuid REFERENCES conversations (id) ON DELETE CASCADE,
    body             text NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    author_user_id   uuid,
    author_name      text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (ticket_id IS NOT NULL OR conversation_id IS NOT NULL),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, author_user_id) REFERENCES users (tenant_id, id)
        ON DELETE SET NULL (author_user_id)
);
CREATE INDEX internal_notes_ticket ON internal_notes (tenant_id, ticket_id, created_at)
    WHERE ticket_id IS NOT NULL;
CREATE INDEX internal_notes_conversation ON internal_notes (tenant_id, conversation_id, created_at)
    WHERE conversation_id IS NOT NULL;

-- What happened to a ticket, for its timeline: created, status moves, field changes, notes,
-- resolutions, reopenings, CSAT. Who did it is named as on the audit log.
CREATE TABLE ticket_events (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    ticket_id      uuid NOT NULL,
    kind           text NOT NULL CHECK (kind IN (
                       'created', 'status', 'updated', 'note', 'resolved', 'reopened',
                       'follow_up', 'csat', 'first_response')),
    actor_name     text NOT NULL DEFAULT '',
    actor_user_id  uuid,
    detail         jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ticket_events_ticket ON ticket_events (tenant_id, ticket_id, id);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ticket_counters', 'resolutions', 'internal_notes', 'ticket_events']
    LOOP
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
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO deskgraph_app;
