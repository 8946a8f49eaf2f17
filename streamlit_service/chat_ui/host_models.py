"""The agent host's session, message and agent wire models as the UI reads them (fields it adds later are ignored)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chat_ui.rag_models import Citation, WireModel


class SessionInfo(WireModel):
    """`GET /sessions/{id}`: one conversation in agent-host mode."""

    id: str
    title: str
    model: str | None = None
    system_prompt: str | None = None
    collections: list[str] = Field(default_factory=list)
    message_count: int = 0
    created_at: datetime
    updated_at: datetime


class ContextFacts(WireModel):
    """How the host fitted the turn into the model's window (the x-context-* headers, kept with the answer)."""

    window: int | None = None
    prompt_tokens: int | None = None
    summarised_messages: int | None = None
    trimmed_messages: int | None = None
    cached: bool = False


class AgentRun(WireModel):
    """Which agent answered, on which model; its steps when the host keeps them."""

    agent: str = ""
    model: str = ""
    run_id: str = ""
    steps: list[dict[str, Any]] = Field(default_factory=list)


class AnswerMeta(WireModel):
    """What the host keeps with an answer beyond its text: the sources it cites, its context, an agent's steps."""

    # None: the turn did not search documents; empty: it searched and found nothing relevant.
    citations: list[Citation] | None = None
    context: ContextFacts | None = None
    agent_run: AgentRun | None = None  # set when an agent answered


class HostMessage(WireModel):
    """`GET /sessions/{id}/messages`: one stored message and its metadata."""

    id: int
    role: str
    content: str
    incomplete: bool = False
    created_at: datetime
    metadata: dict[str, Any] = Field(default_factory=dict)


class AgentInfo(BaseModel):
    """`GET /agents`: one named agent."""

    model_config = ConfigDict(extra="ignore")

    name: str
    description: str = ""
    kind: str = "tools"
    model: str | None = None
    tools: list[str] = Field(default_factory=list)
