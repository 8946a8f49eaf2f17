"""The hard limits every run is held to, and the counters that enforce them."""

import json
import time
from dataclasses import dataclass, field
from typing import Any

from agent_host.agents.events import StopReason
from agent_host.config import Settings

# A call identical (same tool, same arguments) to one made this many times already is a loop: with a
# deterministic tool the answer cannot change. One repeat is allowed (a note list re-read after adding).
LOOP_REPEATS = 2


@dataclass(frozen=True)
class RunLimits:
    max_steps: int
    max_tool_calls: int
    tool_timeout: float
    total_timeout: float
    result_max_chars: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "RunLimits":
        return cls(
            max_steps=settings.agent_max_steps,
            max_tool_calls=settings.agent_max_tool_calls,
            tool_timeout=settings.agent_tool_timeout,
            total_timeout=settings.agent_total_timeout,
            result_max_chars=settings.tool_result_max_chars,
        )

    def narrowed(self, max_steps: int | None = None, max_tool_calls: int | None = None) -> "RunLimits":
        """Limits an agent or a request may lower but never raise: the settings are the ceiling."""
        return RunLimits(
            max_steps=min(self.max_steps, max_steps) if max_steps else self.max_steps,
            max_tool_calls=min(self.max_tool_calls, max_tool_calls)
            if max_tool_calls is not None
            else self.max_tool_calls,
            tool_timeout=self.tool_timeout,
            total_timeout=self.total_timeout,
            result_max_chars=self.result_max_chars,
        )


@dataclass
class Stop:
    kind: StopReason
    message: str


@dataclass
class RunBudget:
    """Counters shared by a whole run, planner steps included."""

    limits: RunLimits
    started: float = field(default_factory=time.monotonic)
    tool_calls: int = 0
    model_calls: int = 0
    seen_calls: dict[str, int] = field(default_factory=dict)

    def remaining_time(self) -> float:
        return max(0.0, self.limits.total_timeout - (time.monotonic() - self.started))

    def tool_calls_left(self) -> int:
        return max(0, self.limits.max_tool_calls - self.tool_calls)

    def check_call(self, name: str, arguments: dict[str, Any] | str) -> Stop | None:
        """Counts a call about to run; a Stop when it would break the tool-call limit or repeat a loop."""
        if self.tool_calls >= self.limits.max_tool_calls:
            return tool_budget_stop(self.limits)
        key = f"{name}:{json.dumps(arguments, sort_keys=True, default=str)}"
        if self.seen_calls.get(key, 0) >= LOOP_REPEATS:
            shown = json.dumps(arguments, sort_keys=True, default=str)[:200]
            return Stop(
                "loop",
                f"stopped: loop detected, {name} was called {LOOP_REPEATS + 1} times with the same arguments {shown}",
            )
        self.seen_calls[key] = self.seen_calls.get(key, 0) + 1
        self.tool_calls += 1
        return None


def total_time_stop(limits: RunLimits) -> Stop:
    return Stop("total_time", f"stopped: the run took longer than its limit of {limits.total_timeout:g} s")


def max_steps_stop(max_steps: int) -> Stop:
    return Stop("max_steps", f"stopped: the agent still wanted tools after its limit of {max_steps} steps")


def tool_budget_stop(limits: RunLimits) -> Stop:
    return Stop("max_tool_calls", f"stopped: this run reached its limit of {limits.max_tool_calls} tool calls")


def cap_result(text: str, max_chars: int) -> tuple[str, bool]:
    """Cuts a tool result to max_chars (the note of the cut included) before it enters the context."""
    if len(text) <= max_chars:
        return text, False
    note = f"\n[truncated: {len(text)} characters, showing the first {{kept}}]"
    kept = max(0, max_chars - len(note.format(kept=max_chars)))
    return text[:kept] + note.format(kept=kept), True
