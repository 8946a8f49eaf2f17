"""Wire models: the OpenAI chat request with the host's extensions, sessions, and context facts."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from agent_host.rag.schemas import RagOptions


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's body; unknown OpenAI fields pass through to the proxy unchanged."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    # Extensions: the session whose history frames this turn (and stores it).
    session_id: str | None = None
    # Retrieve from these collections and answer from the chunks, with citations.
    rag: RagOptions | None = None
    # Run an agent (named in agents.yaml, or chosen by the router) instead of a plain completion.
    agent: dict[str, Any] | None = None

    def upstream_options(self) -> dict[str, Any]:
        """Fields forwarded to the proxy as they came, minus the ones the host handles itself."""
        handled = {"model", "messages", "stream", "max_tokens", "max_completion_tokens", "session_id", "stream_options"}
        return {key: value for key, value in (self.model_extra or {}).items() if key not in handled}


class ContextFacts(BaseModel):
    """What the host did to fit the prompt into the model's window."""

    window: int
    prompt_tokens: int
    reply_tokens: int
    history_messages: int = 0
    summarised_messages: int = 0
    trimmed_messages: int = 0
    summary_updated: bool = False
    session_id: str | None = None
    session_stored: bool = False
    warning: str | None = None
    # Retrieved chunks in the prompt, numbered [1]..[n] for citations.
    sources: int = 0

    def headers(self) -> dict[str, str]:
        headers = {
            "x-context-window": str(self.window),
            "x-context-prompt-tokens": str(self.prompt_tokens),
            "x-context-reply-tokens": str(self.reply_tokens),
            "x-context-history-messages": str(self.history_messages),
            "x-context-summarised-messages": str(self.summarised_messages),
            "x-context-trimmed-messages": str(self.trimmed_messages),
        }
        if self.sources:
            headers["x-context-sources"] = str(self.sources)
        if self.session_id:
            headers["x-session-id"] = self.session_id
        if self.warning:
            headers["x-context-warning"] = self.warning
        return headers


class SessionCreate(BaseModel):
    # A client may choose the id (e.g. derived from its own conversation id); 409 if it is taken.
    id: UUID | None = None
    title: str = Field(default="New chat", max_length=200)
    model: str | None = None
    system_prompt: str | None = None
    # RAG collections every turn of the session retrieves from.
    collections: list[str] = Field(default_factory=list, max_length=20)


class SessionUpdate(BaseModel):
    title: str | None = Field(default=None, max_length=200)
    model: str | None = None
    system_prompt: str | None = None
    collections: list[str] | None = Field(default=None, max_length=20)


class SessionPublic(BaseModel):
    id: str
    title: str
    model: str | None
    system_prompt: str | None
    collections: list[str] = Field(default_factory=list)
    summary: str | None
    summarised_messages: int
    message_count: int
    created_at: datetime
    updated_at: datetime


class MessagePublic(BaseModel):
    id: int
    role: str
    content: str
    tokens: int
    incomplete: bool
    created_at: datetime


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
