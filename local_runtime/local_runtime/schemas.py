"""Ollama API request and response bodies (docs/api.md of ollama/ollama)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from local_runtime.details import ModelDetails


class Options(BaseModel):
    """Ollama's `options`; the ones llama.cpp cannot change per request are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    typical_p: float | None = None
    repeat_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    num_predict: int | None = None
    num_ctx: int | None = Field(default=None, ge=16)
    stop: list[str] | str | None = None


class FunctionCall(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCallBody(BaseModel):
    function: FunctionCall


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | None = ""
    images: list[str] | None = None
    tool_calls: list[ToolCallBody] | None = None
    tool_name: str | None = None


class ToolFunction(BaseModel):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class Tool(BaseModel):
    type: str = "function"
    function: ToolFunction


class GenerationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    stream: bool = True
    options: Options | None = None
    format: str | dict[str, Any] | None = None
    keep_alive: str | float | None = None


class ChatRequest(GenerationRequest):
    messages: list[Message] | None = None
    tools: list[Tool] | None = None


class GenerateRequest(GenerationRequest):
    prompt: str | None = None
    system: str | None = None
    raw: bool = False
    suffix: str | None = None


class ShowRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    verbose: bool = False


class ReplyMessage(BaseModel):
    role: str = "assistant"
    content: str = ""
    tool_calls: list[ToolCallBody] | None = None


class Stats(BaseModel):
    """The counters on a final chunk (durations in nanoseconds)."""

    done_reason: str | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None


class ChatHead(BaseModel):
    model: str
    created_at: str
    message: ReplyMessage
    done: bool


class GenerateHead(BaseModel):
    model: str
    created_at: str
    response: str
    done: bool


# Stats listed first so that pydantic, which orders fields from the last base, puts them last.
class ChatChunk(Stats, ChatHead):
    """One line of /api/chat; the final one (done) carries the stats."""


class GenerateChunk(Stats, GenerateHead):
    """One line of /api/generate; the final one (done) carries the stats."""


class ModelEntry(BaseModel):
    name: str
    model: str
    modified_at: datetime
    size: int
    digest: str
    details: ModelDetails


class TagsResponse(BaseModel):
    models: list[ModelEntry]


class RunningModel(BaseModel):
    name: str
    model: str
    size: int
    digest: str
    details: ModelDetails
    expires_at: datetime
    size_vram: int = 0
    context_length: int


class PsResponse(BaseModel):
    models: list[RunningModel]


class ShowResponse(BaseModel):
    modelfile: str
    parameters: str
    template: str
    details: ModelDetails
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: datetime


class VersionResponse(BaseModel):
    version: str


class OllamaError(BaseModel):
    error: str


class EmbedRequest(BaseModel):
    """Ollama's /api/embed: one text or a list of them."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    input: str | list[str] | None = None
    truncate: bool = True
    dimensions: int | None = Field(default=None, ge=1)
    options: Options | None = None
    keep_alive: str | float | None = None


class EmbedResponse(BaseModel):
    model: str
    embeddings: list[list[float]]
    total_duration: int
    load_duration: int
    prompt_eval_count: int


class EmbeddingRequest(BaseModel):
    """Ollama's older /api/embeddings: one prompt."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    prompt: str = ""
    options: Options | None = None
    keep_alive: str | float | None = None


class EmbeddingResponse(BaseModel):
    embedding: list[float]
