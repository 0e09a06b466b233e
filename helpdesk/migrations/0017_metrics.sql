-- Metrics (helpdesk/metrics.py, docs/metrics.md): one row of facts per conversation, kept by
-- triggers as messages, events and feedback are written, so that a period's summary reads one
-- row per conversation instead of every message and event of it (issue 17: 200 ms p95 for a
-- tenant with 100,000 conversations). Messages and events are append-only and written in time
-- order, so each trigger only folds the new row in; feedback can change, so its trigger
-- recounts the conversation's few rows. helpdesk.metrics.SOURCE_FACTS_SQL computes the same
-- facts from the source tables; tests check that the two agree.
CREATE TABLE conversation_facts (
    conversation_id       uuid PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    tenant_id             uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel               text NOT NULL,
    started_at            timestamptz NOT NULL,
    customer_messages     integer NOT NULL DEFAULT 0,
    ai_messages           integer NOT NULL DEFAULT 0,
    agent_messages        integer NOT NULL DEFAULT 0,
    system_messages       integer NOT NULL DEFAULT 0,
    first_customer_at     timestamptz,
    last_customer_at      timestamptz,
    intent                text,
    last_agent            text,
    last_agent_at         timestamptz,
    first_reply_at        timestamptz,
    first_agent_reply_at  timestamptz,
    handoffs              integer NOT NULL DEFAULT 0,
    first_handoff_at      timestamptz,
    handoff_reason        text,
    ai_answers            integer NOT NULL DEFAULT 0,
    ai_declines           integer NOT NULL DEFAULT 0,
    last_ai_answer_at     timestamptz,
    held                  integer NOT NULL DEFAULT 0,
    approved              integer NOT NULL DEFAULT 0,
    edited                integer NOT NULL DEFAULT 0,
    rejected              integer NOT NULL DEFAULT 0,
    thumbs_up             integer NOT NULL DEFAULT 0,
    thumbs_down           integer NOT NULL DEFAULT 0,
    csat                  smallint
);
CREATE INDEX conversation_facts_started ON conversation_facts (tenant_id, started_at);
-- Leads by creation time, for the period's count.
CREATE INDEX IF NOT EXISTS leads_created ON leads (tenant_id, created_at);
CREATE INDEX IF NOT EXISTS feedback_conversation ON feedback (conversation_id);

GRANT SELECT ON conversation_facts TO deskgraph_app;
ALTER TABLE conversation_facts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_facts TO deskgraph_app
    USING (tenant_id = deskgraph_current_tenant())
    WITH CHECK (tenant_id = deskgraph_current_tenant());

-- SECURITY DEFINER: the API writes messages as deskgraph_app, which may only read the facts;
-- the triggers write them as the table owner, for the row's own conversation only.
CREATE FUNCTION deskgraph_facts_conversation() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO conversation_facts (conversation_id, tenant_id, channel, started_at)
    VALUES (NEW.id, NEW.tenant_id, NEW.channel, NEW.created_at)
    ON CONFLICT (conversation_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE FUNCTION deskgraph_facts_message() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    reply boolean := NEW.sender IN ('ai', 'agent') AND NEW.visibility = 'public';
BEGIN
    UPDATE conversation_facts f SET
        customer_messages = customer_messages + (NEW.sender = 'customer')::int,
        ai_messages = ai_messages + (NEW.sender = 'ai')::int,
        agent_messages = agent_messages + (NEW.sender = 'agent')::int,
        system_messages = system_messages + (NEW.sender = 'system')::int,
        first_customer_at = CASE WHEN NEW.sender = 'customer'
            THEN least(first_customer_at, NEW.created_at) ELSE first_customer_at END,
        last_customer_at = CASE WHEN NEW.sender = 'customer'
            THEN greatest(last_customer_at, NEW.created_at) ELSE last_customer_at END,
        intent = coalesce(intent, NEW.intent),
        last_agent = CASE WHEN NEW.sender = 'agent' AND NEW.agent_name IS NOT NULL
                          AND NEW.created_at >= coalesce(last_agent_at, '-infinity')
            THEN NEW.agent_name ELSE last_agent END,
        last_agent_at = CASE WHEN NEW.sender = 'agent' AND NEW.agent_name IS NOT NULL
            THEN greatest(last_agent_at, NEW.created_at) ELSE last_agent_at END,
        first_reply_at = CASE WHEN reply AND first_reply_at IS NULL
                              AND NEW.created_at >= first_customer_at
            THEN NEW.created_at ELSE first_reply_at END,
        first_agent_reply_at = CASE WHEN reply AND NEW.sender = 'agent'
                                    AND first_agent_reply_at IS NULL
                                    AND NEW.created_at >= first_handoff_at
            THEN NEW.created_at ELSE first_agent_reply_at END
    WHERE f.conversation_id = NEW.conversation_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION deskgraph_facts_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    ai boolean := NEW.type = 'message.completed' AND NEW.data->>'sender' = 'ai';
    declined boolean := coalesce((NEW.data->>'declined')::boolean, false);
BEGIN
    IF NEW.type NOT IN ('handoff', 'message.completed', 'approval.pending', 'approval.approved',
                        'approval.edited', 'approval.rejected') THEN
        RETURN NULL;
    END IF;
    UPDATE conversation_facts f SET
        handoffs = handoffs + (NEW.type = 'handoff')::int,
        first_handoff_at = CASE WHEN NEW.type = 'handoff'
            THEN least(first_handoff_at, NEW.created_at) ELSE first_handoff_at END,
        handoff_reason = CASE WHEN NEW.type = 'handoff' AND handoffs = 0
            THEN NEW.data->>'reason' ELSE handoff_reason END,
        ai_answers = ai_answers + (ai AND NOT declined)::int,
        ai_declines = ai_declines + (ai AND declined)::int,
        last_ai_answer_at = CASE WHEN ai AND NOT declined
            THEN greatest(last_ai_answer_at, NEW.created_at) ELSE last_ai_answer_at END,
        held = held + (NEW.type = 'approval.pending')::int,
        approved = approved + (NEW.type = 'approval.approved')::int,
        edited = edited + (NEW.type = 'approval.edited')::int,
        rejected = rejected + (NEW.type = 'approval.rejected')::int
    WHERE f.conversation_id = NEW.conversation_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION deskgraph_facts_feedback() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    conv uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.conversation_id ELSE NEW.conversation_id END;
BEGIN
    UPDATE conversation_facts f SET
        thumbs_up = s.up, thumbs_down = s.down, csat = s.csat
    FROM (
        SELECT count(*) FILTER (WHERE kind = 'rating' AND rating = 'up') AS up,
               count(*) FILTER (WHERE kind = 'rating' AND rating = 'down') AS down,
               max(csat) FILTER (WHERE kind = 'csat') AS csat
        FROM feedback WHERE conversation_id = conv
    ) s
    WHERE f.conversation_id = conv;
    RETURN NULL;
END
$$;

CREATE TRIGGER conversation_facts_start AFTER INSERT ON conversations
    FOR EACH ROW EXECUTE FUNCTION deskgraph_facts_conversation();
CREATE TRIGGER conversation_facts_message AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION deskgraph_facts_message();
CREATE TRIGGER conversation_facts_event AFTER INSERT ON conversation_events
    FOR EACH ROW EXECUTE FUNCTION deskgraph_facts_event();
CREATE TRIGGER conversation_facts_feedback AFTER INSERT OR UPDATE OR DELETE ON feedback
    FOR EACH ROW EXECUTE FUNCTION deskgraph_facts_feedback();

-- The conversations from before this migration: their facts computed once from the source.
INSERT INTO conversation_facts
SELECT c.id, c.tenant_id, c.channel, c.created_at,
       m.customer_messages, m.ai_messages, m.agent_messages, m.system_messages,
       m.first_customer_at, m.last_customer_at, m.intent, m.last_agent, m.last_agent_at,
       r.first_reply_at, h.first_agent_reply_at,
       e.handoffs, e.first_handoff_at, e.handoff_reason, e.ai_answers, e.ai_declines,
       e.last_ai_answer_at, e.held, e.approved, e.edited, e.rejected,
       f.thumbs_up, f.thumbs_down, f.csat
FROM conversations c
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE sender = 'customer') AS customer_messages,
           count(*) FILTER (WHERE sender = 'ai') AS ai_messages,
           count(*) FILTER (WHERE sender = 'agent') AS agent_messages,
           count(*) FILTER (WHERE sender = 'system') AS system_messages,
           min(created_at) FILTER (WHERE sender = 'customer') AS first_customer_at,
           max(created_at) FILTER (WHERE sender = 'customer') AS last_customer_at,
           (array_agg(intent ORDER BY created_at) FILTER (WHERE intent IS NOT NULL))[1] AS intent,
           (array_agg(agent_name ORDER BY created_at DESC)
                FILTER (WHERE sender = 'agent' AND agent_name IS NOT NULL))[1] AS last_agent,
           max(created_at) FILTER (WHERE sender = 'agent' AND agent_name IS NOT NULL)
               AS last_agent_at
    FROM messages WHERE conversation_id = c.id
) m ON true
LEFT JOIN LATERAL (
    SELECT min(created_at) AS first_reply_at FROM messages
    WHERE conversation_id = c.id AND sender IN ('ai', 'agent') AND visibility = 'public'
      AND created_at >= m.first_customer_at
) r ON true
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE type = 'handoff') AS handoffs,
           min(created_at) FILTER (WHERE type = 'handoff') AS first_handoff_at,
           (array_agg(data->>'reason' ORDER BY seq) FILTER (WHERE type = 'handoff'))[1]
               AS handoff_reason,
           count(*) FILTER (WHERE type = 'message.completed' AND data->>'sender' = 'ai'
                            AND NOT coalesce((data->>'declined')::boolean, false)) AS ai_answers,
           count(*) FILTER (WHERE type = 'message.completed' AND data->>'sender' = 'ai'
                            AND coalesce((data->>'declined')::boolean, false)) AS ai_declines,
           max(created_at) FILTER (WHERE type = 'message.completed' AND data->>'sender' = 'ai'
                                   AND NOT coalesce((data->>'declined')::boolean, false))
               AS last_ai_answer_at,
           count(*) FILTER (WHERE type = 'approval.pending') AS held,
           count(*) FILTER (WHERE type = 'approval.approved') AS approved,
           count(*) FILTER (WHERE type = 'approval.edited') AS edited,
           count(*) FILTER (WHERE type = 'approval.rejected') AS rejected
    FROM conversation_events WHERE conversation_id = c.id
) e ON true
LEFT JOIN LATERAL (
    SELECT min(created_at) AS first_agent_reply_at FROM messages
    WHERE conversation_id = c.id AND sender = 'agent' AND visibility = 'public'
      AND created_at >= e.first_handoff_at
) h ON true
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE kind = 'rating' AND rating = 'up') AS thumbs_up,
           count(*) FILTER (WHERE kind = 'rating' AND rating = 'down') AS thumbs_down,
           max(csat) FILTER (WHERE kind = 'csat') AS csat
    FROM feedback WHERE conversation_id = c.id
) f ON true;
