-- The ticket list at scale (issue 15, bench/tickets.py): full-text search instead of an
-- unindexed ILIKE, and fewer indexes for every ticket write to keep up to date.

-- What the search box searches: subject, description and the contact's email (whole, its
-- local part and its domain, so "alice", "alice@example.com" and "example.com" all find it).
-- The 'simple' configuration: no stemming and no stop words, so any language's words are
-- kept as written and a prefix query (heat:*) finds what a substring search found before.
-- One definition, used by the trigger below, the backfill and bench/tickets.py.
CREATE FUNCTION ticket_search_doc(subject text, description text, email text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('simple', coalesce(subject, '')), 'A')
        || to_tsvector('simple', coalesce(description, ''))
        || to_tsvector('simple', coalesce(email || ' ' || replace(email, '@', ' '), ''))
$$;

ALTER TABLE tickets ADD COLUMN search_doc tsvector;

-- Kept by the database itself, so no writer (hand-offs, the API, commands, email intake)
-- can forget it. The contact's email is read as the writer (row-level security applies: a
-- ticket's contact is of its tenant).
CREATE FUNCTION tickets_search_doc() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_doc := ticket_search_doc(
        NEW.subject, NEW.description,
        (SELECT email FROM contacts WHERE id = NEW.contact_id AND tenant_id = NEW.tenant_id));
    RETURN NEW;
END $$;
CREATE TRIGGER tickets_search_doc BEFORE INSERT OR UPDATE OF subject, description, contact_id
    ON tickets FOR EACH ROW EXECUTE FUNCTION tickets_search_doc();

-- A contact whose email changes: its tickets are found by the new one.
CREATE FUNCTION contacts_search_doc() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tickets SET search_doc = ticket_search_doc(subject, description, NEW.email)
    WHERE tenant_id = NEW.tenant_id AND contact_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER contacts_search_doc AFTER UPDATE OF email ON contacts
    FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email)
    EXECUTE FUNCTION contacts_search_doc();

UPDATE tickets t SET search_doc = ticket_search_doc(t.subject, t.description,
    (SELECT email FROM contacts c WHERE c.id = t.contact_id AND c.tenant_id = t.tenant_id));

-- No pending list (fastupdate off): every update of a ticket (the SLA sweep, a bulk close)
-- writes its entries again, and a pending list of thousands of them is read by every search
-- (the list p95 went from 29 to 74 ms after one catch-up sweep with it on).
CREATE INDEX tickets_search ON tickets USING gin (search_doc) WITH (fastupdate = off);

-- (tenant_id, number DESC) repeats the unique (tenant_id, number) index, which Postgres
-- reads backwards as well: one index less for every ticket insert and update.
DROP INDEX tickets_list;

-- ticket_events(tenant_id) -> tenants is implied by (tenant_id, ticket_id) -> tickets, whose
-- tenant_id references tenants (both cascade): one foreign-key check less per event, and the
-- SLA sweep writes events by the hundred thousand after an outage.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'ticket_events'::regclass AND contype = 'f'
          AND confrelid = 'tenants'::regclass
    LOOP
        EXECUTE format('ALTER TABLE ticket_events DROP CONSTRAINT %I', c.conname);
    END LOOP;
END $$;

-- One open ticket per conversation: tickets without a conversation (most tickets made by
-- hand, by the API or by email at scale) need no entry, and each entry is written again by
-- every update of the ticket (the SLA sweep, a bulk close).
CREATE UNIQUE INDEX tickets_one_open_conversation ON tickets (conversation_id)
    WHERE conversation_id IS NOT NULL AND status NOT IN ('resolved', 'closed');
DROP INDEX tickets_one_open;

-- Notifications by email (desk/staff_mail.py): each notification is turned into outbox mail
-- for the staff who chose email for its kind once, in the transaction that stamps it here.
-- Those made before this migration are not mailed (nobody could have chosen email for them).
ALTER TABLE notifications ADD COLUMN emailed_at timestamptz;
UPDATE notifications SET emailed_at = created_at;
CREATE INDEX notifications_to_email ON notifications (created_at) WHERE emailed_at IS NULL;

-- Under row-level security the planner may not evaluate a non-leakproof operator (tsvector
-- @@ tsquery) before the policy's check, so it cannot use the GIN index for the app role and
-- walks every ticket of the tenant instead (70 ms at 100,000). This function looks the words
-- up in the index as the owner and returns the ids of the current tenant's tickets only
-- (app.tenant_id, as the policy reads it; unset: none), so isolation is the policy's own.
CREATE FUNCTION ticket_search_ids(query tsquery) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public ROWS 200 AS $$
    SELECT id FROM tickets
    WHERE tenant_id = deskgraph_current_tenant() AND search_doc @@ query
$$;
REVOKE ALL ON FUNCTION ticket_search_ids(tsquery) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ticket_search_ids(tsquery) TO deskgraph_app;
