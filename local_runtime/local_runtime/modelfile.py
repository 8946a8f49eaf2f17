"""Ollama's Modelfile: its parser (a port of ollama/parser/parser.go) and its PARAMETER values, typed.

The parser is Ollama's state machine, rune by rune, with its error texts, so a Modelfile Ollama accepts is
accepted here and one it refuses is refused with the same message."""

from dataclasses import dataclass, field
from typing import Any

from local_runtime.errors import InvalidRequest

_COMMANDS = (
    "from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message",
    "requires",
)  # fmt: skip
INVALID_COMMAND = (
    'command must be one of "from", "license", "template", "system", "adapter", "draft", "renderer", "parser", '
    '"parameter", "message", or "requires"'
)
INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"'
# Ollama's Options and Runner fields (api/types.go) by JSON name and Go kind; FormatParams types them by these.
PARAMETER_KINDS: dict[str, str] = {
    "num_ctx": "int", "num_batch": "int", "num_gpu": "int", "main_gpu": "int", "use_mmap": "bool",
    "num_thread": "int", "draft_num_predict": "int", "num_keep": "int", "seed": "int", "num_predict": "int",
    "top_k": "int", "top_p": "float", "min_p": "float", "typical_p": "float", "repeat_last_n": "int",
    "temperature": "float", "repeat_penalty": "float", "presence_penalty": "float", "frequency_penalty": "float",
    "stop": "list",
}  # fmt: skip
# Accepted and ignored by Ollama (with a warning), so old Modelfiles still load.
DEPRECATED_PARAMETERS = (
    "penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock", "mirostat", "mirostat_tau",
    "mirostat_eta",
)  # fmt: skip
_GO_INT64 = 2**63


class ModelfileError(InvalidRequest):
    """A Modelfile Ollama's parser would refuse; the message is Ollama's."""


@dataclass(frozen=True)
class Command:
    name: str  # "model" for FROM, the parameter's name for PARAMETER, else the lower-cased command
    args: str


@dataclass
class ModelfileRequest:
    """What a Modelfile asks /api/create for, in the fields of Ollama's CreateRequest."""

    source: str
    template: str | None = None
    system: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    licenses: list[str] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)


def _unquote(text: str) -> tuple[str, bool]:
    if text.startswith('"""'):
        if len(text) >= 6 and text.endswith('"""'):
            return text[3:-3], True
        return "", False
    if text.startswith('"'):
        if len(text) >= 2 and text.endswith('"'):
            return text[1:-1], True
        return "", False
    return text, True


def _is_alpha(char: str) -> bool:
    return "a" <= char <= "z" or "A" <= char <= "Z"


def _is_space(char: str) -> bool:
    return char in " \t"


def _is_newline(char: str) -> bool:
    return char in "\r\n"


def _next_state(char: str, state: str) -> tuple[str, str]:
    """Ollama's parseRuneForState: the next state and the character to keep ("" for none)."""
    if state == "nil":
        if char == "#":
            return "comment", ""
        if _is_space(char) or _is_newline(char):
            return "nil", ""
        return "name", char
    if state == "name":
        if _is_alpha(char):
            return "name", char
        if _is_space(char):
            return "value", ""
        raise ValueError(INVALID_COMMAND)
    if state == "value":
        return ("nil", char) if _is_newline(char) or _is_space(char) else ("value", char)
    if state in ("parameter", "message"):
        if _is_alpha(char) or (state == "parameter" and ((char.isascii() and char.isdigit()) or char == "_")):
            return state, char
        if _is_space(char):
            return "value", ""
        raise EOFError
    # comment
    return ("nil", "") if _is_newline(char) else ("comment", "")


def parse_modelfile(text: str) -> list[Command]:
    """The commands of a Modelfile, or ModelfileError with Ollama's message (and line) for a bad one."""
    commands: list[Command] = []
    state, line, buffer, role, name = "nil", 1, "", "", ""
    for char in text.removeprefix("\ufeff"):
        if _is_newline(char):
            line += 1
        try:
            following, char = _next_state(char, state)
        except EOFError:
            raise ModelfileError(f"unexpected EOF: {buffer}") from None
        except ValueError as exc:
            raise ModelfileError(f"(line {line}): {exc}") from None
        if following != state:
            if state == "name":
                if buffer.lower() not in _COMMANDS:
                    raise ModelfileError(f"(line {line}): {INVALID_COMMAND}")
                word = buffer.lower()
                if word == "from":
                    name = "model"
                elif word == "parameter":
                    following = "parameter"
                else:
                    following = "message" if word == "message" else following
                    name = word
            elif state == "parameter":
                name = buffer
            elif state == "message":
                if buffer not in ("system", "user", "assistant"):
                    raise ModelfileError(f"(line {line}): {INVALID_ROLE}")
                role = buffer
            elif state == "value":
                value, complete = _unquote(buffer.strip())
                if not complete or _is_space(char):
                    buffer += char  # inside quotes, or a space within the value: keep reading it
                    continue
                if role:
                    value, role = f"{role}: {value}", ""
                commands.append(Command(name, value))
            buffer, state = "", following
        if char and char.isprintable():
            buffer += char
    if state == "value":
        value, complete = _unquote(buffer.strip())
        if not complete:
            raise ModelfileError("unexpected EOF")
        commands.append(Command(name, f"{role}: {value}" if role else value))
    elif state not in ("nil", "comment"):
        raise ModelfileError("unexpected EOF")
    if not any(command.name == "model" for command in commands):
        raise ModelfileError("no FROM line")
    return commands


def _go_value(value: str) -> str:
    return f"[{value}]"  # how Go prints the []string Ollama's errors quote


def format_parameter(name: str, value: str) -> int | float | bool | str | list[str]:
    """A PARAMETER's text as the type Ollama stores it (api.FormatParams), or its error."""
    kind = PARAMETER_KINDS.get(name)
    if kind is None:
        raise ModelfileError(f"unknown parameter '{name}'")
    if kind == "list":
        return [value]
    if kind == "bool":
        if value in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if value in ("0", "f", "F", "FALSE", "false", "False"):
            return False
        raise ModelfileError(f"invalid bool value {_go_value(value)}")
    try:
        if kind == "int":
            number = int(value, 10)
            if not -_GO_INT64 <= number < _GO_INT64:
                raise ValueError
            return number
        result = float(value)
    except ValueError:
        raise ModelfileError(f"invalid {kind} value {_go_value(value)}") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise ModelfileError(f"invalid float value {_go_value(value)}")
    return result


def check_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """A create request's JSON `parameters`, checked against the same types (a stop may be one string)."""
    checked: dict[str, Any] = {}
    for name, value in parameters.items():
        kind = PARAMETER_KINDS.get(name)
        if kind is None:
            if name in DEPRECATED_PARAMETERS:
                continue
            raise InvalidRequest(f"unknown parameter '{name}'")
        valid = {
            "int": isinstance(value, int) and not isinstance(value, bool) and -_GO_INT64 <= value < _GO_INT64,
            "float": isinstance(value, int | float) and not isinstance(value, bool) and value == value,
            "bool": isinstance(value, bool),
            "list": isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)),
        }[kind]
        if not valid:
            raise InvalidRequest(f"invalid {kind if kind != 'list' else 'string list'} value for parameter '{name}'")
        checked[name] = [value] if kind == "list" and isinstance(value, str) else value
    return checked


def modelfile_request(text: str) -> ModelfileRequest:
    """A Modelfile as the fields of a create request (Ollama's Modelfile.CreateRequest)."""
    commands = parse_modelfile(text)
    request = ModelfileRequest(source="")
    for command in commands:
        if command.name == "model":
            request.source = command.args
        elif command.name == "template":
            request.template = command.args
        elif command.name == "system":
            request.system = command.args
        elif command.name == "license":
            request.licenses.append(command.args)
        elif command.name == "message":
            role, _, content = command.args.partition(": ")
            request.messages.append({"role": role, "content": content})
        elif command.name == "adapter":
            request.adapters.append(command.args)
        elif command.name in ("draft", "renderer", "parser", "requires"):
            raise ModelfileError(f"{command.name.upper()} is not supported by this runtime")
        elif command.name in DEPRECATED_PARAMETERS:
            continue
        else:
            value = format_parameter(command.name, command.args)
            previous = request.parameters.get(command.name)
            if isinstance(previous, list) and isinstance(value, list):
                previous.extend(value)  # several PARAMETER stop lines add up
            else:
                request.parameters[command.name] = value
    return request
