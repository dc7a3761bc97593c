"""A tiny, safe arithmetic language for rule formulas such as ``100 * score``.

Instructors write formulas as data, so they must never reach ``eval()``. A formula is parsed with
``ast`` and only a whitelist survives: numbers, a few named inputs, ``+ - * / // % **``, unary
minus and the functions ``min max round floor ceil abs``. The tree is compiled once into nested
closures, so evaluating it per event costs a handful of Python calls.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

MAX_LENGTH = 200
MAX_EXPONENT = 10.0

Env = Mapping[str, float]
Node = Callable[[Env], float]


class InvalidExpression(ValueError):
    """The formula uses something outside the whitelist; the message says what."""


class EvaluationError(ArithmeticError):
    """The formula could not produce a finite number for these inputs (e.g. division by 0)."""


_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCTIONS: dict[str, tuple[Callable[..., float], int, int]] = {
    # name: (function, least arguments, most arguments)
    "min": (min, 2, 8),
    "max": (max, 2, 8),
    "round": (lambda x: float(round(x)), 1, 1),
    "floor": (lambda x: float(math.floor(x)), 1, 1),
    "ceil": (lambda x: float(math.ceil(x)), 1, 1),
    "abs": (abs, 1, 1),
}


@dataclass(frozen=True)
class Expression:
    """A compiled formula. Equal when the source text is equal."""

    source: str
    names: frozenset[str]
    _run: Node = field(compare=False, repr=False)

    @cached_property
    def ordered_names(self) -> tuple[str, ...]:
        """The names the formula uses, sorted (as its explanation lists them)."""
        return tuple(sorted(self.names))

    def evaluate(self, env: Env) -> float:
        """The value for ``env`` (every name the formula uses must be present)."""
        try:
            value = self._run(env)
        except (ZeroDivisionError, OverflowError, ValueError, TypeError) as exc:
            raise EvaluationError(f"`{self.source}` cannot be computed: {exc}") from None
        if isinstance(value, complex) or not math.isfinite(value):
            raise EvaluationError(f"`{self.source}` is not a finite number")
        return float(value)


def compile_expression(source: str, allowed_names: frozenset[str]) -> Expression:
    """Parse and compile ``source``; raise ``InvalidExpression`` naming the first problem."""
    if not isinstance(source, str) or not source.strip():
        raise InvalidExpression("must be a non-empty formula")
    if len(source) > MAX_LENGTH:
        raise InvalidExpression(f"must be at most {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        raise InvalidExpression(f"`{source}` is not a valid formula") from None
    used: set[str] = set()
    run = _compile(tree.body, allowed_names, used)
    return Expression(source.strip(), frozenset(used), run)


def _compile(node: ast.AST, allowed: frozenset[str], used: set[str]) -> Node:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidExpression("only numbers may appear as constants")
        number = float(value)
        return lambda env: number
    if isinstance(node, ast.Name):
        name = node.id
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise InvalidExpression(f"unknown name {name!r} (known: {known})")
        used.add(name)
        return lambda env: env[name]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _compile(node.operand, allowed, used)
        if isinstance(node.op, ast.USub):
            return lambda env: -inner(env)
        return inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op = _BINARY[type(node.op)]
        left = _compile(node.left, allowed, used)
        right = _compile(node.right, allowed, used)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        # A constant side (``60 * score``) is read once here, not called per evaluation.
        if isinstance(node.left, ast.Constant):
            constant = left({})
            return lambda env: op(constant, right(env))
        if isinstance(node.right, ast.Constant):
            constant = right({})
            return lambda env: op(left(env), constant)
        return lambda env: op(left(env), right(env))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        spec = _FUNCTIONS.get(node.func.id)
        if spec is None:
            raise InvalidExpression(f"unknown function {node.func.id!r}")
        fn, least, most = spec
        if node.keywords or not least <= len(node.args) <= most:
            raise InvalidExpression(f"{node.func.id}() takes {least} to {most} arguments")
        args = [_compile(arg, allowed, used) for arg in node.args]
        if len(args) == 1:  # round, floor, ceil, abs: no argument tuple to build per call
            (only,) = args
            return lambda env: float(fn(only(env)))
        if len(args) == 2:
            first, second = args
            return lambda env: float(fn(first(env), second(env)))
        return lambda env: float(fn(*(a(env) for a in args)))
    raise InvalidExpression(f"`{ast.unparse(node)}` is not allowed in a formula")


def _power(base: Node, exponent: Node) -> Node:
    """``**`` with a bounded exponent, so a formula cannot build astronomically large numbers."""

    def run(env: Env) -> float:
        e = exponent(env)
        if abs(e) > MAX_EXPONENT:
            raise ValueError(f"exponent {e:g} is larger than {MAX_EXPONENT:g}")
        return float(base(env) ** e)

    return run
