-- Metrics (helpdesk/metrics.py) read the conversations a period started, then each one's own
-- messages, events and feedback through their conversation indexes. The cohort needs an index
-- by start time; feedback had none by conversation (only the partial CSAT one).
CREATE INDEX IF NOT EXISTS conversations_started ON conversations (tenant_id, created_at);
CREATE INDEX IF NOT EXISTS feedback_conversation ON feedback (conversation_id);
