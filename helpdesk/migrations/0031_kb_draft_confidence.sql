-- How much a learned article draft rests on (desk/kb_learning.py `confidence`): a person's
-- answer, a written resolution, its steps or cause. A tenant that opts in publishes new
-- drafts at or above its threshold as internal articles at once (issue 17 item 5, the
-- blueprint's allowance for micro teams); NULL for drafts written by hand.
ALTER TABLE kb_drafts
    ADD COLUMN confidence real CHECK (confidence IS NULL OR confidence BETWEEN 0 AND 1);
