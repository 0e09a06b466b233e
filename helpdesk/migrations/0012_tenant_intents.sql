-- A tenant's own labelled intent examples (issue 14 item 2): added to the shared ones in
-- prompts/intents.csv, or replacing them. One row per tenant; saved_at tells the classifier
-- cache when to train again. See helpdesk/intents.py.
CREATE TABLE tenant_intents (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    mode        text NOT NULL CHECK (mode IN ('add', 'replace')),
    examples    jsonb NOT NULL,
    saved_by    text NOT NULL,
    saved_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_intents TO deskgraph_app;
ALTER TABLE tenant_intents ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_intents TO deskgraph_app
    USING (tenant_id = deskgraph_current_tenant())
    WITH CHECK (tenant_id = deskgraph_current_tenant());
