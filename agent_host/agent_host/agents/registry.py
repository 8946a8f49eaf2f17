"""Named agents from agents.yaml, validated at start: a bad file stops the host with a readable message."""

import fnmatch
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent_host.errors import AgentConfigError, AgentNotFound

AGENT_NAME = r"^[a-z][a-z0-9_-]{0,39}$"


class ToolExample(BaseModel):
    """A worked exchange shown to the model before the conversation: small models copy the pattern."""

    model_config = ConfigDict(extra="forbid")

    request: str = Field(min_length=1)
    tool: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: str
    answer: str


class AgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=AGENT_NAME)
    description: str = Field(min_length=1, max_length=300)
    kind: Literal["tools", "planner"] = "tools"
    system_prompt: str = ""
    model: str | None = None
    # Tool names or globs over them: built-ins (`calculator`) and MCP tools (`files__*`).
    tools: list[str] = Field(default_factory=list)
    max_steps: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    examples: list[ToolExample] = Field(default_factory=list)
    # Requests this agent should get: the router compares a request with them and the description.
    route_examples: list[str] = Field(default_factory=list)
    # Planner only: the agents it may hand steps to (all tool agents when empty).
    agents: list[str] = Field(default_factory=list)

    def routing_texts(self) -> list[str]:
        return [self.description, *self.route_examples, *(example.request for example in self.examples)]

    def allows(self, tool_name: str) -> bool:
        return any(fnmatch.fnmatchcase(tool_name, pattern) for pattern in self.tools)

    @model_validator(mode="after")
    def _examples_use_allowed_tools(self) -> "AgentSpec":
        for example in self.examples:
            if not self.allows(example.tool):
                raise ValueError(f"example tool {example.tool!r} is not among the agent's tools {self.tools}")
        if self.kind == "planner" and self.tools:
            raise ValueError("a planner calls no tools itself: give its agents the tools")
        return self


class AgentsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_model: str = Field(min_length=1)
    # The agent a request gets when nothing in it points to another one.
    default_agent: str
    agents: list[AgentSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_exist(self) -> "AgentsFile":
        names = [agent.name for agent in self.agents]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"agent names must be unique: {', '.join(duplicates)}")
        if self.default_agent not in names:
            raise ValueError(f"default_agent {self.default_agent!r} is not defined")
        kinds = {agent.name: agent.kind for agent in self.agents}
        for agent in self.agents:
            for delegate in agent.agents:
                if kinds.get(delegate) != "tools":
                    raise ValueError(f"planner {agent.name!r}: {delegate!r} is not a tool agent")
        return self


class AgentRegistry:
    """The agents of one file, looked up by name."""

    def __init__(self, config: AgentsFile) -> None:
        self.config = config
        self._agents = {agent.name: agent for agent in config.agents}

    def get(self, name: str) -> AgentSpec:
        try:
            return self._agents[name]
        except KeyError:
            raise AgentNotFound(name, sorted(self._agents)) from None

    def all(self) -> list[AgentSpec]:
        return list(self._agents.values())

    def delegates(self, planner: AgentSpec) -> list[AgentSpec]:
        names = planner.agents or [agent.name for agent in self.config.agents if agent.kind == "tools"]
        return [self._agents[name] for name in names]

    def model_for(self, agent: AgentSpec, requested: str | None = None) -> str:
        return requested or agent.model or self.config.default_model


def load_agents(path: Path) -> AgentRegistry:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentConfigError(f"agents file {path}: cannot read it ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise AgentConfigError(f"agents file {path}: not valid YAML ({exc})") from exc
    try:
        return AgentRegistry(AgentsFile.model_validate(raw))
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors()[:8])
        raise AgentConfigError(f"agents file {path}: {problems}") from exc


def _problem(error: Any) -> str:
    """`agents.1.max_steps: Input should be ...`, or a whole-file rule's own words."""
    context = error.get("ctx") or {}
    message = str(context["error"]) if "error" in context else error["msg"]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {message}" if where else message
