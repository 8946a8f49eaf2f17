"""The FastAPI application: clients built once in the lifespan, one router per capability."""

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import Depends, FastAPI
from openai import AsyncOpenAI

from agent_host.agents.registry import load_agents
from agent_host.agents.service import build_agent_service
from agent_host.api.errors import error_responses, install_error_handlers
from agent_host.api.middleware import RequestContextMiddleware, allow_large_bodies
from agent_host.api.routes import agents, chat, health, mcp, rag, sessions, ws
from agent_host.config import Settings, get_settings
from agent_host.context.tokens import TokenCounter
from agent_host.context.windows import ModelCatalog
from agent_host.deps import require_api_key
from agent_host.mcp.config import load_servers
from agent_host.mcp.manager import open_mcp
from agent_host.mcp.server import host_mcp_route, serve_host_mcp
from agent_host.pipeline.chat import ChatPipeline
from agent_host.rag.service import open_rag
from agent_host.sessions.store import SessionStore, open_pool


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = AsyncOpenAI(
            base_url=settings.litellm_base_url,
            api_key=settings.agent_host_proxy_key.get_secret_value(),
            timeout=httpx.Timeout(settings.proxy_timeout, connect=3.0),
            max_retries=0,  # the proxy retries across deployments itself
        )
        pool = await open_pool(settings.database_url.get_secret_value(), settings.db_timeout)
        store = SessionStore(pool)
        probe = httpx.AsyncClient(timeout=1.0)  # asks runtimes behind the proxy for their context size
        catalog = ModelCatalog(client, settings.context_windows, settings.default_context_window, probe=probe)
        app.state.settings = settings
        app.state.chat_client = client
        app.state.session_store = store
        app.state.db_pool = pool
        app.state.pipeline = ChatPipeline(client, store, catalog, TokenCounter(), settings)
        async with AsyncExitStack() as capabilities:
            # Each capability opens its services here and closes them in reverse order.
            # [rag: open]
            app.state.rag = await capabilities.enter_async_context(open_rag(settings, pool))
            # [mcp: open]
            app.state.mcp = await capabilities.enter_async_context(open_mcp(settings))
            app.state.mcp_endpoint = await capabilities.enter_async_context(serve_host_mcp(app.state))
            # [agents: open]
            rag_service, mcp_manager = getattr(app.state, "rag", None), getattr(app.state, "mcp", None)
            app.state.agents = build_agent_service(
                settings, app.state.agents_registry, pool, rag_service, mcp_manager, app.state.pipeline.counter
            )
            app.state.pipeline.rag = getattr(app.state, "rag", None)  # chat turns retrieve through it
            # What exists now lives as long as the process (~700k objects from torch, Chroma, LangChain...):
            # frozen out of the collector's reach, a full collection (an upload's many chunks trigger them)
            # scans only newer objects, instead of stopping every thread, /health included, for ~0.5 s.
            gc.collect()
            gc.freeze()
            try:
                yield
            finally:
                await pool.close()
                await client.close()
                await probe.aclose()

    app = FastAPI(
        title="GenAILabs agent host",
        version="0.1.0",
        description="OpenAI-compatible gateway to the LiteLLM proxy with sessions and context management.",
        lifespan=lifespan,
    )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    protected = [Depends(require_api_key)]
    app.include_router(health.router)
    app.include_router(chat.router, dependencies=protected, responses=error_responses(401))
    app.include_router(sessions.router, dependencies=protected, responses=error_responses(401))
    app.include_router(ws.router)  # checks the key itself: a WebSocket is refused with a close code
    # [rag: routers]
    app.include_router(rag.router, dependencies=protected, responses=error_responses(401))
    allow_large_bodies(app, "POST", rag.UPLOAD_PATH, settings.rag_max_upload_bytes)
    # [mcp: routers]
    load_servers(settings.mcp_servers_file)  # a bad servers file stops the start here, before uvicorn runs
    app.include_router(mcp.router, dependencies=protected, responses=error_responses(401, 404, 413, 422))
    app.router.routes.append(host_mcp_route(settings))  # /mcp exactly, so /mcp/servers stays the router's
    # [agents: routers]
    app.state.agents_registry = load_agents(settings.agents_file)  # a bad agents file stops the start here
    app.include_router(agents.router, dependencies=protected, responses=error_responses(401, 404, 413, 422, 502, 503))
    return app
