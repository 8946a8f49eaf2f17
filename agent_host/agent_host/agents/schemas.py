"""Wire models of the agents API: `POST /agents/run` and `GET /agents`."""

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from agent_host.agents.events import AgentEvent, StopReason
from agent_host.schemas import ChatMessage


class AgentRunRequest(BaseModel):
    """A task (or a conversation) for an agent; without `agent` the router picks one."""

    task: str | None = Field(default=None, min_length=1, max_length=20_000)
    messages: list[ChatMessage] | None = Field(default=None, min_length=1)
    agent: str | None = None
    model: str | None = None
    session_id: str | None = None
    # With a session: add the task and the answer to its history (a client re-running a turn says false).
    remember: bool = True
    # Document collections the search tool is limited to (the chat's selection); all when omitted.
    collections: list[str] | None = Field(default=None, max_length=20)
    stream: bool = False
    # A request may tighten the host's limits, never loosen them.
    max_steps: int | None = Field(default=None, ge=1)
    max_tool_calls: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _task_or_messages(self) -> "AgentRunRequest":
        if (self.task is None) == (self.messages is None):
            raise ValueError("send either `task` or `messages`")
        return self

    def conversation(self) -> list[dict[str, object]]:
        if self.messages is not None:
            return [message.model_dump(exclude_none=True) for message in self.messages]
        return [{"role": "user", "content": self.task}]


class AgentPublic(BaseModel):
    name: str
    description: str
    kind: Literal["tools", "planner"]
    model: str
    # The tools the agent can call right now (MCP tools only while their server is up), and its patterns.
    tools: list[str]
    tool_patterns: list[str]
    max_steps: int
    agents: list[str] = Field(default_factory=list)


class AgentRunResult(BaseModel):
    """A whole run: every step (without the text deltas) and the answer."""

    run_id: str
    agent: str
    model: str
    answer: str
    stopped_by: StopReason | None
    steps: list[AgentEvent]
