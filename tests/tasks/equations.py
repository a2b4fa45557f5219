"""Test helper: check every equation a reference trace writes, and that each is a step a tiny
model can learn (one-digit products, small sums, one-digit divisors)."""

from __future__ import annotations

import re
from fractions import Fraction

from ponder.tasks import expressions

# "4*9+6=42 c4", "3-8+10=5 b1", "15/4=3 r3", "12+15=27", "5-12=-7"
_EQUATION = re.compile(r"(?<![\d)(])(\d+(?:[-+*/]\d+)+)=(-?\d+)(?: ([cbr])(\d+))?")
# "347*20: ... => 6940" (a longhand block on one line)
_BLOCK = re.compile(r"(?<![-+*/\d)])(\d+)([-+*/])(\d+): [^\n;]*?=> (-?\d+)")


def check_equations(trace: str) -> int:
    """Assert every equation and longhand block in `trace` is true; return how many."""
    count = 0
    for m in _EQUATION.finditer(trace):
        lhs, rhs, mark, n = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        numbers = [int(x) for x in re.findall(r"\d+", lhs)]
        # lhs is digits and + - * / only (the regex says so), so eval is safe here.
        value = eval(lhs.replace("/", "*Fraction(1)/"), {"Fraction": Fraction})
        if "/" in lhs:
            a, d = numbers
            assert d < 10 and rhs < 10, f"division step too big: {m.group()}"
            assert a // d == rhs and (a % d == int(n) if mark == "r" else a % d == 0), m.group()
        else:
            assert value == rhs, f"wrong step: {m.group()}"
        if "*" in lhs:
            small = (numbers[0] < 10 and numbers[1] < 10) or 0 in numbers[:2]
            assert small, f"product too big: {m.group()}"
        elif "+" in lhs and "-" not in lhs:
            assert all(x < 20 for x in numbers), f"sum too big: {m.group()}"
        if mark == "c":
            assert int(n) == rhs // 10 and rhs >= 10, f"wrong carry: {m.group()}"
        if mark == "b":
            assert lhs.endswith("+10") and n == "1", f"wrong borrow: {m.group()}"
        count += 1
    for m in _BLOCK.finditer(trace):
        a, op, b, result = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        expected = expressions.evaluate((op, a, b))
        assert expected == Fraction(result), f"wrong result: {m.group()}"
        count += 1
    return count
