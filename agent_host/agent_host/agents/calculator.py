"""Safe arithmetic for the calculator tool: simpleeval over numbers only, with bounded sizes.

Every operation that could build a huge number is checked before it runs (a big power, product or rounding
costs time and memory long before it could be refused afterwards); strings, lists and shifts never reach
the evaluator.
"""

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from simpleeval import InvalidExpression, SimpleEval

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 1000
# Results beyond ~10^300 are refused before they are computed: big integers cost time and memory.
MAX_RESULT_DIGITS = 300


class CalculationError(ValueError):
    """The expression is not arithmetic this calculator accepts; the message says why."""


def _power(base: float, exponent: float) -> float:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculationError(f"exponent {exponent} is too large (limit {MAX_EXPONENT})")
    if abs(base) > 1 and exponent > 0 and math.log10(abs(base)) * exponent > MAX_RESULT_DIGITS:
        raise CalculationError(f"{base} ** {exponent} has more than {MAX_RESULT_DIGITS} digits")
    result: float = base**exponent
    return result


def _multiply(left: float, right: float) -> float:
    digits = sum(math.log10(abs(value)) for value in (left, right) if abs(value) > 1)
    if digits > MAX_RESULT_DIGITS:
        raise CalculationError(f"the product has more than {MAX_RESULT_DIGITS} digits")
    result: float = left * right
    return result


def _round(number: float, ndigits: int | None = None) -> float:
    # round(1, -10**8) builds 10**(10**8) before it answers: the digit count is bounded like any result's.
    if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > MAX_RESULT_DIGITS):
        raise CalculationError(f"round() takes at most {MAX_RESULT_DIGITS} digits either way")
    result: float = round(number, ndigits)
    return result


OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _multiply,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": _round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
NAMES: dict[str, float] = {"pi": math.pi, "e": math.e}
ALLOWED_NODES: tuple[type, ...] = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Call, *OPERATORS,
)  # fmt: skip


def _check(tree: ast.AST) -> None:
    """Numbers, the four operations, powers and the listed functions; nothing else reaches simpleeval."""
    for node in ast.walk(tree):
        if not isinstance(node, ALLOWED_NODES):
            raise CalculationError(f"{type(node).__name__} is not allowed in an arithmetic expression")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, int | float)):
            raise CalculationError(f"{node.value!r} is not a number")
        if isinstance(node, ast.Name) and node.id not in NAMES and node.id not in FUNCTIONS:
            raise CalculationError(f"unknown name {node.id!r}; known: {', '.join([*NAMES, *FUNCTIONS])}")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
            raise CalculationError("only these functions can be called: " + ", ".join(FUNCTIONS))


def evaluate(expression: str) -> str:
    """The value of an arithmetic expression as text (`^` is read as a power, as on calculators)."""
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if not text:
        raise CalculationError("the expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculationError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculationError(f"{expression!r} is not a valid arithmetic expression") from None
    _check(tree)
    evaluator = SimpleEval(operators=OPERATORS, functions=FUNCTIONS, names=NAMES)
    try:
        value = evaluator.eval(text, previously_parsed=tree.body)
    except ZeroDivisionError:
        raise CalculationError("division by zero") from None
    except (OverflowError, InvalidExpression, ValueError, TypeError) as exc:
        raise CalculationError(str(exc) or type(exc).__name__) from None
    if not isinstance(value, int | float):
        raise CalculationError("the result is not a real number")
    if isinstance(value, float):
        return format(value, ".12g")
    return str(value)
