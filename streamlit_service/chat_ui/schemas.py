"""The UI's data: conversations, messages, generation parameters and per-answer facts."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

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
    """What the stack did for one answer, shown collapsed under it."""

    model: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    ttft_ms: float | None = None
    total_ms: float
    stopped: bool = False
    # Agent-host mode: how the prompt was fitted into the model's window (x-context-* headers).
    context_tokens: int | None = None
    context_window: int | None = None
    summarised_messages: int | None = None
    trimmed_messages: int | None = None

    @property
    def tokens_per_s(self) -> float | None:
        if not self.tokens_out or self.ttft_ms is None:
            return None
        generating = (self.total_ms - self.ttft_ms) / 1000
        return self.tokens_out / generating if generating > 0 else None

    def line(self) -> str:
        def fmt(value: float | None, unit: str, digits: int = 0) -> str:
            return "–" if value is None else f"{value:.{digits}f}{unit}"

        parts = [
            f"model **{self.model}**",
            f"tokens in {fmt(self.tokens_in, '')} / out {fmt(self.tokens_out, '')}",
            f"TTFT {fmt(self.ttft_ms, ' ms')}",
            f"total {fmt(self.total_ms, ' ms')}",
            f"{fmt(self.tokens_per_s, ' tok/s', 1)}",
        ]
        if self.context_window:
            parts.append(f"context {fmt(self.context_tokens, '')}/{self.context_window} tokens")
        if self.summarised_messages:
            parts.append(f"{self.summarised_messages} messages summarised")
        if self.trimmed_messages:
            parts.append(f"{self.trimmed_messages} messages trimmed")
        if self.stopped:
            parts.append("stopped by you")
        return " · ".join(parts)


class Message(BaseModel):
    id: int
    role: Role
    content: str
    created_at: datetime
    facts: Facts | None = None


class Conversation(BaseModel):
    id: int
    title: str
    params: GenerationParams
    created_at: datetime
    updated_at: datetime


class ConversationSummary(BaseModel):
    id: int
    title: str
    updated_at: datetime
