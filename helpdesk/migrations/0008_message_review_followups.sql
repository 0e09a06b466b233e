-- Messages that arrive while a draft is held for review (issue 19, item 2).
-- in_reply_to: the customer message an answer answers, so an answer sent after later messages
--   (a held draft approved once the customer had written again) reads as the answer to its
--   own question. NULL for messages that answer nothing in particular (greetings from an
--   agent outside a turn, system notes) and for messages stored before this column existed.
-- pending_turn_key: set on a customer message stored while its conversation waited on a draft
--   review: the AI still owes it a turn. It is the id the turn runs the message with (the
--   message's own id derives from it), so the turn stores nothing twice; NULL once the turn
--   has run, or once a person has the conversation.
ALTER TABLE messages ADD COLUMN in_reply_to uuid;
ALTER TABLE messages ADD COLUMN pending_turn_key text;
CREATE INDEX messages_pending_turn ON messages (conversation_id, created_at)
    WHERE pending_turn_key IS NOT NULL;
