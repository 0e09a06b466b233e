-- Staff are users: accounts with roles, console sessions, sign-in throttling, one-time password
-- reset links, an append-only audit log, teams and presence. Every table carries tenant_id and
-- sits under the tenant_isolation policy of 0003_api.

CREATE TABLE users (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- Stored lower-cased: unique per tenant, case-insensitively (the CHECK keeps it so).
    email            text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role             text NOT NULL CHECK (role IN ('admin', 'manager', 'agent')),
    active           boolean NOT NULL DEFAULT true,
    -- argon2id in PHC string form; NULL: no password set yet (sign-in impossible).
    password_hash    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at  timestamptz,
    UNIQUE (tenant_id, email),
    UNIQUE (tenant_id, id)
);

-- Console sessions: only the SHA-256 of the opaque token is stored (like api_keys).
CREATE TABLE user_sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL,
    token_hash    text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_sessions_user ON user_sessions (tenant_id, user_id, last_seen_at);

-- Failed sign-ins, per (tenant, email) and per (tenant, client address), in Postgres so every
-- API process sees the same counts (helpdesk/throttle.py has the rule).
CREATE TABLE sign_in_throttle (
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scope            text NOT NULL CHECK (scope IN ('email', 'address')),
    subject          text NOT NULL CHECK (length(subject) BETWEEN 1 AND 300),
    failures         integer NOT NULL DEFAULT 0,
    last_failure_at  timestamptz NOT NULL DEFAULT now(),
    locked_until     timestamptz,
    PRIMARY KEY (tenant_id, scope, subject)
);

-- One-time password reset links: the token's SHA-256, an expiry, and when it was used.
CREATE TABLE password_resets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    token_hash  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Append-only: the app role may only insert and read; a trigger refuses every UPDATE (the
-- table owner's DELETE stays possible, so deleting a tenant still cascades).
CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor_user_id  uuid,
    actor_key_id   uuid,
    actor_name     text NOT NULL CHECK (length(actor_name) <= 300),
    action         text NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
    target_type    text NOT NULL CHECK (length(target_type) BETWEEN 1 AND 60),
    target_id      text,
    detail         jsonb NOT NULL DEFAULT '{}'::jsonb,
    at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at DESC, id DESC);

CREATE FUNCTION deskgraph_audit_is_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION deskgraph_audit_is_append_only();

CREATE TABLE teams (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX teams_name ON teams (tenant_id, lower(name));

CREATE TABLE team_members (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id    uuid NOT NULL,
    user_id    uuid NOT NULL,
    PRIMARY KEY (team_id, user_id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX team_members_user ON team_members (tenant_id, user_id);

-- What the console set; "away" for a quiet session is computed from user_sessions.last_seen_at
-- when read (helpdesk/teams.py), no background job.
CREATE TABLE user_presence (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    status      text NOT NULL CHECK (status IN ('online', 'away', 'offline')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Who owns a conversation, by credential ("user:<id>" or "key:<id>"), beside the name shown
-- (owner_agent): two credentials with one name are still two agents.
ALTER TABLE conversations ADD COLUMN owner_id text CHECK (length(owner_id) <= 100);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'users', 'user_sessions', 'sign_in_throttle', 'password_resets', 'teams',
        'team_members', 'user_presence'
    ] LOOP
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

GRANT SELECT, INSERT ON audit_log TO deskgraph_app;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log TO deskgraph_app
    USING (tenant_id = deskgraph_current_tenant())
    WITH CHECK (tenant_id = deskgraph_current_tenant());
-- The audit log's identity sequence, for inserts made inside a tenant scope.
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO deskgraph_app;
