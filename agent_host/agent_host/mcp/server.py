"""The host's own tools as an MCP server at `/mcp` (streamable HTTP), behind the same credentials as the API.

The tools act as the person the credential belongs to: their sessions, the collections they may read.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field, ValidationError
from starlette.datastructures import State
from starlette.requests import HTTPConnection
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from agent_host.agents.tools import DocumentSearch
from agent_host.api.errors import error_response
from agent_host.config import Settings
from agent_host.db import owner_id
from agent_host.deps import authenticate_connection, host_state
from agent_host.errors import AgentHostError
from agent_host.mcp.config import describe_errors
from agent_host.rag.schemas import CollectionPublic, QueryRequest, QueryResult
from agent_host.schemas import MessagePublic, SessionPublic
from agent_host.sessions.store import SessionStore
from genailabs_accounts.models import Account

# Where HostMcpEndpoint leaves the person for the tools: the request's scope state, which the MCP
# transport hands each tool call as its request context.
PERSON_STATE = "person"


@dataclass(frozen=True)
class HostToolDeps:
    sessions: SessionStore
    rag: DocumentSearch | None  # None while the host runs without RAG


@contextmanager
def tool_errors() -> Iterator[None]:
    """Domain failures become tool errors the model reads, not crashes."""
    try:
        yield
    except AgentHostError as exc:
        raise ToolError(exc.message) from None
    except ValidationError as exc:
        raise ToolError(describe_errors(exc)) from None


def _person(ctx: Context[Any, Any]) -> Account:
    """The person whose credential opened this request (HostMcpEndpoint put it there)."""
    request = ctx.request_context.request
    person = getattr(getattr(request, "state", None), PERSON_STATE, None)
    if not isinstance(person, Account):
        raise ToolError("no signed-in person on this request")
    return person


def build_host_mcp(deps: HostToolDeps) -> MCPServer:
    """The server's tools, closed over the host's session store and RAG service."""
    mcp = MCPServer(
        "genailabs-agent-host",
        instructions="Search the user's documents and read their chat sessions in the GenAILabs agent host.",
        log_level="WARNING",
    )

    def rag() -> DocumentSearch:
        if deps.rag is None:
            raise ToolError("document search is not available: this agent host runs without RAG")
        return deps.rag

    @mcp.tool()
    async def search_documents(
        ctx: Context[Any, Any],
        query: Annotated[str, Field(min_length=1, max_length=8000)],
        collections: list[str] | None = None,
        top_k: Annotated[int, Field(ge=1, le=20)] = 5,
    ) -> QueryResult:
        """Search the user's document collections and return the best matching passages with their sources.

        Args:
            query: what to look for, in plain words.
            collections: names of the collections to search; all the user may read when omitted.
            top_k: how many passages to return (1-20).
        """
        service, person = rag(), _person(ctx)
        with tool_errors():
            names = collections or [collection.name for collection in await service.list_collections(person)]
            if not names:
                raise ToolError("there are no document collections yet: upload documents first")
            return await service.query(QueryRequest(query=query, collections=names, top_k=top_k), person)

    @mcp.tool()
    async def list_collections(ctx: Context[Any, Any]) -> list[CollectionPublic]:
        """List the document collections the user may read (their own and shared ones) with their counts."""
        service, person = rag(), _person(ctx)
        with tool_errors():
            return await service.list_collections(person)

    @mcp.tool()
    async def list_sessions(
        ctx: Context[Any, Any], limit: Annotated[int, Field(ge=1, le=200)] = 20
    ) -> list[SessionPublic]:
        """List the most recently used chat sessions.

        Args:
            limit: how many sessions to return (1-200).
        """
        with tool_errors():
            return await deps.sessions.list_sessions(owner_id(_person(ctx)), limit)

    @mcp.tool()
    async def get_session_messages(
        ctx: Context[Any, Any], session_id: str, limit: Annotated[int, Field(ge=1, le=500)] = 50
    ) -> list[MessagePublic]:
        """Read the latest messages of one chat session, oldest first.

        Args:
            session_id: the session's id, as list_sessions gives it.
            limit: how many of the latest messages to return (1-500).
        """
        with tool_errors():
            return (await deps.sessions.messages(owner_id(_person(ctx)), session_id))[-limit:]

    return mcp


@asynccontextmanager
async def serve_host_mcp(state: State) -> AsyncIterator[ASGIApp]:
    """Runs the streamable-HTTP session manager for the app's lifetime; yields the handler `/mcp` forwards to."""
    mcp = build_host_mcp(HostToolDeps(sessions=state.session_store, rag=getattr(state, "rag", None)))
    # Stateless: no per-client state in the host, so replicas behind a load balancer serve any request.
    # The Host-header check is off because the bearer key already stops a rebinding page (it cannot know the key),
    # and the check would refuse the names the host is reached by in compose (agent_host:8000).
    mcp.streamable_http_app(
        stateless_http=True, transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    async with mcp.session_manager.run():
        yield mcp.session_manager.handle_request


class HostMcpEndpoint:
    """`/mcp`: finds the person from the credential, then hands the request to the lifespan's session manager."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            person = await authenticate_connection(HTTPConnection(scope))
        except AgentHostError as exc:
            await error_response(exc.status, exc.type, exc.message)(scope, receive, send)
            return
        try:
            handler = host_state(HTTPConnection(scope)).mcp_endpoint
        except RuntimeError:
            await error_response(503, "mcp_unavailable", "the MCP endpoint is not running")(scope, receive, send)
            return
        scope.setdefault("state", {})[PERSON_STATE] = person
        await handler(scope, receive, send)


def host_mcp_route(settings: Settings) -> Route:
    """`/mcp` as one exact route: a Mount would claim every path below it, `/mcp/servers` included."""
    return Route("/mcp", HostMcpEndpoint(settings), include_in_schema=False)
