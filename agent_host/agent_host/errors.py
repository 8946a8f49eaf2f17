"""Domain errors; api/errors.py maps each to its status code and `{"error": {"type", "message"}}`."""


class AgentHostError(Exception):
    """Base: `type` names the error on the wire, `status` is its HTTP status."""

    type = "internal_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthorized(AgentHostError):
    type, status = "unauthorized", 401


class AccountsUnreachable(AgentHostError):
    """The accounts database cannot be reached, so nobody's credential can be checked."""

    type, status = "accounts_unavailable", 503


class Forbidden(AgentHostError):
    """The credential is valid but may not do this (an administrator's action, or a policy says no)."""

    type, status = "forbidden", 403


class SessionNotFound(AgentHostError):
    type, status = "session_not_found", 404

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id} does not exist")


class SessionExists(AgentHostError):
    type, status = "session_exists", 409

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id} already exists")


class ModelNotFound(AgentHostError):
    type, status = "model_not_found", 404


class BodyTooLarge(AgentHostError):
    type, status = "request_too_large", 413


class ContextTooLarge(AgentHostError):
    """The newest turn alone does not fit the model's window, so nothing can be sent."""

    type, status = "context_length_exceeded", 400


class BadUpstreamRequest(AgentHostError):
    type, status = "invalid_request", 400


class ProxyUnavailable(AgentHostError):
    type, status = "proxy_unavailable", 503


class UpstreamError(AgentHostError):
    type, status = "upstream_error", 502


# What the proxy refuses for the person a request acts for (their key's models, budget, or a revoked key).
class ModelNotAllowed(AgentHostError):
    type, status = "model_not_allowed", 403


class BudgetExceeded(AgentHostError):
    """OpenAI's own answer to a spent quota is a 429 (insufficient_quota)."""

    type, status = "budget_exceeded", 429


class AccountKeyRevoked(AgentHostError):
    type, status = "account_disabled", 403


class DatabaseUnavailable(AgentHostError):
    type, status = "database_unavailable", 503


# RAG


class CollectionNotFound(AgentHostError):
    type, status = "collection_not_found", 404

    def __init__(self, name: str) -> None:
        super().__init__(f"collection {name!r} does not exist")


class CollectionExists(AgentHostError):
    type, status = "collection_exists", 409

    def __init__(self, name: str) -> None:
        super().__init__(f"collection {name!r} already exists")


class DocumentNotFound(AgentHostError):
    type, status = "document_not_found", 404


class JobNotFound(AgentHostError):
    type, status = "job_not_found", 404


class UnsupportedDocumentType(AgentHostError):
    type, status = "unsupported_media_type", 415


class DocumentTooLarge(AgentHostError):
    type, status = "file_too_large", 413


class UnreadableDocument(AgentHostError):
    """Empty, scanned (no text layer), encrypted or corrupt: the message names the file."""

    type, status = "unreadable_document", 422


class ParseTimeout(AgentHostError):
    """Parsing one file ran over RAG_PARSE_TIMEOUT: its worker process was killed."""

    type, status = "parse_timeout", 422


class ArchiveTooLarge(AgentHostError):
    """A zip-based file (DOCX) that would unpack to too much, or is compressed suspiciously well (a zip bomb)."""

    type, status = "archive_too_large", 413


class InvalidUpload(AgentHostError):
    """The upload body is not multipart/form-data with `files` parts."""

    type, status = "invalid_request", 422


class EmbeddingModelUnknown(AgentHostError):
    type, status = "embedding_model_unknown", 422


class InvalidCollectionSettings(AgentHostError):
    type, status = "invalid_request", 422


class TooManyFiles(AgentHostError):
    type, status = "too_many_files", 413


class VectorStoreUnavailable(AgentHostError):
    type, status = "vector_store_unavailable", 503


# MCP


class McpServerNotFound(AgentHostError):
    type, status = "mcp_server_not_found", 404

    def __init__(self, name: str) -> None:
        super().__init__(f"MCP server {name!r} is not configured")


class McpServerExists(AgentHostError):
    type, status = "mcp_server_exists", 409

    def __init__(self, name: str) -> None:
        super().__init__(f"MCP server {name!r} is already configured")


class McpConfigInvalid(AgentHostError):
    """The mcpServers file or a server's config is wrong: the message names the file and the field."""

    type, status = "invalid_mcp_config", 422


class McpStdioRefused(Forbidden):
    """Stdio servers run commands on the host: only the operator's servers file may configure them."""

    type = "mcp_stdio_refused"


class McpUrlRefused(Forbidden):
    """A run-time server's URL reaches loopback, a private network or a metadata address."""

    type = "mcp_url_refused"


class McpServerInFile(Forbidden):
    """The server comes from the operator's servers file, which the API never rewrites."""

    type = "mcp_server_in_file"


# Agents


class AgentNotFound(AgentHostError):
    type, status = "agent_not_found", 404

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"agent {name!r} does not exist; agents: {', '.join(known)}")


class AgentConfigError(AgentHostError):
    """agents.yaml cannot be read or is invalid: the message names the file and the field."""

    type, status = "invalid_agents_config", 500
