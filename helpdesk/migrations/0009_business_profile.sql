-- The business profile of each tenant (issue 14 item 1), versioned: every save is a new row,
-- the newest is current. See helpdesk/profile.py for the fields and their validation.
CREATE TABLE tenant_profiles (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version > 0),
    profile     jsonb NOT NULL,
    saved_by    text NOT NULL,
    saved_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);

GRANT SELECT, INSERT ON tenant_profiles TO deskgraph_app;
ALTER TABLE tenant_profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_profiles TO deskgraph_app
    USING (tenant_id = deskgraph_current_tenant())
    WITH CHECK (tenant_id = deskgraph_current_tenant());
