"""Lifespan-built clients, handed to routes through Annotated aliases."""

import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.requests import HTTPConnection
from openai import AsyncOpenAI
from pydantic import SecretStr

from agent_host.agents.service import AgentService
from agent_host.config import Settings
from agent_host.errors import Forbidden, Unauthorized
from agent_host.mcp.manager import McpManager
from agent_host.pipeline.chat import ChatPipeline
from agent_host.rag.service import RagService
from agent_host.sessions.store import SessionStore
from genailabs_accounts.models import Account


def _settings(request: HTTPConnection) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _chat_client(request: HTTPConnection) -> AsyncOpenAI:
    return request.app.state.chat_client  # type: ignore[no-any-return]


def _session_store(request: HTTPConnection) -> SessionStore:
    return request.app.state.session_store  # type: ignore[no-any-return]


def _pipeline(request: HTTPConnection) -> ChatPipeline:
    return request.app.state.pipeline  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(_settings)]
ChatClientDep = Annotated[AsyncOpenAI, Depends(_chat_client)]
SessionStoreDep = Annotated[SessionStore, Depends(_session_store)]
PipelineDep = Annotated[ChatPipeline, Depends(_pipeline)]


def bearer_token(connection: HTTPConnection, allow_query_key: bool = False) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Only a WebSocket may use ?api_key=: browsers cannot set its headers. In a URL a key lands in access logs.
    return connection.query_params.get("api_key") if allow_query_key else None


def _matches(token: str | None, key: SecretStr | None) -> bool:
    expected = key.get_secret_value().encode() if key is not None else b""
    return bool(token and expected) and secrets.compare_digest(str(token).encode(), expected)


def is_authorised(connection: HTTPConnection, settings: Settings, allow_query_key: bool = False) -> bool:
    """The API key or the administrator's key, which can do everything the API key can."""
    token = bearer_token(connection, allow_query_key)
    return _matches(token, settings.agent_host_api_key) or _matches(token, settings.agent_host_admin_key)


# Transitional, until accounts land: the operator keys stand for one placeholder person.
_OPERATOR = Account(
    id="00000000-0000-0000-0000-000000000000",
    login="operator",
    name="operator",
    role="admin",
    disabled=False,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)


async def authenticate_connection(connection: HTTPConnection) -> Account:
    """The person a request or WebSocket is from, or Unauthorized (401).

    HTTP routes take the credential from `Authorization: Bearer` only; a WebSocket (/ws/chat) may also send
    `?api_key=`, since browsers cannot set its headers.
    """
    is_websocket = connection.scope["type"] == "websocket"
    if not is_websocket and "api_key" in connection.query_params:
        raise Unauthorized("?api_key= is accepted on /ws/chat only: send Authorization: Bearer <token or API key>")
    settings: Settings = connection.app.state.settings
    token = bearer_token(connection, allow_query_key=is_websocket)
    if _matches(token, settings.agent_host_admin_key):
        return _OPERATOR
    if _matches(token, settings.agent_host_api_key):
        return _OPERATOR.model_copy(update={"role": "user"})
    raise Unauthorized("missing or wrong credential: send Authorization: Bearer <sign-in token or API key>")


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


async def require_api_key(user: CurrentUserDep) -> None:
    """Transitional alias of CurrentUserDep for app.py's router dependencies."""


def _mcp(request: HTTPConnection) -> McpManager:
    return request.app.state.mcp  # type: ignore[no-any-return]


McpManagerDep = Annotated[McpManager, Depends(_mcp)]


def _rag(request: HTTPConnection) -> RagService:
    return request.app.state.rag  # type: ignore[no-any-return]


RagServiceDep = Annotated[RagService, Depends(_rag)]


def _agents(request: HTTPConnection) -> AgentService:
    return request.app.state.agents  # type: ignore[no-any-return]


AgentServiceDep = Annotated[AgentService, Depends(_agents)]
