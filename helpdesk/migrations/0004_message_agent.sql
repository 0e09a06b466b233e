-- The agent who wrote an agent message (or acted on a system message), so transcripts and
-- events can say who answered, also after a reload.
ALTER TABLE messages ADD COLUMN agent_name text CHECK (length(agent_name) <= 200);
