-- The hub's tables as every start created them before migrations existed (IF NOT EXISTS: an existing
-- database takes this version as applied without change).
CREATE TABLE IF NOT EXISTS hub_keys (
    key_hash    text PRIMARY KEY,              -- sha256 of the key; the key itself is never stored
    key_prefix  text NOT NULL UNIQUE,          -- first characters, to tell keys apart in a listing
    alias       text NOT NULL,
    models      text[] NOT NULL DEFAULT '{}',  -- empty: every model
    max_budget  double precision,
    rpm_limit   integer,
    tpm_limit   integer,
    expires_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    metadata    jsonb NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS hub_keys_active_alias ON hub_keys (alias) WHERE revoked_at IS NULL;
-- A person has at most one active key; a service key acting for them finds it through this index.
CREATE UNIQUE INDEX IF NOT EXISTS hub_keys_active_user
    ON hub_keys ((metadata->>'user_id')) WHERE revoked_at IS NULL;
-- Every key a person has had, for their spend (see KEY_SPEND).
CREATE INDEX IF NOT EXISTS hub_keys_user ON hub_keys ((metadata->>'user_id'));

CREATE TABLE IF NOT EXISTS hub_request_log (
    id                bigserial PRIMARY KEY,
    request_id        text NOT NULL UNIQUE,    -- re-flushing a row never duplicates it
    started_at        timestamptz NOT NULL,
    ended_at          timestamptz NOT NULL,
    key_hash          text,
    key_alias         text,
    model_requested   text,
    model_group       text,
    deployment        text,
    deployment_id     text,
    api_base          text,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    cost              double precision NOT NULL DEFAULT 0,
    latency_ms        double precision NOT NULL,
    ttft_ms           double precision,
    status            text NOT NULL CHECK (status IN ('success', 'failure')),
    http_status       integer,
    error             text,
    stream            boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS hub_request_log_key_time ON hub_request_log (key_hash, started_at);
CREATE INDEX IF NOT EXISTS hub_request_log_time ON hub_request_log (started_at);
