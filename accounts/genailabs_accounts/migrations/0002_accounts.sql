-- People (issue 11): accounts, their sign-in sessions and API keys, the per-login sign-in throttle, and owners.

CREATE TABLE accounts (
    id            uuid PRIMARY KEY,
    login         text NOT NULL UNIQUE CHECK (login = lower(login) AND length(login) BETWEEN 1 AND 64),
    name          text NOT NULL DEFAULT '',
    role          text NOT NULL CHECK (role IN ('admin', 'user')),
    password_hash text NOT NULL,               -- argon2id (argon2-cffi's encoded form)
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz
);
CREATE INDEX accounts_admins ON accounts (created_at) WHERE role = 'admin' AND NOT disabled;

-- A sign-in: only the sha256 of the token is kept, so a copy of this table signs nobody in.
CREATE TABLE account_sessions (
    token_hash   text PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_sessions_account ON account_sessions (account_id, last_seen_at);

CREATE TABLE account_api_keys (
    id           uuid PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name         text NOT NULL,
    key_hash     text NOT NULL UNIQUE,        -- sha256 of the key; the key is shown once and never stored
    key_prefix   text NOT NULL,               -- enough to tell keys apart in a listing
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX account_api_keys_account ON account_api_keys (account_id, created_at);

-- Failed sign-ins per login as typed (lower-cased), whether or not an account has it.
CREATE TABLE login_attempts (
    login           text PRIMARY KEY,
    failures        integer NOT NULL DEFAULT 0,
    last_failure_at timestamptz,
    locked_until    timestamptz
);
CREATE INDEX login_attempts_last_failure ON login_attempts (last_failure_at);

-- Owners: NULL for rows made before accounts; the first admin adopts them.
ALTER TABLE agent_sessions ADD COLUMN owner_id uuid REFERENCES accounts(id);
ALTER TABLE rag_collections ADD COLUMN owner_id uuid REFERENCES accounts(id);
ALTER TABLE rag_collections ADD COLUMN shared boolean NOT NULL DEFAULT false;
ALTER TABLE ui_conversations ADD COLUMN owner_id uuid REFERENCES accounts(id);
-- An answer's citations and facts live with its message: one copy.
ALTER TABLE agent_messages ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}';
CREATE INDEX agent_sessions_owner ON agent_sessions (owner_id, updated_at DESC);
CREATE INDEX ui_conversations_owner ON ui_conversations (owner_id, updated_at DESC);
CREATE INDEX rag_collections_owner ON rag_collections (owner_id);
