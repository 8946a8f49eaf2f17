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


class DatabaseUnavailable(AgentHostError):
    type, status = "database_unavailable", 503
