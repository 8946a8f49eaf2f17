-- MCP servers added through the agent host's API (issue 13): one list for every replica, instead of a
-- run-time file per process. Streamable HTTP only: stdio servers come from the operator's servers file.

CREATE TABLE mcp_servers (
    -- The primary key is what makes two replicas adding one name at once give one 201 and one 409.
    name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$'),
    -- McpServerConfig as the servers file writes it: "url" and optional "headers" (stored as given).
    config     jsonb NOT NULL CHECK (config ? 'url' AND NOT config ? 'command'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Run-time files of hosts from before this table (MCP_RUNTIME_SERVERS_FILE), each imported once: a server
-- removed through the API after the import must not come back at the next start.
CREATE TABLE mcp_server_imports (
    source      text PRIMARY KEY,
    servers     integer NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now()
);
