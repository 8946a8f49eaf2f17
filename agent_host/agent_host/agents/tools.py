"""The built-in tools, built per run by a factory closing over that run's dependencies."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from agent_host.agents.calculator import CalculationError, evaluate
from agent_host.agents.notes import NotesStore
from agent_host.agents.workers import run_in_worker
from agent_host.db import owner_id
from agent_host.errors import AgentHostError
from agent_host.rag.schemas import COLLECTION_NAME, CollectionPublic, QueryRequest, QueryResult
from genailabs_accounts.models import Account

HIT_PREVIEW_CHARS = 600
# String patterns make the runtime's grammar start each value with a real character: unconstrained, a small
# model under a grammar opens the string with whichever quote-led token it likes most ('"}' or '".'), so
# `"expression": "}}]...` instead of its number. They also keep the text free of quotes and control characters.
EXPRESSION_PATTERN = r"^[0-9a-z(+-][0-9a-z()+*/^%. ,-]*$"
TEXT_PATTERN = r'^[A-Za-z0-9][^"\\\n\r\t]*$'
TIMEZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+/-]*$"


class ToolFailure(Exception):
    """An expected failure of a tool: its message goes back to the model as an error result."""


class DocumentSearch(Protocol):
    """The part of the RAG service the search tools need (the agents' and the host MCP server's)."""

    async def query(self, request: QueryRequest, person: Account) -> QueryResult: ...

    async def list_collections(self, person: Account, everyone: bool = False) -> list[CollectionPublic]: ...


@dataclass(frozen=True)
class ToolDeps:
    rag: DocumentSearch | None
    notes: NotesStore | None
    # Whose run it is: the documents and notes they may read. None only when tools are listed, not run.
    person: Account | None
    session_id: str | None
    top_k: int = 4
    # The collections the run may search (the chat's selection); None: every collection the person may read.
    collections: list[str] | None = None


class SearchArgs(BaseModel):
    query: str = Field(min_length=1, max_length=1000, pattern=TEXT_PATTERN, description="what to look for")
    collection: str | None = Field(default=None, pattern=COLLECTION_NAME, description="one collection; all if omitted")


class CalculatorArgs(BaseModel):
    expression: str = Field(
        min_length=1, max_length=200, pattern=EXPRESSION_PATTERN, description="arithmetic, e.g. (2+3)*4 or 2^10"
    )


class TimeArgs(BaseModel):
    timezone: str | None = Field(
        default=None, pattern=TIMEZONE_PATTERN, description="IANA name such as Europe/Paris; UTC when omitted"
    )


class NoteArgs(BaseModel):
    text: str = Field(min_length=1, max_length=2000, pattern=TEXT_PATTERN, description="the note to keep")


class NoArgs(BaseModel):
    pass


def builtin_tools(deps: ToolDeps) -> list[BaseTool]:
    """search_documents, calculator, current_time, add_note and list_notes, bound to this run's deps."""

    async def search_documents(query: str, collection: str | None = None) -> str:
        """Search the user's uploaded documents and return the most relevant passages."""
        if deps.rag is None or deps.person is None:
            raise ToolFailure("document search is unavailable: RAG is not enabled on this host")
        try:
            scope = (
                deps.collections
                if deps.collections is not None
                else [c.name for c in await deps.rag.list_collections(deps.person)]
            )
            names = [collection] if collection else scope
            if not names:
                raise ToolFailure("there are no document collections yet: upload documents first")
            request = QueryRequest(query=query, collections=names, top_k=deps.top_k)
            result = await deps.rag.query(request, deps.person)
        except AgentHostError as exc:
            raise ToolFailure(exc.message) from None
        if not result.hits:
            return f"no passage in {', '.join(names)} matches {query!r}"
        lines = []
        for hit in result.hits:
            where = hit.source + (f" p.{hit.page}" if hit.page else "") + (f" ({hit.section})" if hit.section else "")
            lines.append(f"[{hit.rank}] {where}: {hit.text[:HIT_PREVIEW_CHARS]}")
        return "\n".join(lines)

    async def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression such as (2+3)*4, sqrt(2) or 2^10."""
        # In a worker process: the run's tool timeout kills it, where a thread would keep computing.
        try:
            return await run_in_worker(evaluate, expression)
        except CalculationError as exc:
            raise ToolFailure(str(exc)) from None

    async def current_time(timezone: str | None = None) -> str:
        """Get the current date and time, optionally in a timezone such as Asia/Tokyo."""
        try:
            zone = ZoneInfo(timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ToolFailure(f"unknown timezone {timezone!r}: use an IANA name such as Europe/Paris") from None
        now = datetime.now(zone)
        return f"{now.strftime('%A %d %B %Y, %H:%M:%S')} ({zone.key}, {now.isoformat(timespec='seconds')})"

    def session_notes() -> tuple[NotesStore, str, Account]:
        if deps.notes is None:
            raise ToolFailure("notes are unavailable: this host has no notes database")
        if deps.session_id is None or deps.person is None:
            raise ToolFailure("notes need a session: run the agent with a session_id")
        return deps.notes, deps.session_id, deps.person

    async def add_note(text: str) -> str:
        """Save a short note in this session for later."""
        store, session_id, person = session_notes()
        try:
            note = await store.add(owner_id(person), session_id, text)
        except AgentHostError as exc:
            raise ToolFailure(exc.message) from None
        return f"saved note {note.number}"

    async def list_notes() -> str:
        """List the notes saved in this session."""
        store, session_id, person = session_notes()
        try:
            notes = await store.list_notes(owner_id(person), session_id)
        except AgentHostError as exc:
            raise ToolFailure(exc.message) from None
        if not notes:
            return "this session has no notes yet"
        return "\n".join(f"{note.number}. {note.text}" for note in notes)

    functions: list[tuple[Callable[..., Awaitable[str]], type[BaseModel]]] = [
        (search_documents, SearchArgs),
        (calculator, CalculatorArgs),
        (current_time, TimeArgs),
        (add_note, NoteArgs),
        (list_notes, NoArgs),
    ]
    return [
        StructuredTool.from_function(coroutine=function, args_schema=schema, description=function.__doc__)
        for function, schema in functions
    ]
