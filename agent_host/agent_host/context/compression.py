"""Older turns folded into a running summary written by the model itself."""

from collections.abc import Awaitable, Callable
from typing import Any

from agent_host.context.budget import HistoryItem

# Sends messages to the model with a reply limit and returns its text.
Summariser = Callable[[list[dict[str, Any]], int], Awaitable[str]]
TokenCount = Callable[[str], int]

INSTRUCTION = (
    "You keep a running summary of a conversation. Merge the previous summary and the new messages into one "
    "short summary that keeps names, facts, numbers, decisions and open questions. Reply with the summary only."
)


def _transcript(items: list[HistoryItem]) -> str:
    return "\n".join(f"{item.role}: {item.content}" for item in items)


def _request(previous: str | None, items: list[HistoryItem]) -> list[dict[str, Any]]:
    body = f"Previous summary:\n{previous or '(none)'}\n\nNew messages:\n{_transcript(items)}"
    return [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": body}]


def _shorten(item: HistoryItem, limit: int) -> HistoryItem:
    """A message too long for one summary call keeps its beginning, cut by its own token ratio."""
    if item.tokens <= limit:
        return item
    keep = max(1, len(item.content) * limit // max(1, item.tokens))
    return HistoryItem(item.id, item.role, item.content[:keep] + " …", limit)


async def summarise(
    previous: str | None,
    items: list[HistoryItem],
    summariser: Summariser,
    count: TokenCount,
    window: int,
    summary_tokens: int,
) -> str:
    """Folds `items` into `previous` in as many model calls as the window needs; each call fits the window."""
    overhead = count(INSTRUCTION) + 40  # the request's framing words and role markers
    summary = previous
    chunk: list[HistoryItem] = []
    used = 0

    def room() -> int:
        return window - summary_tokens - overhead - (count(summary) if summary else 0)

    for item in items:
        item = _shorten(item, max(16, room() // 2))
        if chunk and used + item.cost > room():
            summary = (await summariser(_request(summary, chunk), summary_tokens)).strip() or summary
            chunk, used = [], 0
        chunk.append(item)
        used += item.cost
    if chunk:
        summary = (await summariser(_request(summary, chunk), summary_tokens)).strip() or summary
    return summary or ""
