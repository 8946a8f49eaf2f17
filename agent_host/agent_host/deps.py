"""The host's typed state, built once in the lifespan, and who is asking: handed to routes as Annotated aliases."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.requests import HTTPConnection
from openai import AsyncOpenAI
from starlette.types import ASGIApp

from agent_host.agents.service import AgentService
from agent_host.config import Settings
from agent_host.errors import Forbidden, Unauthorized
from agent_host.mcp.manager import McpManager
from agent_host.people.auth import is_operator
from agent_host.people.identity import acting_for
from agent_host.people.service import People
from agent_host.pipeline.chat import ChatPipeline
from agent_host.rag.service import RagService
from agent_host.sessions.store import SessionStore
from genailabs_accounts.models import Account

STATE_KEY = "host"  # the lifespan yields {STATE_KEY: AppState}; Starlette hands it to every request's scope


@dataclass(frozen=True)
class AppState:
    """Everything the lifespan builds; routes get its fields through the aliases below."""

    settings: Settings
    chat_client: AsyncOpenAI
    session_store: SessionStore
    pipeline: ChatPipeline
    people: People
    rag: RagService
    mcp: McpManager
    mcp_endpoint: ASGIApp  # the host's own MCP server, which /mcp forwards to
    agents: AgentService


def host_state(connection: HTTPConnection) -> AppState:
    state = connection.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(state, AppState):
        raise RuntimeError("the agent host's lifespan has not run: there is no application state")
    return state


StateDep = Annotated[AppState, Depends(host_state)]


def _settings(state: StateDep) -> Settings:
    return state.settings


def _chat_client(state: StateDep) -> AsyncOpenAI:
    return state.chat_client


def _session_store(state: StateDep) -> SessionStore:
    return state.session_store


def _pipeline(state: StateDep) -> ChatPipeline:
    return state.pipeline


def _people(state: StateDep) -> People:
    return state.people


def _mcp(state: StateDep) -> McpManager:
    return state.mcp


def _rag(state: StateDep) -> RagService:
    return state.rag


def _agents(state: StateDep) -> AgentService:
    return state.agents


SettingsDep = Annotated[Settings, Depends(_settings)]
ChatClientDep = Annotated[AsyncOpenAI, Depends(_chat_client)]
SessionStoreDep = Annotated[SessionStore, Depends(_session_store)]
PipelineDep = Annotated[ChatPipeline, Depends(_pipeline)]
PeopleDep = Annotated[People, Depends(_people)]
McpManagerDep = Annotated[McpManager, Depends(_mcp)]
RagServiceDep = Annotated[RagService, Depends(_rag)]
AgentServiceDep = Annotated[AgentService, Depends(_agents)]


def bearer_token(connection: HTTPConnection, allow_query_key: bool = False) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Only a WebSocket may use ?api_key=: browsers cannot set its headers. In a URL a key lands in access logs.
    return connection.query_params.get("api_key") if allow_query_key else None


async def authenticate_connection(connection: HTTPConnection) -> Account:
    """The person a request or WebSocket is from; the proxy calls made while serving it are counted as theirs.

    HTTP routes take the credential from `Authorization: Bearer` only; a WebSocket (/ws/chat) may also send
    `?api_key=`, since browsers cannot set its headers. Raises Unauthorized (401) or AccountsUnreachable (503).
    """
    is_websocket = connection.scope["type"] == "websocket"
    if not is_websocket and "api_key" in connection.query_params:
        raise Unauthorized("?api_key= is accepted on /ws/chat only: send Authorization: Bearer <token or API key>")
    credential = bearer_token(connection, allow_query_key=is_websocket)
    if not credential:
        raise Unauthorized("missing credential: send Authorization: Bearer <sign-in token or API key>")
    account = await host_state(connection).people.auth.resolve(credential)
    # Read by the proxy clients' request hook (people/identity.py), in this task and the tasks it starts.
    acting_for.set(None if is_operator(account) else account.id)
    return account


async def current_user(request: Request) -> Account:
    return await authenticate_connection(request)


CurrentUserDep = Annotated[Account, Depends(current_user)]


async def require_admin(user: CurrentUserDep, settings: SettingsDep) -> Account:
    """Admins only: 403 for everyone else."""
    if user.is_admin:
        return user
    if settings.agent_host_admin_key is None:
        raise Forbidden("this needs an admin: sign in as one (or set AGENT_HOST_ADMIN_KEY on the host and send it)")
    raise Forbidden("this needs an admin: sign in as one, or send the operator's AGENT_HOST_ADMIN_KEY")


AdminDep = Annotated[Account, Depends(require_admin)]
