-- Durable ingestion (agent host scale-out): jobs and their progress live here, so every replica answers for
-- them and a job outlives the process that accepted it; the queue itself is procrastinate's tables.

-- Moves whenever a collection's set of ready documents changes (finalise, re-index, delete), in the same
-- transaction, under the collection row's lock: a replica whose keyword index was built at another version
-- reloads the difference before it answers. From one sequence, so a collection deleted and made again under
-- its old name never shows a version a replica has seen before.
CREATE SEQUENCE rag_collection_versions;
ALTER TABLE rag_collections ADD COLUMN version bigint NOT NULL DEFAULT nextval('rag_collection_versions');

CREATE TABLE rag_jobs (
    id          uuid PRIMARY KEY,
    collection  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('ingest', 'reindex')),
    owner_id    uuid NOT NULL,
    -- accepting: the host is still taking the upload in, under a lease it renews per file; a job whose lease
    -- ran out (its host died) is reclaimed by whoever sweeps next. queued/running: the queue's business.
    status      text NOT NULL CHECK (status IN ('accepting', 'queued', 'running', 'done', 'failed')),
    lease_until timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX rag_jobs_open ON rag_jobs (status) WHERE status IN ('accepting', 'queued', 'running');
CREATE INDEX rag_jobs_finished ON rag_jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE rag_job_files (
    job_id      uuid NOT NULL REFERENCES rag_jobs (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    document_id uuid NOT NULL,
    filename    text NOT NULL,
    status      text NOT NULL CHECK (status IN ('queued', 'indexed', 'failed')),
    -- the generation a re-index reserved (its retry writes the same one again)
    generation  integer,
    chunks      integer,
    chunks_done integer NOT NULL DEFAULT 0,
    error       jsonb,
    PRIMARY KEY (job_id, position)
);

-- The job writing this document now (its first index or a re-index): a document whose job has ended, or
-- whose accepting host's lease ran out, is a leftover; one whose job is still open is nobody's to remove.
ALTER TABLE rag_documents ADD COLUMN job_id uuid;
