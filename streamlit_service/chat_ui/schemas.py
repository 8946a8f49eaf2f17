"""The UI's data: conversations, messages, generation parameters and per-answer facts."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from chat_ui.host_models import AnswerMeta

Role = Literal["user", "assistant"]

# Limits enforced before a request leaves the page.
TEMPERATURE_RANGE = (0.0, 2.0)
TOP_P_RANGE = (0.0, 1.0)
SYSTEM_PROMPT_MAX = 8000
MESSAGE_MAX = 32000


class GenerationParams(BaseModel):
    model: str = Field(min_length=1)
    temperature: float = Field(default=0.7, ge=TEMPERATURE_RANGE[0], le=TEMPERATURE_RANGE[1])
    max_tokens: int = Field(default=512, ge=1, le=32768)
    top_p: float = Field(default=1.0, gt=TOP_P_RANGE[0], le=TOP_P_RANGE[1])
    system_prompt: str = Field(default="", max_length=SYSTEM_PROMPT_MAX)


class Facts(BaseModel):
    """What the stack did for one answer, shown collapsed under it (what is not known is left out)."""

    model: str = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    stopped: bool = False
    # The proxy answered from its response cache (a deterministic request it had answered before).
    cached: bool = False
    # Agent-host mode: how the prompt was fitted into the model's window (x-context-* headers).
    context_tokens: int | None = None
    context_window: int | None = None
    summarised_messages: int | None = None
    trimmed_messages: int | None = None

    @property
    def tokens_per_s(self) -> float | None:
        if not self.tokens_out or self.ttft_ms is None or self.total_ms is None:
            return None
        generating = (self.total_ms - self.ttft_ms) / 1000
        return self.tokens_out / generating if generating > 0 else None

    def line(self) -> str:
        def fmt(value: float | None, unit: str, digits: int = 0) -> str:
            return "–" if value is None else f"{value:.{digits}f}{unit}"

        parts = [f"model **{self.model}**"] if self.model else []
        if self.tokens_in is not None or self.tokens_out is not None:
            parts.append(f"tokens in {fmt(self.tokens_in, '')} / out {fmt(self.tokens_out, '')}")
        if self.ttft_ms is not None:
            parts.append(f"TTFT {fmt(self.ttft_ms, ' ms')}")
        if self.total_ms is not None:
            parts.append(f"total {fmt(self.total_ms, ' ms')}")
        if self.tokens_per_s is not None:
            parts.append(fmt(self.tokens_per_s, " tok/s", 1))
        if self.context_window:
            parts.append(f"context {fmt(self.context_tokens, '')}/{self.context_window} tokens")
        if self.summarised_messages:
            parts.append(f"{self.summarised_messages} messages summarised")
        if self.trimmed_messages:
            parts.append(f"{self.trimmed_messages} messages trimmed")
        if self.cached:
            parts.append("cached")
        if self.stopped:
            parts.append("stopped by you")
        return " · ".join(parts)

    def with_context_of(self, kept: "Facts | None") -> "Facts":
        """These measured facts with the context the host kept (the host's word wins where it has one)."""
        if kept is None:
            return self
        context = {
            name: getattr(kept, name)
            for name in ("context_tokens", "context_window", "summarised_messages", "trimmed_messages")
            if getattr(kept, name) is not None
        }
        if kept.cached:
            context["cached"] = True
        return self.model_copy(update=context)


class Message(BaseModel):
    id: int  # negative: shown on the page, not stored (yet)
    role: str
    content: str
    created_at: datetime
    facts: Facts | None = None
    incomplete: bool = False  # the answer was stopped before its end
    meta: AnswerMeta | None = None  # agent-host mode: its sources and an agent's steps


class Conversation(BaseModel):
    id: str  # a number in proxy-only mode, the host's session id in agent-host mode
    title: str
    params: GenerationParams
    created_at: datetime
    updated_at: datetime
    collections: list[str] = Field(default_factory=list)  # agent-host mode: the documents it answers from


class ConversationSummary(BaseModel):
    id: str
    title: str
    updated_at: datetime
