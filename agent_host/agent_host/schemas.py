"""Wire models: the OpenAI chat request with the host's extensions, sessions, and context facts."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from agent_host.rag.schemas import RagOptions


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


# Text stored in PostgreSQL, which refuses NUL characters: refused here as a 422, not there as a 500.
StoredText = Annotated[str, AfterValidator(_no_nul)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextPart(_Part):
    type: Literal["text"]
    text: StoredText


class ImageUrl(_Part):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Part):
    type: Literal["image_url"]
    image_url: ImageUrl


class InputAudio(_Part):
    data: str
    format: str = Field(min_length=1)


class AudioPart(_Part):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(_Part):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(_Part):
    type: Literal["refusal"]
    refusal: str


# OpenAI's content parts: checked here, so a malformed one is a 422 and never reaches the proxy.
CONTENT_PARTS: TypeAdapter[list[Any]] = TypeAdapter(
    list[Annotated[TextPart | ImagePart | AudioPart | FilePart | RefusalPart, Field(discriminator="type")]]
)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StoredText | list[dict[str, Any]] | None = None

    @field_validator("content")
    @classmethod
    def _parts_are_openai_parts(cls, content: str | list[dict[str, Any]] | None) -> str | list[dict[str, Any]] | None:
        """The parts are checked, then kept as sent (extra fields pass through to the proxy)."""
        if isinstance(content, list):
            CONTENT_PARTS.validate_python(content)
        return content


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
    title: StoredText = Field(default="New chat", max_length=200)
    model: StoredText | None = None
    system_prompt: StoredText | None = None
    # RAG collections every turn of the session retrieves from.
    collections: list[StoredText] = Field(default_factory=list, max_length=20)


class SessionUpdate(BaseModel):
    """Only the fields sent change; a field the host does not know is a 422, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    title: StoredText | None = Field(default=None, max_length=200)
    model: StoredText | None = None
    system_prompt: StoredText | None = None
    collections: list[StoredText] | None = Field(default=None, max_length=20)

    @field_validator("title", "collections")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        """Title and collections can be changed, not removed (the default is not checked: unset stays unset)."""
        if value is None:
            raise ValueError("may be changed but not set to null")
        return value


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
