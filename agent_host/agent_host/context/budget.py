"""The prompt budget: system, retrieved context, summary, history and the reply share the window."""

from dataclasses import dataclass, field
from typing import Any

from agent_host.context.tokens import MESSAGE_OVERHEAD, PROMPT_OVERHEAD
from agent_host.errors import ContextTooLarge

# Tokens the reply may never drop below: a reply shorter than this is no reply.
MIN_REPLY_TOKENS = 8
SUMMARY_PREFIX = "Summary of the earlier conversation:\n"


@dataclass(frozen=True)
class HistoryItem:
    """A stored message: `tokens` counts its content only."""

    id: int
    role: str
    content: str
    tokens: int

    @property
    def cost(self) -> int:
        return self.tokens + MESSAGE_OVERHEAD

    def as_message(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class PromptParts:
    """Everything that may go into one prompt, each with its token cost."""

    system: list[dict[str, Any]]
    system_tokens: int
    turn: list[dict[str, Any]]
    turn_tokens: int
    history: list[HistoryItem] = field(default_factory=list)
    summary: str | None = None
    summary_tokens: int = 0
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    retrieved_tokens: int = 0


@dataclass(frozen=True)
class PromptPlan:
    messages: list[dict[str, Any]]
    prompt_tokens: int
    reply_tokens: int
    history_kept: int
    trimmed: int


def reply_allowance(window: int, fixed_tokens: int, requested: int | None, default: int) -> int:
    """Tokens left for the reply; the newest turn must leave room for at least a short one."""
    room = window - fixed_tokens
    if room < MIN_REPLY_TOKENS:
        raise ContextTooLarge(
            f"the request needs {fixed_tokens} prompt tokens but the model's window is {window}; shorten the message"
        )
    if requested is not None:
        return min(requested, room)  # the client's limit is kept, however small
    return max(MIN_REPLY_TOKENS, min(default, window // 4, room))


def fixed_tokens(parts: PromptParts) -> int:
    """What every prompt carries whatever happens to the history."""
    summary = parts.summary_tokens + MESSAGE_OVERHEAD if parts.summary else 0
    return PROMPT_OVERHEAD + parts.system_tokens + parts.turn_tokens + parts.retrieved_tokens + summary


def history_fits(parts: PromptParts, window: int, reply: int) -> bool:
    return fixed_tokens(parts) + sum(item.cost for item in parts.history) + reply <= window


def split_for_summary(history: list[HistoryItem], keep_recent: int) -> tuple[list[HistoryItem], list[HistoryItem]]:
    """Older messages (to fold into the summary) and the recent ones kept verbatim."""
    if keep_recent <= 0:
        return history, []
    cut = max(0, len(history) - keep_recent)
    return history[:cut], history[cut:]


def assemble(parts: PromptParts, window: int, reply: int) -> PromptPlan:
    """The final prompt: the newest history that fits, oldest dropped first (and counted as trimmed)."""
    budget = window - reply - fixed_tokens(parts)
    kept: list[HistoryItem] = []
    for item in reversed(parts.history):
        if item.cost > budget:
            break
        kept.append(item)
        budget -= item.cost
    kept.reverse()
    summary = [{"role": "system", "content": SUMMARY_PREFIX + parts.summary}] if parts.summary else []
    messages = [
        *parts.system,
        *summary,
        *parts.retrieved,
        *[item.as_message() for item in kept],
        *parts.turn,
    ]
    prompt_tokens = window - reply - budget
    return PromptPlan(messages, prompt_tokens, reply, len(kept), len(parts.history) - len(kept))
