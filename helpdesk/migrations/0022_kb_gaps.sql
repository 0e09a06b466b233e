-- Knowledge gaps (issue 17 item 4). A top-questions cluster keeps its member conversations, so
-- "draft an article" can read what people answered them; and every question the knowledge
-- base had nothing good for is logged: a chat answer that declined for want of evidence, and
-- a knowledge-base search that found nothing.
ALTER TABLE question_clusters ADD COLUMN conversation_ids uuid[] NOT NULL DEFAULT '{}';

CREATE TABLE kb_misses (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source           text NOT NULL CHECK (source IN ('chat', 'search')),
    query            text NOT NULL,
    -- The best retrieved chunk's score (the fused hybrid score), NULL when nothing came back.
    top_score        real,
    conversation_id  uuid REFERENCES conversations (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kb_misses_period ON kb_misses (tenant_id, created_at);

GRANT SELECT, INSERT, DELETE ON kb_misses TO deskgraph_app;
ALTER TABLE kb_misses ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON kb_misses TO deskgraph_app
    USING (tenant_id = deskgraph_current_tenant())
    WITH CHECK (tenant_id = deskgraph_current_tenant());
