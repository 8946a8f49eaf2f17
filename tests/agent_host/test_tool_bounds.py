"""Tools stay within bounds: the calculator refuses results too big to build, and an overrunning worker is killed."""

import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from account_support import somebody
from agent_support import ScriptedModel, call, events_of, say
from busy_work import die, spin
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel

from agent_host.agents.calculator import CalculationError, evaluate
from agent_host.agents.execution import run_tool
from agent_host.agents.notes import NotesStore
from agent_host.agents.registry import AgentRegistry, AgentsFile
from agent_host.agents.router import Router
from agent_host.agents.schemas import AgentRunRequest
from agent_host.agents.service import AgentService
from agent_host.agents.tools import ToolDeps, builtin_tools
from agent_host.agents.workers import run_in_worker
from agent_host.config import Settings
from procs import scaled

MAX_CHARS = 4000


def tools_by_name(tools: list[BaseTool]) -> dict[str, BaseTool]:
    return {tool.name: tool for tool in tools}


@pytest.fixture
def builtins() -> dict[str, BaseTool]:
    return tools_by_name(builtin_tools(ToolDeps(rag=None, notes=None, person=None, session_id=None)))


@pytest.mark.parametrize(
    "expression",
    [
        "round(1, -10**8)",  # 10**(10**8) built inside round() before it answers
        "round(7, -301)",
        "10**10**8",
        "2**100000",
        "9^9^9",
        "(10**200)*(10**200)",
        "99999999999999999999**20",
    ],
)
async def test_the_calculator_refuses_huge_results_in_milliseconds(
    builtins: dict[str, BaseTool], expression: str
) -> None:
    started = time.perf_counter()
    outcome = await run_tool(builtins, "calculator", {"expression": expression}, timeout=10, max_chars=MAX_CHARS)
    assert outcome.is_error, outcome.content
    assert "digits" in outcome.content or "exponent" in outcome.content
    assert time.perf_counter() - started < scaled(2.0)  # a worker process starts in ~0.1 s; the refusal adds ms


@pytest.mark.parametrize(
    "expression", ["1 << 100000", "'a' * 10**9", "[1] * 10**9", "(1).__class__", "x := 1", "2 if 1 else 3"]
)
def test_shifts_strings_lists_and_other_syntax_never_evaluate(expression: str) -> None:
    with pytest.raises(CalculationError):
        evaluate(expression)


@pytest.mark.parametrize(
    ("expression", "value"),
    [("round(1234.5678, 2)", "1234.57"), ("round(15, -1)", "20"), ("2^10", "1024"), ("sqrt(2)*sqrt(2)", "2")],
)
async def test_ordinary_arithmetic_still_answers(builtins: dict[str, BaseTool], expression: str, value: str) -> None:
    outcome = await run_tool(builtins, "calculator", {"expression": expression}, timeout=10, max_chars=MAX_CHARS)
    assert not outcome.is_error and outcome.content == value


async def test_a_calculation_error_in_the_worker_is_a_tool_error(builtins: dict[str, BaseTool]) -> None:
    outcome = await run_tool(builtins, "calculator", {"expression": "1/0"}, timeout=10, max_chars=MAX_CHARS)
    assert outcome.is_error and outcome.content == "division by zero"


class SpinArgs(BaseModel):
    pid_file: str


class NoArgs(BaseModel):
    pass


def worker_tool(name: str, function: object, args_schema: type[BaseModel]) -> BaseTool:
    async def call(**arguments: str) -> str:
        return str(await run_in_worker(function, *arguments.values()))  # type: ignore[arg-type]

    return StructuredTool.from_function(coroutine=call, name=name, description=f"{name}.", args_schema=args_schema)


async def test_a_cpu_bound_tool_that_overruns_its_timeout_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    tools = tools_by_name([worker_tool("spin", spin, SpinArgs)])
    started = time.perf_counter()
    outcome = await run_tool(tools, "spin", {"pid_file": str(pid_file)}, timeout=2.0, max_chars=MAX_CHARS)
    assert outcome.is_error and outcome.content == "spin timed out after 2 s"
    assert time.perf_counter() - started < scaled(10)
    pid = int(pid_file.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_a_worker_that_dies_is_a_tool_error_not_a_hang() -> None:
    tools = tools_by_name([worker_tool("die", die, NoArgs)])
    outcome = await run_tool(tools, "die", {}, timeout=10, max_chars=MAX_CHARS)
    assert outcome.is_error and "exit code 3" in outcome.content


async def test_a_run_whose_cpu_bound_tool_overruns_gets_a_tool_error_and_the_worker_is_gone(
    pool: Any, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    agents = {
        "default_model": "fake-model",
        "default_agent": "busy",
        "agents": [{"name": "busy", "description": "Spins.", "tools": ["spin"]}],
    }
    model = ScriptedModel([call("spin", pid_file=str(pid_file)), say("It did not finish.")])
    with model.serving() as url:
        settings = Settings(
            agent_host_api_key="k", agent_host_proxy_key="k", litellm_base_url=url, agent_tool_timeout=1.0
        )
        registry = AgentRegistry(AgentsFile.model_validate(agents))
        service = AgentService(
            settings, registry, Router(registry), NotesStore(pool), extra_tools=[worker_tool("spin", spin, SpinArgs)]
        )
        prepared = await service.prepare(AgentRunRequest(task="spin", stream=True), somebody())
        events = [event.model_dump() async for event in service.events(prepared)]
    result = events_of("tool_result", events)[0]
    assert result["is_error"] and "timed out after 1 s" in result["content"]
    assert events[-1]["type"] == "answer" and events[-1]["content"] == "It did not finish."
    pid = int(pid_file.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
