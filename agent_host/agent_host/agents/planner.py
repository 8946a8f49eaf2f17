"""The planner: the model writes a JSON plan, each step runs with its agent, a last call combines the results."""

import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field, ValidationError

from agent_host.agents.events import DeltaEvent, PlanEvent, PlanItem, PlanStepEvent
from agent_host.agents.limits import RunBudget
from agent_host.agents.registry import AgentSpec
from agent_host.agents.runner import AgentRun, Outcome, run_agent
from agent_host.agents.tools import TEXT_PATTERN

log = logging.getLogger(__name__)
MAX_PLAN_STEPS = 4
PLAN_TOKENS = 256
# Earlier results handed to a later step, and each result in the final prompt, are cut to this.
RESULT_CHARS = 600


class PlannedStep(BaseModel):
    task: str = Field(min_length=1)
    agent: str


class Plan(BaseModel):
    steps: list[PlannedStep] = Field(min_length=1, max_length=MAX_PLAN_STEPS)


@dataclass
class PlanContext:
    planner: AgentSpec
    delegates: list[AgentSpec]
    task: str
    model: BaseChatModel
    budget: RunBudget
    # Builds the run of one step: its agent, the step's text, and the step's index.
    step_run: Callable[[AgentSpec, str, int], AgentRun]
    # The agent a step goes to when the model's plan is unusable.
    fallback_agent: AgentSpec


def plan_schema(agents: list[str]) -> dict[str, Any]:
    """The plan's JSON schema; the runtime turns it into a grammar, so the reply always parses."""
    step = {
        "type": "object",
        "properties": {"task": {"type": "string", "pattern": TEXT_PATTERN}, "agent": {"enum": agents}},
        "required": ["task", "agent"],
        "additionalProperties": False,
    }
    steps = {"type": "array", "items": step, "minItems": 1, "maxItems": MAX_PLAN_STEPS}
    return {"type": "object", "properties": {"steps": steps}, "required": ["steps"], "additionalProperties": False}


def plan_messages(context: PlanContext) -> list[BaseMessage]:
    roster = "\n".join(f"- {agent.name}: {agent.description}" for agent in context.delegates)
    instructions = (
        f"{context.planner.system_prompt.strip()}\n\nAgents:\n{roster}\n\n"
        f'Reply with JSON: {{"steps": [{{"task": "...", "agent": "..."}}]}}, at most {MAX_PLAN_STEPS} steps, '
        "each task one short instruction."
    ).strip()
    return [SystemMessage(instructions), HumanMessage(context.task)]


def parse_plan(text: str, agents: set[str]) -> Plan | str:
    """The plan, or why it cannot be used."""
    try:
        plan = Plan.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        return f"the model's plan is not valid JSON for the plan schema ({type(exc).__name__})"
    unknown = sorted({step.agent for step in plan.steps} - agents)
    if unknown:
        return f"the plan names unknown agents: {', '.join(unknown)}"
    return plan


def step_text(task: str, earlier: list[tuple[PlanItem, str]]) -> str:
    if not earlier:
        return task
    results = "\n".join(f"{item.index}. {answer[:RESULT_CHARS]}" for item, answer in earlier)
    return f"{task}\n\nResults of the earlier steps:\n{results}"


def aggregate_messages(task: str, done: list[tuple[PlanItem, str]]) -> list[BaseMessage]:
    results = "\n".join(f"{item.index}. {item.task}: {answer[:RESULT_CHARS]}" for item, answer in done)
    return [
        SystemMessage("Answer the user's task in a few sentences, using the results of the steps below."),
        HumanMessage(f"Task: {context_line(task)}\n\nStep results:\n{results}"),
    ]


def context_line(text: str) -> str:
    return " ".join(text.split())


async def run_plan(context: PlanContext, outcome: Outcome) -> AsyncIterator[Any]:
    """Plan, run each step with its agent, then combine; yields every event and fills `outcome`."""
    names = [agent.name for agent in context.delegates]
    response_format = {"type": "json_schema", "json_schema": {"name": "plan", "schema": plan_schema(names)}}
    reply = await context.model.ainvoke(plan_messages(context), response_format=response_format, max_tokens=PLAN_TOKENS)
    context.budget.model_calls += 1
    parsed = parse_plan(str(reply.text), set(names))
    fallback = None
    if isinstance(parsed, str):
        log.info("planner: %s; running the task as one step", parsed)
        fallback = parsed
        parsed = Plan(steps=[PlannedStep(task=context.task, agent=context.fallback_agent.name)])
    items = [PlanItem(index=i, agent=step.agent, task=step.task) for i, step in enumerate(parsed.steps, start=1)]
    yield PlanEvent(steps=items, fallback=fallback)

    agents = {agent.name: agent for agent in context.delegates}
    agents.setdefault(context.fallback_agent.name, context.fallback_agent)
    done: list[tuple[PlanItem, str]] = []
    for item in items:
        yield PlanStepEvent(index=item.index, agent=item.agent, task=item.task, status="started")
        step_outcome = Outcome()
        run = context.step_run(agents[item.agent], step_text(item.task, done), item.index)
        async for event in run_agent(run, step_outcome):
            yield event
        outcome.steps += step_outcome.steps
        done.append((item, step_outcome.answer))
        yield PlanStepEvent(
            index=item.index,
            agent=item.agent,
            task=item.task,
            status="done",
            answer=step_outcome.answer,
            stopped_by=step_outcome.stop.kind if step_outcome.stop else None,
        )

    if len(done) == 1:  # nothing to combine: the one step's answer is the answer
        outcome.answer = done[0][1]
        return
    parts: list[str] = []
    async for chunk in context.model.astream(aggregate_messages(context.task, done)):
        if isinstance(chunk, AIMessageChunk) and chunk.text:
            piece = str(chunk.text)
            parts.append(piece)
            yield DeltaEvent(step=0, text=piece)
    context.budget.model_calls += 1
    outcome.answer = "".join(parts)
