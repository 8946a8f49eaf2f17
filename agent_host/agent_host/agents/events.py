"""What an agent run reports, step by step: every event a client sees on the wire."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

StopReason = Literal["max_steps", "max_tool_calls", "loop", "total_time"]


class RouteInfo(BaseModel):
    """How the agent was chosen: named in the request, or classified from the text."""

    method: Literal["explicit", "embedding", "keywords", "default"]
    scores: dict[str, float] = Field(default_factory=dict)
    # Set when the request split into this many parts that need different agents (so: the planner).
    parts: int | None = None


class StepEvent(BaseModel):
    """Base of the events inside a run; `plan_step` says which planner step they belong to."""

    step: int = 0
    plan_step: int | None = None


class StartEvent(BaseModel):
    type: Literal["start"] = "start"
    run_id: str
    agent: str
    model: str
    tools: list[str]
    route: RouteInfo


class DeltaEvent(StepEvent):
    """Text as the model writes it; the step ends as a thought (tool calls follow) or as the answer."""

    type: Literal["delta"] = "delta"
    text: str


class ThoughtEvent(StepEvent):
    type: Literal["thought"] = "thought"
    text: str


class ToolCallEvent(StepEvent):
    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    arguments: dict[str, Any] | str


class ToolResultEvent(StepEvent):
    type: Literal["tool_result"] = "tool_result"
    id: str
    name: str
    content: str
    is_error: bool
    latency_ms: float
    truncated: bool = False


class PlanItem(BaseModel):
    index: int
    agent: str
    task: str


class PlanEvent(BaseModel):
    type: Literal["plan"] = "plan"
    steps: list[PlanItem]
    # Set when the model's plan was unusable and the whole task became one step.
    fallback: str | None = None


class PlanStepEvent(BaseModel):
    type: Literal["plan_step"] = "plan_step"
    index: int
    agent: str
    task: str
    status: Literal["started", "done"]
    answer: str | None = None
    stopped_by: StopReason | None = None


class LimitEvent(StepEvent):
    type: Literal["limit"] = "limit"
    kind: StopReason
    message: str


class AnswerEvent(BaseModel):
    type: Literal["answer"] = "answer"
    content: str
    stopped_by: StopReason | None = None
    steps: int
    tool_calls: int


class ErrorEvent(BaseModel):
    type: Literal["error"] = "error"
    error: dict[str, str]


AgentEvent = Annotated[
    StartEvent
    | DeltaEvent
    | ThoughtEvent
    | ToolCallEvent
    | ToolResultEvent
    | PlanEvent
    | PlanStepEvent
    | LimitEvent
    | AnswerEvent
    | ErrorEvent,
    Field(discriminator="type"),
]
