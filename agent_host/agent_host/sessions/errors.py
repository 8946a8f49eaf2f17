"""Errors of a session's history (the host's other domain errors are in agent_host/errors.py)."""

from agent_host.errors import AgentHostError, SessionNotFound


class MessageNotFound(AgentHostError):
    type, status = "message_not_found", 404

    def __init__(self, session_id: str, message_id: int) -> None:
        super().__init__(f"message {message_id} is not in session {session_id}")


class NothingToRegenerate(AgentHostError):
    """`regenerate` answers the stored history again: it must end with the user's message."""

    type, status = "nothing_to_regenerate", 409


class AnswerSuperseded(SessionNotFound):
    """A regeneration's answer whose question was answered (or followed by a new turn) meanwhile, perhaps through
    another replica. A SessionNotFound so the pipeline treats it as one: the turn is answered, not stored, and its
    facts say why."""

    type, status = "answer_superseded", 409

    def __init__(self, session_id: str) -> None:
        AgentHostError.__init__(
            self,
            f"session {session_id} no longer ends with the message this answer regenerates: it was answered, or a "
            "newer turn stored, meanwhile",
        )
