-- The task queue (desk/queue.py, docs/queue.md): procrastinate's own schema, as the installed
-- package ships it, spliced in here by the migration runner (helpdesk/db.py, `-- include:`).
-- Copying its 600 lines into this file would let the copy and the installed code drift apart;
-- running procrastinate's SchemaManager from Python would take the schema out of the one
-- ordered, advisory-locked, recorded migration sequence. pyproject pins procrastinate to 3.10.x:
-- moving to a later release is a later migration that includes the package's own upgrade
-- files (`-- include: procrastinate:sql/migrations/<file>.sql`), never an edit of this one.
-- include: procrastinate:sql/schema.sql

-- The queue's tables hold every tenant's jobs. Job arguments carry ids only (tenant, ticket),
-- never customer text, and the row-level-security role of the API (deskgraph_app) gets no
-- access at all: only the table owner's connections (workers, deferring code) touch them.
REVOKE ALL ON procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers,
    procrastinate_workers FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'deskgraph_app') THEN
        REVOKE ALL ON procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers,
            procrastinate_workers FROM deskgraph_app;
    END IF;
END
$$;

-- A job's effect applied at most once (desk/queue.py: `once`): a task that writes outside the
-- queue records its job id here in the same transaction, so a job re-run after its worker was
-- killed (stalled-job retry) finds it done and writes nothing twice.
CREATE TABLE task_effects (
    job_id      bigint PRIMARY KEY,
    task_name   text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON task_effects FROM PUBLIC;
