-- Core schema: tenants, keys, conversations, messages, conversation events, tickets, KB articles.
-- Every row carries tenant_id; every query filters by it.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    policy      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('widget', 'agent', 'admin')),
    name            text NOT NULL DEFAULT '',
    prefix          text NOT NULL,
    key_hash        text NOT NULL UNIQUE,
    allowed_origins text[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE conversations (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel         text NOT NULL DEFAULT 'web' CHECK (channel IN ('web', 'email', 'api')),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'waiting_human', 'closed')),
    escalation      jsonb,
    owner_agent     text,
    customer        jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_event_seq  bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_queue ON conversations (tenant_id, status, updated_at);

CREATE TABLE messages (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender           text NOT NULL CHECK (sender IN ('customer', 'ai', 'agent', 'system')),
    text             text NOT NULL,
    intent           text,
    confidence       real,
    citations        jsonb NOT NULL DEFAULT '[]'::jsonb,
    visibility       text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'internal')),
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at);

-- The per-conversation event log: what SSE subscribers replay from Last-Event-ID.
CREATE TABLE conversation_events (
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq              bigint NOT NULL,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    type             text NOT NULL,
    data             jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Code before an interrupt re-runs on resume; the key makes its events idempotent.
    dedupe_key       text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, dedupe_key)
);

CREATE TABLE tickets (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    number           bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id  uuid REFERENCES conversations (id) ON DELETE SET NULL,
    status           text NOT NULL DEFAULT 'new' CHECK (status IN (
                         'new', 'triage', 'waiting_customer', 'waiting_internal', 'in_progress',
                         'pending_release', 'resolved', 'closed')),
    priority         text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    subject          text NOT NULL DEFAULT '',
    reason           text NOT NULL DEFAULT '',
    summary          text NOT NULL DEFAULT '',
    intents          text[] NOT NULL DEFAULT '{}',
    handoff_count    integer NOT NULL DEFAULT 1,
    -- The hand-off that last touched the ticket; a re-run of the same hand-off is a no-op.
    last_handoff_key text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- At most one open ticket per conversation: a second hand-off updates it.
CREATE UNIQUE INDEX tickets_one_open ON tickets (conversation_id)
    WHERE status NOT IN ('resolved', 'closed');
CREATE INDEX tickets_tenant_status ON tickets (tenant_id, status, created_at);

-- Articles are the unit of ingestion; their chunks live in the PGVectorStore table.
CREATE TABLE kb_articles (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source_id     text NOT NULL,
    title         text NOT NULL,
    visibility    text NOT NULL DEFAULT 'external' CHECK (visibility IN ('external', 'internal')),
    tags          text[] NOT NULL DEFAULT '{}',
    body          text NOT NULL,
    content_hash  text NOT NULL,
    review_state  text NOT NULL DEFAULT 'published'
                  CHECK (review_state IN ('draft', 'in_review', 'approved', 'published')),
    helpful       integer NOT NULL DEFAULT 0,
    not_helpful   integer NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, source_id)
);
