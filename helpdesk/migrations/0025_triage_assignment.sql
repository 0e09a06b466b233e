-- Triage rules and assignment (issue 15 items 4 and 5). See helpdesk/triage.py,
-- helpdesk/assignment.py and docs/tickets.md.

-- A tenant's triage rules, applied in `position` order. `conditions` and `actions` are the
-- validated JSON of helpdesk/triage.py (the service checks their shape; the table keeps them
-- objects).
CREATE TABLE triage_rules (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    position    integer NOT NULL CHECK (position >= 0),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    enabled     boolean NOT NULL DEFAULT true,
    conditions  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(conditions) = 'object'),
    actions     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(actions) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, position)
);

-- A team's assignment settings and its round-robin cursor (the member assigned last). The row
-- is locked (SELECT ... FOR UPDATE) by every assignment to the team, so concurrent assignments
-- take turns and rotate correctly.
CREATE TABLE team_assignment (
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id        uuid NOT NULL,
    auto_assign    text NOT NULL DEFAULT 'off' CHECK (auto_assign IN (
                       'off', 'round_robin', 'least_loaded')),
    last_user_id   uuid,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, team_id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id) ON DELETE CASCADE
);

-- The AI's suggestion for a new ticket: shown to the agent, applied only by the agent or a
-- rule.
ALTER TABLE tickets
    ADD COLUMN suggested_category     text CHECK (length(suggested_category) BETWEEN 1 AND 100),
    ADD COLUMN suggested_priority     text CHECK (suggested_priority IN (
                                          'low', 'normal', 'high', 'urgent')),
    ADD COLUMN suggestion_confidence  real CHECK (suggestion_confidence BETWEEN 0 AND 1);

-- Open tickets per assignee, for least-loaded assignment.
CREATE INDEX tickets_assignee_load ON tickets (tenant_id, assignee_id)
    WHERE assignee_id IS NOT NULL AND status NOT IN ('resolved', 'closed');

-- New timeline kinds: a triage rule's application, an assignee change, an auto-assignment that
-- found nobody online. The kinds allowed so far are read from the existing check (whatever the
-- migrations before this one added) and kept.
DO $$
DECLARE
    c record;
    kinds text[] := ARRAY['triage', 'assigned', 'assignment_skipped'];
BEGIN
    FOR c IN
        SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
        WHERE conrelid = 'ticket_events'::regclass AND contype = 'c'
          AND pg_get_constraintdef(oid) LIKE '%kind%'
    LOOP
        -- Each quoted value: a kind ('created'::text), or a whole array literal
        -- ('{created,status}'::text[], as these migrations write it).
        kinds := kinds || ARRAY(
            SELECT k FROM regexp_matches(c.def, '''([^'']+)''', 'g') AS m,
                   unnest(CASE WHEN left(m[1], 1) = '{' THEN m[1]::text[]
                               ELSE ARRAY[m[1]] END) AS k
        );
        EXECUTE format('ALTER TABLE ticket_events DROP CONSTRAINT %I', c.conname);
    END LOOP;
    kinds := ARRAY(SELECT DISTINCT k FROM unnest(kinds) AS k ORDER BY k);
    EXECUTE format(
        'ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_kind_check CHECK (kind = ANY (%L::text[]))',
        kinds
    );
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['triage_rules', 'team_assignment']
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
