"""The common forms of Ollama's Go chat templates (a manifest's template layer), rendered without Go.

Supported: text, `{{ .Field }}` and `{{ $.Field }}`, `{{- ... -}}` trimming, comments, `if`/`else if`/`else`/`end`
with conditions built from fields, strings, `eq`, `ne`, `and`, `or`, `not` and parentheses, and
`range .Messages` (`.Role`, `.Content` inside). Anything else is refused with TemplateUnsupported, so the
runtime can say the template cannot be used instead of rendering a wrong prompt.
"""

import contextlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN = re.compile(r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|\$?\.[A-Za-z_][A-Za-z0-9_]*|\$|[A-Za-z_][A-Za-z0-9_]*)')
_FUNCTIONS = {"eq", "ne", "and", "or", "not"}
MAX_TEMPLATE_BYTES = 64 * 1024
MAX_NODES = 2000


class TemplateUnsupported(ValueError):
    """A Go template construct this renderer does not implement."""


@dataclass
class Text:
    text: str


@dataclass
class Print:
    expr: list[Any]


@dataclass
class If:
    branches: list[tuple[list[Any], list[Any]]] = field(default_factory=list)
    otherwise: list[Any] = field(default_factory=list)


@dataclass
class Range:
    expr: list[Any]
    body: list[Any] = field(default_factory=list)


class _Cut(Exception):
    """Raised at `.Response` when rendering the prompt's last turn (Ollama cuts the template there)."""


def _expression(source: str) -> list[Any]:
    """A condition or printed value as a prefix-call tree: ["call", name, args] / ["field", path] / ["str", s]."""
    tokens: list[str] = []
    position = 0
    while position < len(source.rstrip()):
        match = _TOKEN.match(source, position)
        if match is None:
            raise TemplateUnsupported(f"cannot read {source.strip()!r}")
        tokens.append(match.group(1))
        position = match.end()

    def operand(index: int) -> tuple[list[Any], int]:
        token = tokens[index]
        if token == "(":
            inner, index = call(index + 1)
            if index >= len(tokens) or tokens[index] != ")":
                raise TemplateUnsupported(f"unbalanced parentheses in {source.strip()!r}")
            return inner, index + 1
        if token.startswith('"'):
            return ["str", bytes(token[1:-1], "utf-8").decode("unicode_escape")], index + 1
        if token.startswith((".", "$.")) or token == "$":
            return ["field", token], index + 1
        raise TemplateUnsupported(f"{token!r} is not supported in {source.strip()!r}")

    def call(index: int) -> tuple[list[Any], int]:
        if index < len(tokens) and tokens[index] in _FUNCTIONS:
            name, args, index = tokens[index], [], index + 1
            while index < len(tokens) and tokens[index] != ")":
                arg, index = operand(index)
                args.append(arg)
            return ["call", name, args], index
        return operand(index)

    if not tokens:
        raise TemplateUnsupported("empty action")
    tree, end = call(0)
    if end != len(tokens):
        raise TemplateUnsupported(f"cannot read {source.strip()!r}")
    return tree


def _parse(source: str) -> list[Any]:
    root: list[Any] = []
    stack: list[tuple[Any, list[Any]]] = []  # (If/Range node, the list being filled)
    current = root
    position, trim_next, count = 0, False, 0
    for match in _ACTION.finditer(source):
        text = source[position : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        if text:
            current.append(Text(text))
        position, trim_next = match.end(), bool(match.group(3))
        action = match.group(2).strip()
        count += 1
        if count > MAX_NODES:
            raise TemplateUnsupported("too many actions")
        word = action.split(None, 1)[0] if action else ""
        rest = action[len(word) :]
        if action.startswith("/*"):
            continue
        if word == "if":
            node = If(branches=[(_expression(rest), [])])
            current.append(node)
            stack.append((node, current))
            current = node.branches[0][1]
        elif word == "range":
            expression = _expression(rest)
            if expression not in (["field", ".Messages"], ["field", "$.Messages"]):
                raise TemplateUnsupported(f"only `range .Messages` is supported, not {action!r}")
            range_node = Range(expression)
            current.append(range_node)
            stack.append((range_node, current))
            current = range_node.body
        elif word == "else":
            if not stack or not isinstance(stack[-1][0], If):
                raise TemplateUnsupported("`else` outside an `if`")
            node = stack[-1][0]
            if rest.strip().startswith("if "):
                node.branches.append((_expression(rest.strip()[3:]), []))
                current = node.branches[-1][1]
            elif rest.strip():
                raise TemplateUnsupported(f"{action!r} is not supported")
            else:
                current = node.otherwise
        elif word == "end":
            if not stack:
                raise TemplateUnsupported("`end` without an `if` or `range`")
            current = stack.pop()[1]
        elif word in ("with", "template", "define", "block", "break", "continue") or ":=" in action or "|" in action:
            raise TemplateUnsupported(f"{action!r} is not supported")
        else:
            current.append(Print(_expression(action)))
    if stack:
        raise TemplateUnsupported("an `if` or `range` is not closed with `end`")
    tail = source[position:]
    if trim_next:
        tail = tail.lstrip()
    if tail:
        current.append(Text(tail))
    return root


class GoTemplate:
    def __init__(self, source: str) -> None:
        if len(source) > MAX_TEMPLATE_BYTES:
            raise TemplateUnsupported(f"longer than {MAX_TEMPLATE_BYTES} bytes")
        self.nodes = _parse(source)
        self.uses_messages = ".Messages" in source

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The prompt for the next assistant turn, as Ollama's template.Execute builds it."""
        out: list[str] = []
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        if self.uses_messages:
            items = [{"Role": m["role"], "Content": m["content"]} for m in messages]
            self._render(self.nodes, {"System": system, "Messages": items, "Response": ""}, None, out, cut=False)
            return "".join(out)
        # The older single-turn form: rendered once per exchange, the last one cut at `.Response`.
        current = {"System": "", "Prompt": "", "Response": ""}
        for message in messages:
            role, content = message["role"], message["content"]
            if role == "system":
                if current["Prompt"] or current["Response"]:
                    self._render(self.nodes, current, None, out, cut=False)
                    current = {"System": "", "Prompt": "", "Response": ""}
                current["System"] = content
            elif role in ("user", "tool"):
                if current["Response"]:
                    self._render(self.nodes, current, None, out, cut=False)
                    current = {"System": "", "Prompt": "", "Response": ""}
                current["Prompt"] = content
            elif role == "assistant":
                current["Response"] = content
        with contextlib.suppress(_Cut):
            self._render(self.nodes, current, None, out, cut=True)
        return "".join(out)

    def _render(self, nodes: list[Any], root: dict[str, Any], dot: Any, out: list[str], cut: bool) -> None:
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.text)
            elif isinstance(node, Print):
                value = _evaluate(node.expr, root, dot)
                out.append("" if value is None else str(value))
                if cut and node.expr == ["field", ".Response"]:
                    raise _Cut
            elif isinstance(node, If):
                for condition, body in node.branches:
                    if _truthy(_evaluate(condition, root, dot)):
                        self._render(body, root, dot, out, cut)
                        break
                else:
                    self._render(node.otherwise, root, dot, out, cut)
            elif isinstance(node, Range):
                for item in root.get("Messages") or []:
                    self._render(node.body, root, item, out, cut)


def _truthy(value: Any) -> bool:
    return bool(value)


def _evaluate(expr: list[Any], root: dict[str, Any], dot: Any) -> Any:
    kind = expr[0]
    if kind == "str":
        return expr[1]
    if kind == "field":
        path: str = expr[1]
        # `$.X` is the root's field; `.X` the current item's inside range, else the root's.
        scope = root if path.startswith("$") or dot is None else dot
        name = path.lstrip("$").lstrip(".")
        if not name:
            return scope
        return scope.get(name) if isinstance(scope, dict) else None
    name, args = expr[1], [_evaluate(arg, root, dot) for arg in expr[2]]
    if name == "not":
        return not _truthy(args[0]) if len(args) == 1 else _arity(name)
    if name in ("eq", "ne"):
        if len(args) < 2:
            _arity(name)
        equal = any(args[0] == other for other in args[1:])
        return equal if name == "eq" else not equal
    if not args:
        _arity(name)
    result = args[0]
    for value in args:
        result = value
        if _truthy(value) != (name == "and"):
            return value
    return result


def _arity(name: str) -> Any:
    raise TemplateUnsupported(f"wrong number of arguments for {name}")


@lru_cache(maxsize=32)
def compile_template(source: str) -> GoTemplate:
    return GoTemplate(source)
