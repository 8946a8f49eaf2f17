-- Every genailabs table as the stores created them before migrations existed (IF NOT EXISTS: databases made
-- before this runner already have them).

-- agent_host/agent_host/sessions/store.py
CREATE TABLE IF NOT EXISTS agent_sessions (
    id uuid PRIMARY KEY,
    title text NOT NULL,
    model text,
    system_prompt text,
    summary text,
    summarised_upto bigint NOT NULL DEFAULT 0,
    summarised_messages integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS agent_messages (
    id bigserial PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES agent_sessions(id) ON DELETE CASCADE,
    role text NOT NULL,
    content text NOT NULL,
    tokens integer NOT NULL,
    incomplete boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS agent_messages_session ON agent_messages (session_id, id);
-- RAG collections the session answers from (issue 5); added to tables created before it existed.
ALTER TABLE agent_sessions ADD COLUMN IF NOT EXISTS collections text[] NOT NULL DEFAULT '{}';

-- agent_host/agent_host/agents/notes.py
CREATE TABLE IF NOT EXISTS agent_notes (
    id bigserial PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES agent_sessions(id) ON DELETE CASCADE,
    text text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS agent_notes_session ON agent_notes (session_id, id);

-- agent_host/agent_host/rag/registry.py
CREATE TABLE IF NOT EXISTS rag_collections (
    name text PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    chunk_tokens integer NOT NULL,
    chunk_overlap integer NOT NULL,
    embedding_model text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS rag_documents (
    id uuid PRIMARY KEY,
    collection text NOT NULL REFERENCES rag_collections(name) ON DELETE CASCADE,
    filename text NOT NULL,
    type text NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL,
    pages integer,
    chunks integer NOT NULL DEFAULT 0,
    status text NOT NULL CHECK (status IN ('indexing', 'ready')),
    generation integer NOT NULL DEFAULT 0,
    -- set while a re-index writes generation + 1, so a crash mid-way can be cleaned up at start
    pending_generation integer,
    sections jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (collection, sha256)
);

-- streamlit_service/chat_ui/store.py
CREATE TABLE IF NOT EXISTS ui_conversations (
    id            bigserial PRIMARY KEY,
    title         text NOT NULL,
    model         text NOT NULL,
    temperature   double precision NOT NULL,
    max_tokens    integer NOT NULL,
    top_p         double precision NOT NULL,
    system_prompt text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ui_conversations_updated ON ui_conversations (updated_at DESC);
CREATE TABLE IF NOT EXISTS ui_messages (
    id              bigserial PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES ui_conversations (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text NOT NULL,
    facts           jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ui_messages_conversation ON ui_messages (conversation_id, id);

-- streamlit_service/chat_ui/extras_store.py
CREATE TABLE IF NOT EXISTS ui_answer_extras (
    message_id  bigint PRIMARY KEY REFERENCES ui_messages (id) ON DELETE CASCADE,
    extras      jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS ui_conversation_collections (
    conversation_id bigint PRIMARY KEY REFERENCES ui_conversations (id) ON DELETE CASCADE,
    collections     text[] NOT NULL
);
