-- Article drafts the desk learns from (issue 17 item 5): made from a resolved conversation or
-- ticket, reviewed by people, published into the knowledge base. See helpdesk/kb_drafts.py
-- (the states and who may move them) and desk/kb_learning.py (how a draft is made).
CREATE TABLE kb_drafts (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    state                 text NOT NULL DEFAULT 'draft'
                          CHECK (state IN ('draft', 'in_review', 'approved', 'published', 'rejected')),
    -- new: a new article; update: a section for the existing article target_source_id, which
    -- the draft was found close to.
    kind                  text NOT NULL CHECK (kind IN ('new', 'update')),
    target_source_id      text,
    similarity            real,
    title                 text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    body                  text NOT NULL CHECK (length(body) BETWEEN 1 AND 50000),
    visibility            text NOT NULL DEFAULT 'external' CHECK (visibility IN ('external', 'internal')),
    source_conversations  uuid[] NOT NULL DEFAULT '{}',
    source_tickets        uuid[] NOT NULL DEFAULT '{}',
    ai_generated          boolean NOT NULL DEFAULT true,
    created_by            text NOT NULL,
    reviewed_by           text,
    published_source_id   text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'update') = (target_source_id IS NOT NULL))
);
CREATE INDEX kb_drafts_queue ON kb_drafts (tenant_id, state, created_at);
-- One draft per source conversation: a second resolve of the same conversation finds it.
CREATE UNIQUE INDEX kb_drafts_one_per_conversation ON kb_drafts (tenant_id, (source_conversations[1]))
    WHERE cardinality(source_conversations) > 0;

GRANT SELECT, INSERT, UPDATE, DELETE ON kb_drafts TO deskgraph_app;
ALTER TABLE kb_drafts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON kb_drafts TO deskgraph_app
    USING (tenant_id = deskgraph_current_tenant())
    WITH CHECK (tenant_id = deskgraph_current_tenant());
