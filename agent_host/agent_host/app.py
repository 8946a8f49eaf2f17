"""The FastAPI application: clients built once in the lifespan into one AppState, one router per capability."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from anyio import to_thread
from fastapi import Depends, FastAPI
from openai import AsyncOpenAI
from starlette.datastructures import State

from agent_host.agents.registry import load_agents
from agent_host.agents.service import build_agent_service
from agent_host.api.errors import error_responses, install_error_handlers
from agent_host.api.middleware import RequestContextMiddleware, allow_large_bodies
from agent_host.api.routes import agents, auth, chat, health, mcp, rag, sessions, usage, users, ws
from agent_host.config import Settings, get_settings
from agent_host.context.tokens import TokenCounter
from agent_host.context.windows import ModelCatalog
from agent_host.deps import STATE_KEY, AppState, current_user
from agent_host.mcp.config import load_servers
from agent_host.mcp.manager import open_mcp
from agent_host.mcp.server import host_mcp_route, serve_host_mcp
from agent_host.people.auth import Authenticator
from agent_host.people.identity import proxy_http_client
from agent_host.people.service import People
from agent_host.pipeline.chat import ChatPipeline
from agent_host.rag.service import open_rag
from agent_host.sessions.store import SessionStore, open_pool
from genailabs_accounts.store import AccountPolicy, AccountStore


def open_people(settings: Settings) -> People:
    """Accounts on the genailabs database (their proxy keys on the hub's), and the credential cache."""
    policy = AccountPolicy(
        session_idle_minutes=settings.session_idle_minutes,
        login_max_failures=settings.login_max_failures,
        login_lock_minutes=settings.login_lock_minutes,
    )
    store = AccountStore(
        settings.database_url.get_secret_value(), settings.hub_database_url.get_secret_value(), policy=policy
    )
    auth = Authenticator(store, settings.agent_host_api_key, settings.agent_host_admin_key, settings.auth_cache_seconds)
    return People(store, auth)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    load_servers(settings.mcp_servers_file)  # a bad servers file stops the start here, before uvicorn runs
    agents_registry = load_agents(settings.agents_file)  # so does a bad agents file

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        # Every call to the proxy goes through a client whose request hook names the person being served.
        client = AsyncOpenAI(
            base_url=settings.litellm_base_url,
            api_key=settings.agent_host_proxy_key.get_secret_value(),
            http_client=proxy_http_client(httpx.Timeout(settings.proxy_timeout, connect=3.0)),
            max_retries=0,  # the proxy retries across deployments itself
        )
        pool = await open_pool(settings.database_url.get_secret_value(), settings.db_timeout)
        store = SessionStore(pool)
        probe = httpx.AsyncClient(timeout=1.0)  # asks runtimes behind the proxy for their context size
        catalog = ModelCatalog(client, settings.context_windows, settings.default_context_window, probe=probe)
        pipeline = ChatPipeline(client, store, catalog, TokenCounter(), settings)
        people = open_people(settings)
        warming = asyncio.create_task(people.warm_up())  # beside the capabilities' start, not after it
        async with AsyncExitStack() as capabilities:
            # Each capability opens its services here and closes them in reverse order.
            rag_service = await capabilities.enter_async_context(open_rag(settings, pool))
            mcp_manager = await capabilities.enter_async_context(open_mcp(settings))
            mcp_endpoint = await capabilities.enter_async_context(
                serve_host_mcp(State({"session_store": store, "rag": rag_service}))
            )
            agent_service = build_agent_service(
                settings, agents_registry, pool, rag_service, mcp_manager, pipeline.counter
            )
            pipeline.rag = rag_service  # chat turns retrieve through it
            state = AppState(
                settings=settings,
                chat_client=client,
                session_store=store,
                pipeline=pipeline,
                people=people,
                rag=rag_service,
                mcp=mcp_manager,
                mcp_endpoint=mcp_endpoint,
                agents=agent_service,
            )
            # What exists now lives as long as the process (~700k objects from torch, Chroma, LangChain...):
            # frozen out of the collector's reach, a full collection (an upload's many chunks trigger them)
            # scans only newer objects, instead of stopping every thread, /health included, for ~0.5 s.
            gc.collect()
            gc.freeze()
            try:
                yield {STATE_KEY: state}
            finally:
                warming.cancel()
                await pool.close()
                await client.close()
                await probe.aclose()
                await to_thread.run_sync(people.store.close)

    app = FastAPI(
        title="GenAILabs agent host",
        version="0.1.0",
        description="OpenAI-compatible gateway to the LiteLLM proxy with sessions, people and context management.",
        lifespan=lifespan,
    )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    # Every route but health and sign-in needs a person (a sign-in token, a personal API key, an operator key).
    person = [Depends(current_user)]
    unauthorised = error_responses(401)
    app.include_router(health.router)
    app.include_router(auth.router)  # /auth/login needs no person; the others ask for one themselves
    app.include_router(users.router)  # admins only, each route asks
    app.include_router(usage.router)
    app.include_router(chat.router, dependencies=person, responses=unauthorised)
    app.include_router(sessions.router, dependencies=person, responses=unauthorised)
    app.include_router(ws.router)  # checks the person itself: a WebSocket is refused with a close code
    app.include_router(rag.router, dependencies=person, responses=unauthorised)
    allow_large_bodies(app, "POST", rag.UPLOAD_PATH, settings.rag_max_upload_bytes)
    app.include_router(mcp.router, dependencies=person, responses=error_responses(401, 404, 413, 422))
    app.router.routes.append(host_mcp_route(settings))  # /mcp exactly, so /mcp/servers stays the router's
    app.include_router(agents.router, dependencies=person, responses=error_responses(401, 404, 413, 422, 502, 503))
    return app
