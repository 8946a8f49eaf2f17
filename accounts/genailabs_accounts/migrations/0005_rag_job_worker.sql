-- The queue worker running each job's current attempt (name@host:pid): an operator sees who holds a job, and a
-- job requeued after its worker died names the one that takes it over.
ALTER TABLE rag_jobs ADD COLUMN worker text;
