-- Notifications to staff (issue 15 item 10; helpdesk/notifications.py): what happened that a
-- person should know (a hand-off, an urgent ticket, an assignment, a mention, an SLA warning or
-- breach), written in the transaction of the ticket event that caused it, for the console
-- (everyone on the desk when user_id is NULL, else that person) and for the tenant's webhooks
-- (one delivery row per endpoint: a transactional outbox, sent by the queue with retries).
CREATE TABLE notifications (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    user_id     uuid,
    ticket_id   uuid REFERENCES tickets (id) ON DELETE CASCADE,
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    payload     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX notifications_recent ON notifications (tenant_id, created_at DESC);

-- Read marks: a desk-wide notification is read by each person separately.
CREATE TABLE notification_reads (
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    notification_id  uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL,
    read_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notification_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- What each person wants, by kind (no row: in the console yes, by email no).
CREATE TABLE notification_preferences (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL,
    kind       text NOT NULL,
    in_app     boolean NOT NULL DEFAULT true,
    email      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, kind),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE webhook_endpoints (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url         text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    -- The HMAC-SHA256 signing secret; the receiver holds the same, so it is kept to sign with.
    secret      text NOT NULL,
    events      text[] NOT NULL DEFAULT '{}',  -- empty: every kind
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    notification_id  uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    kind             text NOT NULL,
    body             text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, notification_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, created_at DESC);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['notifications', 'notification_reads', 'notification_preferences',
                             'webhook_endpoints', 'webhook_deliveries'] LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO deskgraph_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I TO deskgraph_app'
                       ' USING (tenant_id = deskgraph_current_tenant())'
                       ' WITH CHECK (tenant_id = deskgraph_current_tenant())', t);
    END LOOP;
END
$$;
