-- SLA policies (issue 15 item 6): first-response and resolution targets per priority (and
-- optionally category) in business minutes, counted in the business's opening hours, paused
-- while the ticket waits on the customer; warning before breach and breach as ticket events,
-- each recorded once. The arithmetic and the rules: helpdesk/sla.py, docs/sla.md.

-- Per tenant: whether SLAs apply at all, and the warning used by rules that set none. No row:
-- the defaults of helpdesk/sla.py (DEFAULT_POLICIES) apply.
CREATE TABLE sla_settings (
    tenant_id     uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    enabled       boolean NOT NULL DEFAULT true,
    warn_percent  smallint CHECK (warn_percent BETWEEN 1 AND 99),
    warn_minutes  integer CHECK (warn_minutes BETWEEN 1 AND 525600),
    updated_by    text NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (warn_percent IS NULL OR warn_minutes IS NULL)
);

-- One rule per (priority, category); category NULL is the priority's rule for every category.
CREATE TABLE sla_policies (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id               uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    priority                text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    category                text CHECK (length(category) BETWEEN 1 AND 100),
    first_response_minutes  integer NOT NULL CHECK (first_response_minutes BETWEEN 1 AND 525600),
    resolution_minutes      integer NOT NULL CHECK (resolution_minutes BETWEEN 1 AND 525600),
    warn_percent            smallint CHECK (warn_percent BETWEEN 1 AND 99),
    warn_minutes            integer CHECK (warn_minutes BETWEEN 1 AND 525600),
    created_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (warn_percent IS NULL OR warn_minutes IS NULL)
);
CREATE UNIQUE INDEX sla_policies_rule ON sla_policies (tenant_id, priority, COALESCE(category, ''));

-- Per ticket: the rule that applied (a snapshot, so editing the policy later does not move the
-- targets of tickets already open), when its clock started, the business seconds it was
-- stopped (waiting on the customer, or resolved before a reopen), since when it is stopped
-- now, the due and warning instants, which events were recorded, and the next instant the
-- sweep has something to record (NULL: nothing pending, or the clock is stopped).
ALTER TABLE tickets
    ADD COLUMN sla_policy              jsonb,
    ADD COLUMN sla_started_at          timestamptz,
    ADD COLUMN sla_paused_at           timestamptz,
    ADD COLUMN sla_paused_s            integer NOT NULL DEFAULT 0,
    ADD COLUMN first_response_due_at   timestamptz,
    ADD COLUMN first_response_warn_at  timestamptz,
    ADD COLUMN resolution_due_at       timestamptz,
    ADD COLUMN resolution_warn_at      timestamptz,
    ADD COLUMN first_response_warned   boolean NOT NULL DEFAULT false,
    ADD COLUMN first_response_breached boolean NOT NULL DEFAULT false,
    ADD COLUMN resolution_warned       boolean NOT NULL DEFAULT false,
    ADD COLUMN resolution_breached     boolean NOT NULL DEFAULT false,
    ADD COLUMN sla_next_check_at       timestamptz;

-- The sweep reads only the tickets whose next check has come: one range scan.
CREATE INDEX tickets_sla_next_check ON tickets (sla_next_check_at)
    WHERE sla_next_check_at IS NOT NULL;
-- The list's sla=warning|breached filter and the compliance query.
CREATE INDEX tickets_sla_due ON tickets (tenant_id, resolution_due_at)
    WHERE sla_policy IS NOT NULL AND status NOT IN ('resolved', 'closed');
CREATE INDEX tickets_sla_breached ON tickets (tenant_id, number DESC)
    WHERE first_response_breached OR resolution_breached;
-- sla=warning: the open tickets with a running clock and nothing breached yet, newest first.
CREATE INDEX tickets_sla_running ON tickets (tenant_id, number DESC)
    WHERE sla_policy IS NOT NULL AND sla_paused_at IS NULL
      AND status NOT IN ('resolved', 'closed')
      AND NOT first_response_breached AND NOT resolution_breached;
CREATE INDEX tickets_created ON tickets (tenant_id, created_at);

-- SLA events on the timeline, each once: a dedupe key (sla.breach:first_response, ...) unique
-- per ticket, so two sweeps at once record one.
ALTER TABLE ticket_events ADD COLUMN dedupe_key text;
CREATE UNIQUE INDEX ticket_events_dedupe ON ticket_events (ticket_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL;
-- The kinds are added to whatever the check allows now, as 0025 does: a database that met
-- 0025 first (both were written at once) keeps its triage kinds.
DO $$
DECLARE
    c record;
    kinds text[] := ARRAY['sla.warning', 'sla.breach'];
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
        'ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_kind_check'
        ' CHECK (kind = ANY (%L::text[]))',
        kinds
    );
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sla_settings', 'sla_policies']
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
