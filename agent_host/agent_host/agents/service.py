"""The agents capability: picks the agent, gives it its tools and model, runs it within the limits."""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool
from langchain_openai import ChatOpenAI
from psycopg_pool import AsyncConnectionPool

from agent_host.agents.events import (
    AgentEvent,
    AnswerEvent,
    DeltaEvent,
    ErrorEvent,
    LimitEvent,
    RouteInfo,
    StartEvent,
    StopReason,
)
from agent_host.agents.limits import RunBudget, RunLimits, total_time_stop
from agent_host.agents.mcp_tools import McpTools, mcp_tools
from agent_host.agents.notes import NotesStore
from agent_host.agents.planner import PlanContext, run_plan
from agent_host.agents.registry import AgentRegistry, AgentSpec
from agent_host.agents.router import Embedder, Router
from agent_host.agents.runner import AgentRun, Outcome, conversation_from, opening_messages, run_agent
from agent_host.agents.schemas import AgentPublic, AgentRunRequest, AgentRunResult
from agent_host.agents.tools import DocumentSearch, ToolDeps, builtin_tools
from agent_host.config import Settings
from agent_host.context.tokens import TokenCounter
from agent_host.db import owner_id
from agent_host.errors import AgentHostError
from agent_host.people.identity import proxy_http_client
from agent_host.pipeline.upstream import upstream_errors
from agent_host.sessions.store import NewMessage, SessionStore
from genailabs_accounts.models import Account

log = logging.getLogger(__name__)
ModelFactory = Callable[[str, float], BaseChatModel]


@dataclass
class PreparedRun:
    """A routed request: the agent, its model and limits, and the conversation it answers."""

    run_id: str
    # Whose run it is: their session, notes and readable collections; nobody else's.
    person: Account
    agent: AgentSpec
    model: str
    # The model the request named, if any: planner steps use it too.
    requested_model: str | None
    route: RouteInfo
    conversation: list[BaseMessage]
    task: str
    session_id: str | None
    limits: RunLimits
    collections: list[str] | None = None
    remember: bool = True


class _Finished:
    pass


@dataclass
class _Failed:
    error: BaseException


class AgentService:
    def __init__(
        self,
        settings: Settings,
        registry: AgentRegistry,
        router: Router,
        notes: NotesStore | None = None,
        rag: DocumentSearch | None = None,
        mcp: McpTools | None = None,
        extra_tools: Sequence[BaseTool] = (),
        model_factory: ModelFactory | None = None,
        sessions: SessionStore | None = None,
        counter: TokenCounter | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.router = router
        self.notes = notes
        self.rag = rag
        self.mcp = mcp
        self.extra_tools = list(extra_tools)
        self.sessions = sessions
        self.counter = counter or TokenCounter()
        self.limits = RunLimits.from_settings(settings)
        self._model_factory = model_factory or self._proxy_model
        self._models: dict[tuple[str, float], BaseChatModel] = {}

    def _proxy_model(self, name: str, temperature: float) -> BaseChatModel:
        """A chat model on the proxy: OpenAI-style tools, and the proxy (not this client) retries."""
        return ChatOpenAI(
            model=name,
            base_url=self.settings.litellm_base_url,
            api_key=self.settings.agent_host_proxy_key,
            max_retries=0,
            timeout=self.settings.proxy_timeout,
            http_async_client=proxy_http_client(self.settings.proxy_timeout),  # names the person to the proxy
            temperature=temperature,
            max_tokens=self.settings.reply_tokens,  # type: ignore[call-arg]
        )

    def model(self, name: str, temperature: float) -> BaseChatModel:
        key = (name, temperature)
        if key not in self._models:
            self._models[key] = self._model_factory(name, temperature)
        return self._models[key]

    def catalogue(
        self, person: Account | None, session_id: str | None, collections: list[str] | None = None
    ) -> list[BaseTool]:
        """Every tool a run could use now: built-ins bound to the person and session, MCP tools of servers up."""
        top_k = self.settings.rag_top_k
        deps = ToolDeps(self.rag, self.notes, person, session_id, top_k, collections)
        tools = builtin_tools(deps) + self.extra_tools
        if self.mcp is not None:
            tools += mcp_tools(self.mcp, self.settings.agent_tool_timeout)
        return tools

    def tools_for(
        self, agent: AgentSpec, person: Account | None, session_id: str | None, collections: list[str] | None = None
    ) -> list[BaseTool]:
        return [tool for tool in self.catalogue(person, session_id, collections) if agent.allows(tool.name)]

    def agents(self) -> list[AgentPublic]:
        return [
            AgentPublic(
                name=agent.name,
                description=agent.description,
                kind=agent.kind,
                model=self.registry.model_for(agent),
                tools=[tool.name for tool in self.tools_for(agent, None, None)],
                tool_patterns=agent.tools,
                max_steps=self.limits.narrowed(agent.max_steps).max_steps,
                agents=[d.name for d in self.registry.delegates(agent)] if agent.kind == "planner" else [],
            )
            for agent in self.registry.all()
        ]

    async def prepare(self, request: AgentRunRequest, person: Account) -> PreparedRun:
        """Routes the request; raises (unknown agent, another person's session) before anything is streamed."""
        if request.session_id is not None and self.sessions is not None:
            await self.sessions.get(owner_id(person), request.session_id)
        conversation = conversation_from(request.conversation())
        task = next((str(m.content) for m in reversed(conversation) if isinstance(m, HumanMessage)), "")
        agent, route = await self.router.route(task, request.agent)
        limits = self.limits.narrowed(agent.max_steps).narrowed(request.max_steps, request.max_tool_calls)
        return PreparedRun(
            run_id=uuid.uuid4().hex,
            person=person,
            agent=agent,
            model=self.registry.model_for(agent, request.model),
            requested_model=request.model,
            route=route,
            conversation=conversation,
            task=task,
            session_id=request.session_id,
            limits=limits,
            collections=request.collections,
            remember=request.remember,
        )

    async def run(self, prepared: PreparedRun) -> AgentRunResult:
        """The whole run at once; a failure is raised as its domain error."""
        steps: list[AgentEvent] = []
        answer: AnswerEvent | None = None
        async for event in self.events(prepared, raise_errors=True):
            if isinstance(event, AnswerEvent):
                answer = event
            if not isinstance(event, DeltaEvent):
                steps.append(event)
        assert answer is not None
        return AgentRunResult(
            run_id=prepared.run_id,
            agent=prepared.agent.name,
            model=prepared.model,
            answer=answer.content,
            stopped_by=answer.stopped_by,
            steps=steps,
        )

    async def events(self, prepared: PreparedRun, raise_errors: bool = False) -> AsyncIterator[AgentEvent]:
        """Start, every step, then the answer (or an error event); the total time limit cuts the run."""
        budget = RunBudget(prepared.limits)
        tools = (
            []
            if prepared.agent.kind == "planner"
            else self.tools_for(prepared.agent, prepared.person, prepared.session_id, prepared.collections)
        )
        yield StartEvent(
            run_id=prepared.run_id,
            agent=prepared.agent.name,
            model=prepared.model,
            tools=[tool.name for tool in tools],
            route=prepared.route,
        )
        outcome = Outcome()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def produce() -> None:
            try:
                async with upstream_errors():
                    async for event in self._body(prepared, tools, budget, outcome):
                        await queue.put(event)
                await queue.put(_Finished())
            except Exception as exc:
                await queue.put(_Failed(exc))

        # The run works in its own task, so the deadline can stop it wherever it is waiting.
        worker = asyncio.create_task(produce())
        try:
            while True:
                try:
                    # Not wait_for: on Python 3.11 it can swallow a cancellation (a client that went away).
                    async with asyncio.timeout(budget.remaining_time()):
                        item = await queue.get()
                except TimeoutError:
                    stop = total_time_stop(prepared.limits)
                    yield LimitEvent(kind=stop.kind, message=stop.message)
                    yield _answer(stop.message, stop.kind, budget)
                    return
                if isinstance(item, _Finished):
                    break
                if isinstance(item, _Failed):
                    error = _domain_error(item.error)
                    if raise_errors:
                        raise error from item.error
                    yield ErrorEvent(error={"type": error.type, "message": error.message})
                    return
                yield item
            stopped_by = outcome.stop.kind if outcome.stop else None
            yield _answer(outcome.answer, stopped_by, budget)
            await self._remember(prepared, outcome.answer)
        finally:
            if not worker.done():
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker

    async def _remember(self, prepared: PreparedRun, answer: str) -> None:
        """With a session, the task and the answer join its history, so a plain chat turn after it knows both."""
        if self.sessions is None or prepared.session_id is None or not prepared.remember:
            return
        count = self.counter.count
        run = {"agent": prepared.agent.name, "run_id": prepared.run_id, "model": prepared.model}
        messages = [
            NewMessage("user", prepared.task, count(prepared.model, prepared.task)),
            NewMessage("assistant", answer, count(prepared.model, answer), metadata={"agent_run": run}),
        ]
        try:
            await self.sessions.append(owner_id(prepared.person), prepared.session_id, messages)
        except (AgentHostError, psycopg.Error) as exc:  # the answer was given; its storage is best effort
            log.warning("agent run %s: not stored in session %s: %s", prepared.run_id, prepared.session_id, exc)

    def _body(
        self, prepared: PreparedRun, tools: list[BaseTool], budget: RunBudget, outcome: Outcome
    ) -> AsyncIterator[Any]:
        agent = prepared.agent
        system = "\n".join(str(m.content) for m in prepared.conversation if isinstance(m, SystemMessage))
        conversation = [m for m in prepared.conversation if not isinstance(m, SystemMessage)]
        if agent.kind == "planner":

            def step_run(delegate: AgentSpec, text: str, index: int) -> AgentRun:
                return self._agent_run(
                    delegate,
                    self.registry.model_for(delegate, prepared.requested_model),
                    [HumanMessage(text)],
                    system,
                    self.tools_for(delegate, prepared.person, prepared.session_id, prepared.collections),
                    budget,
                    index,
                )

            context = PlanContext(
                planner=agent,
                delegates=self.registry.delegates(agent),
                task=prepared.task,
                model=self.model(prepared.model, agent.temperature),
                budget=budget,
                step_run=step_run,
                fallback_agent=self.registry.get(self.registry.config.default_agent),
            )
            return run_plan(context, outcome)
        run = self._agent_run(agent, prepared.model, conversation, system, tools, budget, None)
        return run_agent(run, outcome)

    def _agent_run(
        self,
        agent: AgentSpec,
        model: str,
        conversation: list[BaseMessage],
        system: str,
        tools: list[BaseTool],
        budget: RunBudget,
        plan_step: int | None,
    ) -> AgentRun:
        return AgentRun(
            agent=agent,
            model=self.model(model, agent.temperature),
            tools=tools,
            messages=opening_messages(agent, conversation, [tool.name for tool in tools], system),
            max_steps=budget.limits.narrowed(agent.max_steps).max_steps,
            budget=budget,
            plan_step=plan_step,
        )


def _answer(content: str, stopped_by: StopReason | None, budget: RunBudget) -> AnswerEvent:
    return AnswerEvent(content=content, stopped_by=stopped_by, steps=budget.model_calls, tool_calls=budget.tool_calls)


def _domain_error(error: BaseException) -> AgentHostError:
    if isinstance(error, AgentHostError):
        return error
    log.error("agent run failed", exc_info=error)
    return AgentHostError(f"the agent run failed: {type(error).__name__}: {error}")


def build_agent_service(
    settings: Settings,
    registry: AgentRegistry,
    pool: AsyncConnectionPool,
    rag: Any | None,
    mcp: McpTools | None,
    counter: TokenCounter | None = None,
) -> AgentService:
    """The service with the host's capabilities; routing uses RAG's embedding model when RAG is there."""
    embedder = None
    if rag is not None and hasattr(rag, "embedder"):

        async def embedder() -> Embedder:
            return await rag.embedder(settings.embedding_model)  # type: ignore[no-any-return]

    sessions = SessionStore(pool)
    router = Router(registry, embedder)
    return AgentService(settings, registry, router, NotesStore(pool), rag, mcp, sessions=sessions, counter=counter)
