"""Wire models: the OpenAI chat request with the host's extensions, sessions, and context facts."""

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from agent_host.rag.schemas import RagOptions


def _storable(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (a lone surrogate in a JSON \\u escape?)") from None
    return text


# Text stored in PostgreSQL or sent on to the proxy, neither of which takes NUL characters or lone surrogates:
# refused here as a 422, not there as a 500.
StoredText = Annotated[str, AfterValidator(_storable)]


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


class ToolCallFunction(BaseModel):
    """A call the model made: its arguments are a JSON object in a string, as the proxy parses them."""

    model_config = ConfigDict(extra="forbid")

    name: StoredText = Field(min_length=1, max_length=256)
    arguments: StoredText

    @field_validator("arguments")
    @classmethod
    def _arguments_are_a_json_object(cls, value: str) -> str:
        try:
            parsed = json.loads(value)
        except ValueError:
            raise ValueError("function.arguments must be a JSON object in a string, e.g. '{}'") from None
        if not isinstance(parsed, dict):
            raise ValueError("function.arguments must be a JSON object in a string, e.g. '{}'")
        return value


class ToolCall(_Part):
    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class ChatMessage(BaseModel):
    """One OpenAI message; a field OpenAI does not define is a 422 here, not a 500 from the proxy."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StoredText | list[dict[str, Any]] | None = None
    name: StoredText | None = Field(default=None, max_length=64)
    tool_calls: list[ToolCall] | None = None
    tool_call_id: StoredText | None = None
    refusal: StoredText | None = None

    @model_validator(mode="after")
    def _fields_fit_the_role(self) -> "ChatMessage":
        """OpenAI's rules on which message carries what, checked before the proxy trips on them."""
        if self.content is None and not (self.role == "assistant" and (self.tool_calls or self.refusal)):
            raise ValueError(f"a {self.role} message needs content")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("tool_call_id belongs on tool messages, and every tool message has one")
        if self.role != "assistant" and (self.tool_calls is not None or self.refusal is not None):
            raise ValueError("tool_calls and refusal belong on assistant messages")
        return self

    @field_validator("content")
    @classmethod
    def _parts_are_openai_parts(cls, content: str | list[dict[str, Any]] | None) -> str | list[dict[str, Any]] | None:
        """The parts are checked, then kept as sent (extra fields pass through to the proxy)."""
        if isinstance(content, list):
            CONTENT_PARTS.validate_python(content)
        return content


class FunctionSpec(_Part):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolSpec(_Part):
    type: Literal["function"]
    function: FunctionSpec


class ResponseFormat(_Part):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class StreamOptions(_Part):
    include_usage: bool = False


# OpenAI parameters the host forwards to the proxy as they came.
FORWARDED = {
    "temperature", "top_p", "n", "stop", "presence_penalty", "frequency_penalty", "seed", "user", "logit_bias",
    "logprobs", "top_logprobs", "response_format", "tools", "tool_choice", "parallel_tool_calls",
}  # fmt: skip


class ChatCompletionRequest(BaseModel):
    """OpenAI's body and the host's extensions; an unknown field is a 422 (as OpenAI answers), not a proxy 500."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    # Empty (or system messages only) with `regenerate`: the stored history is the conversation.
    messages: list[ChatMessage] = Field(default_factory=list)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=1, description="the host answers with one choice")
    stop: str | list[str] | None = Field(default=None, max_length=4)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    user: str | None = Field(default=None, max_length=256)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[ToolSpec] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    # Extensions: the session whose history frames this turn (and stores it).
    session_id: str | None = None
    # Answer the session's stored history again, which must end with the user's message (truncate first):
    # no new user message is sent or stored, only the new answer.
    regenerate: bool = False
    # Retrieve from these collections and answer from the chunks, with citations.
    rag: RagOptions | None = None
    # Run an agent (named in agents.yaml, or chosen by the router) instead of a plain completion.
    agent: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _a_turn_or_a_regeneration(self) -> "ChatCompletionRequest":
        new = [message for message in self.messages if message.role not in ("system", "developer")]
        if self.regenerate:
            if self.session_id is None:
                raise ValueError("regenerate answers a stored session again: it needs session_id")
            if new:
                raise ValueError("regenerate sends no new messages (system messages only): the session has them")
        elif not self.messages:
            raise ValueError("messages needs at least one message (or regenerate with a session_id)")
        return self

    def upstream_options(self) -> dict[str, Any]:
        """The OpenAI parameters the client set, forwarded to the proxy as they came."""
        return self.model_dump(include=FORWARDED, exclude_unset=True)


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
    # The proxy answered from its response cache (a deterministic request it had answered before).
    cached: bool = False

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
        if self.cached:
            headers["x-context-cached"] = "1"
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
    # An answer's `citations` (with RAG) and `context` (the facts of its turn); {} on user messages.
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class MessageUpdate(BaseModel):
    """`PATCH /sessions/{id}/messages/{message_id}`: the message's new text."""

    model_config = ConfigDict(extra="forbid")

    content: StoredText = Field(min_length=1)


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
