"""Errors of a session's history (the host's other domain errors are in agent_host/errors.py)."""

from agent_host.errors import AgentHostError


class MessageNotFound(AgentHostError):
    type, status = "message_not_found", 404

    def __init__(self, session_id: str, message_id: int) -> None:
        super().__init__(f"message {message_id} is not in session {session_id}")


class NothingToRegenerate(AgentHostError):
    """`regenerate` answers the stored history again: it must end with the user's message."""

    type, status = "nothing_to_regenerate", 409
