"""Chat messages to a prompt string: the GGUF's own chat template, else the model's Go template (a store
model's template layer), or ChatML when it has neither."""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from local_runtime.gotemplate import GoTemplate

# SmolLM2 was tuned on function calls in this shape, so tool calls are requested and parsed as it.
TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass
class ChatTurn:
    role: str
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_name: str | None = None


@dataclass
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


_ENV = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
_ENV.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now)


def describe_tools(tools: list[ToolSpec]) -> str:
    """System-prompt text offering the tools in the wording and call format SmolLM2 was tuned on."""
    specs = [{"name": tool.name, "description": tool.description, "parameters": tool.parameters} for tool in tools]
    return (
        "You are an expert in composing functions. You are given a question and a set of possible functions.\n"
        "Based on the question, you will need to make one or more function/tool calls to achieve the purpose.\n"
        "If none of the functions can be used, answer the question yourself in plain text.\n\n"
        "You have access to the following tools:\n"
        f"<tools>{json.dumps(specs)}</tools>\n\n"
        "The output MUST strictly adhere to the following format, and NO other text MUST be included.\n"
        f"{TOOL_CALL_OPEN}[\n"
        '{"name": "func_name1", "arguments": {"argument1": "value1", "argument2": "value2"}},\n'
        "... (more tool calls as required)\n"
        f"]{TOOL_CALL_CLOSE}"
    )


def format_tool_calls(calls: list[ToolCall]) -> str:
    payload = [{"name": call.name, "arguments": call.arguments} for call in calls]
    return f"{TOOL_CALL_OPEN}{json.dumps(payload)}{TOOL_CALL_CLOSE}"


def _template_messages(turns: list[ChatTurn], tools: list[ToolSpec], tool_role: bool) -> list[dict[str, str]]:
    """Flatten tool traffic into plain text turns that any chat template can render."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        content, role = turn.content, turn.role
        if turn.tool_calls:
            content = (content + "\n" if content else "") + format_tool_calls(turn.tool_calls)
        if role == "tool" and not tool_role:
            role, content = "user", f"Result of tool {turn.tool_name or 'call'}: {content}"
        messages.append({"role": role, "content": content})
    if tools:
        offer = describe_tools(tools)
        if messages and messages[0]["role"] == "system":
            messages[0] = {"role": "system", "content": messages[0]["content"] + "\n\n" + offer}
        else:
            messages.insert(0, {"role": "system", "content": offer})
    return messages


def render_chat(
    turns: list[ChatTurn],
    tools: list[ToolSpec],
    template: str | None,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """The prompt for the model's next assistant turn.

    Tool results keep the `tool` role (SmolLM2 answers best from it); a template that rejects
    that role gets them as user turns, and one that fails anyway falls back to ChatML.
    """
    variables = {"add_generation_prompt": True, "bos_token": bos_token, "eos_token": eos_token}
    attempts = [(template, True), (template, False)] if template else []
    for source, tool_role in [*attempts, (CHATML_TEMPLATE, True)]:
        try:
            return _ENV.from_string(source).render(messages=_template_messages(turns, tools, tool_role), **variables)
        except TemplateError:
            continue
    raise AssertionError("unreachable: ChatML renders any message list")


def render_go_chat(turns: list[ChatTurn], tools: list[ToolSpec], template: GoTemplate) -> str:
    """The prompt from a manifest's Go template; tool traffic as plain user and assistant text."""
    return template.render_chat(_template_messages(turns, tools, tool_role=False))
