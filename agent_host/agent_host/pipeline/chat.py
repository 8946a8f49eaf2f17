"""One chat turn: load the session → retrieve (RAG) → build the prompt → call the model → store.

Agent runs (tools) take their own path: agents/.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, cast

import anyio
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from agent_host.config import Settings
from agent_host.context.budget import (
    SUMMARY_PREFIX,
    PromptParts,
    assemble,
    fixed_tokens,
    history_fits,
    reply_allowance,
    split_for_summary,
)
from agent_host.context.compression import summarise
from agent_host.context.tokens import TokenCounter
from agent_host.context.windows import ModelCatalog
from agent_host.db import owner_id
from agent_host.errors import AgentHostError, DatabaseUnavailable, SessionNotFound, VectorStoreUnavailable
from agent_host.pipeline.canned import CannedStream, ChunkStream, canned_completion
from agent_host.pipeline.history import LoadedHistory, load_history
from agent_host.pipeline.retrieval import Retrieved, Retriever, retrieve_sources
from agent_host.pipeline.upstream import upstream_errors
from agent_host.rag.schemas import RagOptions
from agent_host.schemas import ChatCompletionRequest, ContextFacts
from agent_host.sessions.store import NewMessage, SessionStore
from genailabs_accounts.models import Account

log = logging.getLogger(__name__)
SYSTEM_ROLES = {"system", "developer"}
MIN_USABLE_WINDOW = 64
# Counts an edited message of a session that names no model: the lab's embedded model's tokenizer.
COUNTING_MODEL = "smollm2:135m"
# LiteLLM sends it with an answer from its response cache only (the hub caches deterministic requests).
CACHE_HIT_HEADER = "x-litellm-cache-key"


@dataclass
class PreparedTurn:
    request: ChatCompletionRequest
    person: Account
    messages: list[dict[str, Any]]
    max_tokens: int
    facts: ContextFacts
    # The session the turn is stored in (None: stateless, or the database is down), and the new messages
    # stored before the answer (none when regenerating: the user's message is stored already).
    session_id: str | None = None
    to_store: list[NewMessage] = field(default_factory=list)
    retrieved: Retrieved = field(default_factory=Retrieved)

    @property
    def canned_reply(self) -> str | None:
        return self.retrieved.canned_reply

    @property
    def citations(self) -> list[dict[str, Any]] | None:
        """What [1], [2] in the answer refer to; None when the turn did not retrieve."""
        if not self.retrieved.requested:
            return None
        return [citation.model_dump() for citation in self.retrieved.citations]

    def answer_metadata(self) -> dict[str, Any]:
        """Stored with the answer (agent_messages.metadata) and returned with it: its facts and citations."""
        metadata: dict[str, Any] = {"context": self.facts.model_dump(mode="json")}
        if self.citations is not None:
            metadata["citations"] = self.citations
        return metadata


class ChatPipeline:
    def __init__(
        self, client: AsyncOpenAI, store: SessionStore, catalog: ModelCatalog, counter: TokenCounter, settings: Settings
    ) -> None:
        self.client = client
        self.store = store
        self.catalog = catalog
        self.counter = counter
        self.settings = settings
        self.rag: Retriever | None = None  # set once the RAG service is open
        self._background: set[asyncio.Future[None]] = set()

    async def prepare(self, request: ChatCompletionRequest, person: Account) -> PreparedTurn:
        """Everything before the model call; a bad request or session fails here, before any byte is sent."""
        model = request.model
        window = await self.catalog.window(model)
        # Planned against a slightly smaller window: a runtime's template may add tokens of its own.
        usable = max(MIN_USABLE_WINDOW, window - self.settings.context_margin)
        incoming = [message.model_dump(exclude_none=True) for message in request.messages]
        system = [message for message in incoming if message["role"] in SYSTEM_ROLES]
        turn = [message for message in incoming if message["role"] not in SYSTEM_ROLES]
        loaded = await load_history(self.store, request, person, system, turn, partial(self._count_content, model))
        system, turn = loaded.system, loaded.turn

        parts = PromptParts(
            system=system,
            system_tokens=self._cost(model, system),
            turn=turn,
            turn_tokens=self._cost(model, turn),
            history=loaded.history,
            summary=loaded.summary,
            summary_tokens=self.counter.count(model, SUMMARY_PREFIX + loaded.summary) if loaded.summary else 0,
        )
        requested = request.max_tokens or request.max_completion_tokens
        retrieved = await self._retrieve(request, person, loaded, parts, usable, requested)
        parts = replace(parts, retrieved=retrieved.messages, retrieved_tokens=self._cost(model, retrieved.messages))
        reply = reply_allowance(usable, fixed_tokens(parts), requested, self.settings.reply_tokens)
        summarised = 0
        summary_updated = False
        if loaded.session_id is not None and not history_fits(parts, usable, reply):
            try:
                parts, summarised = await self._compress(model, person, loaded.session_id, parts, usable)
            except AgentHostError as exc:  # no summary this time: the oldest messages are trimmed instead
                log.warning("session %s: summary failed (%s); trimming instead", loaded.session_id, exc.message)
            summary_updated = summarised > 0
            reply = reply_allowance(usable, fixed_tokens(parts), requested, self.settings.reply_tokens)
        plan = assemble(parts, usable, reply)
        facts = ContextFacts(
            window=window,
            prompt_tokens=plan.prompt_tokens,
            reply_tokens=plan.reply_tokens,
            history_messages=plan.history_kept,
            summarised_messages=summarised,
            trimmed_messages=plan.trimmed,
            summary_updated=summary_updated,
            session_id=request.session_id,
            session_stored=loaded.session_id is not None,
            warning=loaded.warning,
            sources=len(retrieved.citations),
        )
        if retrieved.hits_found and not retrieved.citations:
            facts.warning = f"{retrieved.hits_found} relevant passages found, but none fits the model's context window"
        to_store = []
        if loaded.session_id is not None and not request.regenerate:
            to_store = [
                NewMessage(str(m["role"]), str(m.get("content") or ""), self._count_content(model, m)) for m in turn
            ]
        return PreparedTurn(
            request, person, plan.messages, plan.reply_tokens, facts, loaded.session_id, to_store, retrieved
        )

    async def open_stream(
        self, turn: PreparedTurn, include_usage: bool = True
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        """The answer's chunks, for HTTP (SSE) and WebSocket alike; the proxy's stream is started before this
        returns, so its failure is an error before any byte; the answer is stored even if the consumer leaves."""
        return self.relay(turn, await self._start_stream(turn), include_usage)

    async def _retrieve(
        self,
        request: ChatCompletionRequest,
        person: Account,
        loaded: LoadedHistory,
        parts: PromptParts,
        usable: int,
        requested: int | None,
    ) -> Retrieved:
        """The retrieve step: the request's `rag`, else the session's collections, else nothing."""
        options = request.rag or (RagOptions(collections=loaded.collections) if loaded.collections else None)
        if options is None:
            return Retrieved()
        if self.rag is None:
            raise VectorStoreUnavailable("retrieval is not available: the RAG service did not start (see the host log)")
        reply = reply_allowance(usable, fixed_tokens(parts), requested, self.settings.reply_tokens)
        budget = min(int(usable * self.settings.rag_context_share), usable - fixed_tokens(parts) - reply)
        question = last_user_text(loaded.turn)
        model = request.model
        return await retrieve_sources(
            self.rag,
            person,
            options,
            question,
            budget,
            lambda text: self.counter.count(model, text),
            self.settings.rag_top_k,
        )

    async def _compress(
        self, model: str, person: Account, session_id: str, parts: PromptParts, window: int
    ) -> tuple[PromptParts, int]:
        older, recent = split_for_summary(parts.history, self.settings.recent_messages)
        if not older:
            return parts, 0

        async def call_model(messages: list[dict[str, Any]], max_tokens: int) -> str:
            async with upstream_errors():
                reply = await self.client.chat.completions.create(
                    model=model,
                    messages=cast(Any, messages),
                    max_tokens=max_tokens,
                    temperature=0.2,
                )
            return reply.choices[0].message.content or ""

        summary = await summarise(
            parts.summary,
            older,
            call_model,
            lambda text: self.counter.count(model, text),
            window,
            self.settings.summary_tokens,
        )
        await self.store.save_summary(owner_id(person), session_id, summary, older[-1].id, len(older))
        log.info("session %s: %d messages folded into the summary", session_id, len(older))
        tokens = self.counter.count(model, SUMMARY_PREFIX + summary)
        return replace(parts, history=recent, summary=summary, summary_tokens=tokens), len(older)

    async def complete(self, turn: PreparedTurn) -> ChatCompletion:
        if turn.canned_reply is not None:
            response = canned_completion(turn.request.model, turn.canned_reply)
            await self.record(turn, turn.canned_reply, incomplete=False)
            return response
        async with upstream_errors():
            raw = await self.client.chat.completions.with_raw_response.create(
                model=turn.request.model,
                messages=cast(Any, turn.messages),
                max_tokens=turn.max_tokens,
                extra_body=turn.request.upstream_options() or None,
            )
        turn.facts.cached = bool(raw.headers.get(CACHE_HIT_HEADER))
        response = raw.parse()
        reply = response.choices[0].message.content or "" if response.choices else ""
        await self.record(turn, reply, incomplete=False)
        return response

    async def _start_stream(self, turn: PreparedTurn) -> ChunkStream:
        if turn.canned_reply is not None:
            return CannedStream(turn.request.model, turn.canned_reply)
        async with upstream_errors():
            stream = await self.client.chat.completions.create(
                model=turn.request.model,
                messages=cast(Any, turn.messages),
                max_tokens=turn.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
                extra_body=turn.request.upstream_options() or None,
            )
        # The headers arrived with the stream's start, before the host sends its own.
        turn.facts.cached = bool(stream.response.headers.get(CACHE_HIT_HEADER))
        return stream

    async def relay(
        self, turn: PreparedTurn, upstream: ChunkStream, include_usage: bool = True
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        """Yields the proxy's chunks; what was generated is stored even if the consumer goes away."""
        parts: list[str] = []
        completed = False
        try:
            async with upstream_errors():
                async for chunk in upstream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        parts.append(chunk.choices[0].delta.content)
                    if chunk.choices or include_usage:
                        yield chunk
            completed = True
        finally:
            with anyio.CancelScope(shield=True):
                await upstream.close()  # tells the proxy, and so the runtime, to stop generating
                if parts or completed:
                    task = asyncio.ensure_future(self.record(turn, "".join(parts), incomplete=not completed))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                    await asyncio.shield(task)

    async def record(self, turn: PreparedTurn, reply: str, incomplete: bool) -> None:
        """Post-process: store the turn and the reply together (with its citations and facts), or nothing."""
        session_id = turn.session_id
        if session_id is None:
            return
        tokens = self.counter.count(turn.request.model, reply)
        answer = NewMessage("assistant", reply, tokens, incomplete, turn.answer_metadata())
        try:
            await self.store.append(owner_id(turn.person), session_id, [*turn.to_store, answer])
        except (DatabaseUnavailable, SessionNotFound) as exc:
            turn.facts.session_stored = False
            turn.facts.warning = f"this turn was not stored: {exc.message}"
            log.warning("session %s: turn not stored: %s", session_id, exc.message)

    def message_tokens(self, model: str | None, content: str) -> int:
        """An edited message's stored count (its content only, as a turn counts it)."""
        return self.counter.count(model or COUNTING_MODEL, content)

    def _count_content(self, model: str, message: dict[str, Any]) -> int:
        return self.counter.count_message(model, message) - self.counter.count_message(model, {"content": ""})

    def _cost(self, model: str, messages: list[dict[str, Any]]) -> int:
        return sum(self.counter.count_message(model, message) for message in messages)


def last_user_text(turn: list[dict[str, Any]]) -> str:
    """The newest user message as plain text (the parts' text for multi-part content)."""
    for message in reversed(turn):
        if message["role"] == "user":
            content = message.get("content") or ""
            if isinstance(content, list):
                return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            return str(content)
    return ""
