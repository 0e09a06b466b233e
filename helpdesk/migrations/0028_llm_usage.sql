-- Token usage of the LLM tier (issue 18 item 4): one row per model call, from the response's
-- usage metadata, so the metrics can sum a tenant's tokens per period and node, and the
-- monthly token budget (the tenant policy's llm_monthly_tokens) can be checked before a call.
CREATE TABLE llm_usage (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- no foreign key: a Studio run names a thread that is not a stored conversation
    conversation_id  uuid,
    turn             integer,
    node             text NOT NULL,
    model            text NOT NULL DEFAULT '',
    input_tokens     integer NOT NULL CHECK (input_tokens >= 0),
    output_tokens    integer NOT NULL CHECK (output_tokens >= 0),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_usage_period ON llm_usage (tenant_id, created_at);

GRANT SELECT, INSERT, DELETE ON llm_usage TO deskgraph_app;
ALTER TABLE llm_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON llm_usage TO deskgraph_app
    USING (tenant_id = deskgraph_current_tenant())
    WITH CHECK (tenant_id = deskgraph_current_tenant());
