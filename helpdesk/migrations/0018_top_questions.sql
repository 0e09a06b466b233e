-- Top questions (desk/top_questions.py): the period's customer questions grouped by what they
-- ask, each group with its volume and how the desk did on it. A refresh of a tenant's period
-- replaces that period's rows in one transaction.
CREATE TABLE question_clusters (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period_from         date NOT NULL,
    period_to           date NOT NULL,
    tz                  text NOT NULL,
    rank                integer NOT NULL,
    label               text NOT NULL,
    conversations       integer NOT NULL,
    ai_resolved         integer NOT NULL,
    ai_decided          integer NOT NULL,
    needed_person       integer NOT NULL,
    csat_average        real,
    knowledge_gap       boolean NOT NULL,
    examples            jsonb NOT NULL DEFAULT '[]'::jsonb,
    computed_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, period_from, period_to, tz, rank)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON question_clusters TO deskgraph_app;
ALTER TABLE question_clusters ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON question_clusters TO deskgraph_app
    USING (tenant_id = deskgraph_current_tenant())
    WITH CHECK (tenant_id = deskgraph_current_tenant());

-- Each conversation's question embedded once, when a refresh first meets it: the nightly
-- refresh of the last 30 days embeds only the new day's questions (the model is the slow part:
-- about 100 s for 20,000 questions on two cores), then clusters what is stored. The model's
-- key is kept with the vector: another embedding model means embedding again, never mixing.
CREATE TABLE question_vectors (
    conversation_id  uuid PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    model            text NOT NULL,
    question         text NOT NULL,
    vector           real[] NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE, DELETE ON question_vectors TO deskgraph_app;
ALTER TABLE question_vectors ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON question_vectors TO deskgraph_app
    USING (tenant_id = deskgraph_current_tenant())
    WITH CHECK (tenant_id = deskgraph_current_tenant());
