-- Knowledge-base ingestion jobs: one row per `deskgraph ingest` run or `POST /v1/kb/ingest`,
-- updated after every file so a client can poll progress and read per-file errors.
CREATE TABLE ingestion_jobs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    status              text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'running', 'done', 'failed')),
    -- What the job was asked to do (kb_pipeline.jobs.JobOptions) plus the chunking it used.
    options             jsonb NOT NULL DEFAULT '{}'::jsonb,
    files_total         integer NOT NULL DEFAULT 0,
    files_done          integer NOT NULL DEFAULT 0,
    files_failed        integer NOT NULL DEFAULT 0,
    current_file        text,
    articles_written    integer NOT NULL DEFAULT 0,
    articles_unchanged  integer NOT NULL DEFAULT 0,
    articles_deleted    integer NOT NULL DEFAULT 0,
    chunks_written      integer NOT NULL DEFAULT 0,
    -- [{"file", "code", "message", "line"?}], one entry per problem, capped per job.
    errors              jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- Files of an unsupported type found in a folder and left alone (not errors).
    skipped             jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- Why a job failed, or a note on a finished one (e.g. why cleanup did not run).
    detail              text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz
);
CREATE INDEX ingestion_jobs_tenant ON ingestion_jobs (tenant_id, created_at DESC);

-- Row-level security comes with the API migration (0003), which protects this table when it
-- exists. A database that got 0003 before this file existed gets the same policy here.
DO $$
BEGIN
    IF to_regprocedure('deskgraph_current_tenant()') IS NOT NULL THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON ingestion_jobs TO deskgraph_app;
        ALTER TABLE ingestion_jobs ENABLE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON ingestion_jobs TO deskgraph_app
            USING (tenant_id = deskgraph_current_tenant())
            WITH CHECK (tenant_id = deskgraph_current_tenant());
    END IF;
END
$$;
