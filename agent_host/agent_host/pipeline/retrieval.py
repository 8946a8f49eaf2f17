"""The retrieve step: chunks from the user's collections, fitted into the prompt budget, numbered for citation."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_host.context.tokens import MESSAGE_OVERHEAD
from agent_host.rag.schemas import Citation, Hit, QueryRequest, QueryResult, RagOptions
from genailabs_accounts.models import Account

INSTRUCTIONS = (
    "Answer the user's question using only the numbered sources below. "
    "After each fact, cite its source number in square brackets, like [1]. "
    "If the sources do not contain the answer, say that the documents do not say."
)
# Chunks shorter than this after trimming are not worth their citation.
MIN_CHUNK_TOKENS = 24


class Retriever(Protocol):
    """Searches the collections the person may read (someone else's unshared one is not found)."""

    async def query(self, request: QueryRequest, person: Account) -> QueryResult: ...


@dataclass
class Retrieved:
    """What the retrieve step adds to a turn."""

    requested: bool = False
    collections: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    hits_found: int = 0

    @property
    def canned_reply(self) -> str | None:
        """The host's own answer when no source reaches the prompt: the model is not asked to guess."""
        if not self.requested or self.citations:
            return None
        if self.hits_found == 0:
            return nothing_found_reply(self.collections)
        return (
            f"I found {self.hits_found} relevant passages in {', '.join(self.collections)}, but none fits in what "
            "the model's context window leaves after the reply. Ask for a shorter reply (max_tokens) or start a "
            "new conversation, and ask again."
        )


def label(hit: Hit) -> str:
    where = [hit.source]
    if hit.page is not None:
        where.append(f"page {hit.page}")
    if hit.section:
        where.append(hit.section)
    return ", ".join(where)


def nothing_found_reply(collections: list[str]) -> str:
    names = ", ".join(collections)
    return (
        f"I could not find anything relevant to your question in the documents of {names}, "
        "so I will not guess. Try rephrasing the question, or add the document that answers it."
    )


async def retrieve_sources(
    rag: Retriever,
    person: Account,
    options: RagOptions,
    question: str,
    budget: int,
    count: Callable[[str], int],
    default_top_k: int,
) -> Retrieved:
    """Queries the collections and keeps the best chunks that fit in `budget` tokens."""
    result = await rag.query(
        QueryRequest(
            query=question,
            collections=options.collections,
            top_k=options.top_k or default_top_k,
            mode=options.mode,
            filters=options.filters,
            min_score=options.min_score,
        ),
        person,
    )
    retrieved = Retrieved(requested=True, collections=options.collections, hits_found=len(result.hits))
    room = budget - count(INSTRUCTIONS) - MESSAGE_OVERHEAD
    blocks: list[str] = []
    for hit in result.hits:
        index = len(retrieved.citations) + 1
        header = f"[{index}] ({label(hit)})\n"
        text = fit_text(hit.text, room - count(header) - 2, count)
        if text is None:
            continue  # too long for what is left; a shorter, lower-ranked chunk may still fit
        block = header + text
        room -= count(block) + 2
        blocks.append(block)
        retrieved.citations.append(
            Citation(
                index=index,
                source=hit.source,
                page=hit.page,
                section=hit.section,
                document_id=hit.document_id,
                collection=hit.collection,
                chunk_id=hit.chunk_id,
                score=hit.score,
                text=text,
            )
        )
    if blocks:
        content = INSTRUCTIONS + "\n\nSources:\n\n" + "\n\n".join(blocks)
        retrieved.messages = [{"role": "system", "content": content}]
    return retrieved


def fit_text(text: str, tokens: int, count: Callable[[str], int]) -> str | None:
    """The chunk, cut at a word boundary to `tokens` if it is longer; None if not even a useful part fits."""
    if tokens < MIN_CHUNK_TOKENS:
        return None
    if count(text) <= tokens:
        return text
    words = text.split(" ")
    low, high = 0, len(words)
    while low < high:  # the longest prefix of words that fits
        middle = (low + high + 1) // 2
        if count(" ".join(words[:middle]) + " …") <= tokens:
            low = middle
        else:
            high = middle - 1
    if low == 0:
        return None
    cut = " ".join(words[:low]) + " …"
    return cut if count(cut) >= MIN_CHUNK_TOKENS else None
