-- The process that queued an ingestion job (kb_pipeline.jobs.JobOwner): the key of a session
-- advisory lock that process holds for its whole life. A queued job waits in the process that
-- received its files, and only that process can run it; if the process dies first, no lock
-- holds this key any more and the reaper fails the job (`worker_lost`) instead of leaving it
-- `queued` for ever. NULL for jobs queued before this column existed (never reaped as orphans).
ALTER TABLE ingestion_jobs ADD COLUMN owner_key bigint;
