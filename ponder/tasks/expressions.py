"""Small arithmetic expressions over + - * / and non-negative integers, handled safely.

Countdown answers are expressions a model wrote, so they are untrusted text: they are parsed
with `ast` and only integer literals, parentheses and the four binary operators are accepted
(no names, calls, powers, unary minus or floats). Nothing is ever passed to eval. Values are
exact Fractions.

A tree is either an int (a leaf) or a tuple (op, left, right) with op in "+-*/".
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from fractions import Fraction
from typing import Union

Tree = Union[int, tuple[str, "Tree", "Tree"]]

_AST_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
# Long inputs are never a countdown answer, and deep nesting could exhaust the parser.
MAX_CHARS = 200
MAX_LITERAL_DIGITS = 6

_ALLOWED = re.compile(r"[0-9()+\-*/ ]+")
_CANDIDATE = re.compile(r"[0-9()+\-*/ ]*[0-9][0-9()+\-*/ ]*")
_TIMES_WORD = re.compile(r"(?<=[0-9)])\s*[x\u00d7]\s*(?=[0-9(])")
_NORMALISE = str.maketrans({"\u00f7": "/", "\u2212": "-", "\u2013": "-", "\u22c5": "*"})


def parse(text: str) -> Tree | None:
    """The tree for `text`, or None if it is not a plain + - * / expression over integers."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_CHARS:
        return None
    if not _ALLOWED.fullmatch(text):
        return None  # also keeps out what ast would accept but a person would not: 1_000
    try:
        node = ast.parse(text.strip(), mode="eval").body
        return _convert(node)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _convert(node: ast.AST) -> Tree:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("only non-negative integer literals")
        if len(str(value)) > MAX_LITERAL_DIGITS:
            raise ValueError("literal too long")
        return value
    if isinstance(node, ast.BinOp) and type(node.op) in _AST_OPS:
        return (_AST_OPS[type(node.op)], _convert(node.left), _convert(node.right))
    raise ValueError(f"unsupported syntax: {type(node).__name__}")


def evaluate(tree: Tree) -> Fraction:
    """Exact value; raises ZeroDivisionError on division by zero."""
    if isinstance(tree, int):
        return Fraction(tree)
    op, left, right = tree
    a, b = evaluate(left), evaluate(right)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b


def leaves(tree: Tree) -> Iterator[int]:
    """The integer literals, left to right."""
    if isinstance(tree, int):
        yield tree
    else:
        yield from leaves(tree[1])
        yield from leaves(tree[2])


def render(tree: Tree) -> str:
    """Text for `tree` with no spaces and only the parentheses its shape needs.

    A right operand of equal precedence keeps its parentheses ("a-(b+c)", and also
    "a+(b+c)"), so the text parses back to exactly this tree and its steps.
    """
    if isinstance(tree, int):
        return str(tree)
    op, left, right = tree
    lt, rt = render(left), render(right)
    if not isinstance(left, int) and _PRECEDENCE[left[0]] < _PRECEDENCE[op]:
        lt = f"({lt})"
    if not isinstance(right, int) and _PRECEDENCE[right[0]] <= _PRECEDENCE[op]:
        rt = f"({rt})"
    return f"{lt}{op}{rt}"


def _balance(text: str) -> str:
    """Drop stray outer parentheses that prose wrapped around an expression."""
    text = text.strip()
    while text.count(")") > text.count("(") and text.endswith(")"):
        text = text[:-1].rstrip()
    while text.count("(") > text.count(")") and text.startswith("("):
        text = text[1:].lstrip()
    return text


def find_expression(answer_text: str) -> str | None:
    """The expression in a free-form answer such as "Answer: (25-5)*4+3 = 83".

    Looks at the last non-empty line, splits it at "=" and takes the first side that
    holds an operator (so "83 = (25-5)*4+3" works too); a lone number is the fallback.
    """
    if not isinstance(answer_text, str):
        return None
    text = _TIMES_WORD.sub("*", answer_text.translate(_NORMALISE))
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    fallback = None
    for side in lines[-1].split("="):
        runs = [_balance(m.group()) for m in _CANDIDATE.finditer(side)]
        runs = [r for r in runs if r]
        if not runs:
            continue
        best = max(runs, key=len)
        if any(op in best for op in "+-*/"):
            return best
        fallback = fallback or best
    return fallback
