-- Why a failed ingestion job failed, as a stable code (kb_pipeline.jobs.JOB_FAILURE_CODES);
-- `detail` keeps the words. NULL for jobs that did not fail, and for jobs that failed before
-- this column existed. `worker_lost` marks a job whose process died while it was running
-- (kb_pipeline.jobs.reap_dead_jobs).
ALTER TABLE ingestion_jobs ADD COLUMN error_code text;
