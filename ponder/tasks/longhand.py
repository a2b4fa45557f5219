"""Written ("longhand") arithmetic: the step format every reference trace uses for + - * /.

The reader is a ~3M-parameter model whose tokenizer gives every digit its own token, so each
step is something it can learn by rote: one single-digit product plus a carry, or a sum of at
most three single digits, in one fixed format:

    347*9: 7*9=63 c6, 4*9+6=42 c4, 3*9+4=31 => 3123
    3123+6940: 3+0=3, 2+4=6, 1+9=10 c1, 3+6+1=10 => 10063
    503-178: 3-8+10=5 b1, 0-1-7+10=2 b1, 5-1-1=3 => 325
    156/4: 1/4=0 r1, 15/4=3 r3, 36/4=9 => 39

Columns run least-significant first for + - * (the order carries flow); division runs
most-significant first (the order remainders flow). The last step of + and * writes its whole
value, so the result after "=>" is that value followed by the earlier digits in reverse.
Every result is stated once in normal order after "=>", because later steps reuse it.

Small cases skip the columns and state the fact ("12+15=27"): + and - when both operands are
below 20, * when both are single digits, / when divisor and quotient are single digits.

Left out: division by numbers of two or more digits and inexact division (the generators
never ask for them), and negative operands.
"""

from __future__ import annotations

SMALL = 20  # + and - with both operands below this are written as a single fact


def _digits(n: int) -> list[int]:
    """Digits of n >= 0, least significant first."""
    return [int(c) for c in reversed(str(n))]


def add(a: int, b: int) -> str:
    """Column addition of a, b >= 0, least-significant column first."""
    _check_nonneg("add", a, b)
    if a < SMALL and b < SMALL:
        return f"{a}+{b}={a + b}"
    da, db = _digits(a), _digits(b)
    width = max(len(da), len(db))
    da += [0] * (width - len(da))
    db += [0] * (width - len(db))
    steps, carry = [], 0
    for i, (x, y) in enumerate(zip(da, db)):
        total = x + y + carry
        expr = f"{x}+{y}" + (f"+{carry}" if carry else "")
        last = i == width - 1
        steps.append(f"{expr}={total}" + ("" if last or total < 10 else f" c{total // 10}"))
        carry = total // 10
    return f"{a}+{b}: {', '.join(steps)} => {a + b}"


def sub(a: int, b: int) -> str:
    """Column subtraction with borrows; a result below zero is computed as -(b-a)."""
    _check_nonneg("sub", a, b)
    if a < SMALL and b < SMALL:
        return f"{a}-{b}={a - b}"
    if a < b:
        return f"{a}-{b} = -({b}-{a})\n{sub(b, a)}\n=> {a - b}"
    da, db = _digits(a), _digits(b)
    db += [0] * (len(da) - len(db))
    steps, borrow = [], 0
    for x, y in zip(da, db):
        expr = f"{x}" + (f"-{borrow}" if borrow else "") + f"-{y}"
        value = x - borrow - y
        if value < 0:
            steps.append(f"{expr}+10={value + 10} b1")
            borrow = 1
        else:
            steps.append(f"{expr}={value}")
            borrow = 0
    return f"{a}-{b}: {', '.join(steps)} => {a - b}"


def _mul_by_digit(a: int, digit: int, shift: int) -> str:
    """a times one digit, written as a*(digit followed by `shift` zeros)."""
    da = _digits(a)
    steps, carry = [], 0
    for i, x in enumerate(da):
        value = x * digit + carry
        expr = f"{x}*{digit}" + (f"+{carry}" if carry else "")
        last = i == len(da) - 1
        steps.append(f"{expr}={value}" + ("" if last or value < 10 else f" c{value // 10}"))
        carry = value // 10
    factor = digit * 10**shift
    return f"{a}*{factor}: {', '.join(steps)} => {a * factor}"


def mul(a: int, b: int) -> str:
    """Long multiplication: one line per nonzero digit of b, then a running column sum."""
    _check_nonneg("mul", a, b)
    if a < 10 and b < 10:
        return f"{a}*{b}={a * b}"
    if a == 0 or b == 0:
        return f"{a}*{b}=0"
    # The longer number goes on top so there are fewer partial products to add up.
    if len(str(b)) > len(str(a)):
        return f"{a}*{b} = {b}*{a}\n{mul(b, a)}"
    lines, partials = [], []
    for shift, digit in enumerate(_digits(b)):
        if digit:  # a zero digit adds nothing; the next header's zeros show the skip
            lines.append(_mul_by_digit(a, digit, shift))
            partials.append(a * digit * 10**shift)
    total = partials[0]
    for p in partials[1:]:
        lines.append(add(total, p))
        total += p
    return "\n".join(lines)


def div(a: int, b: int) -> str:
    """Short division by a one-digit divisor that divides a exactly."""
    _check_nonneg("div", a, b)
    if not 1 <= b <= 9:
        raise ValueError(f"longhand division needs a one-digit divisor, got {b}")
    if a % b:
        raise ValueError(f"longhand division needs an exact quotient, {a}/{b} is not")
    if a // b < 10:
        return f"{a}/{b}={a // b}"
    steps, rem = [], 0
    for digit in str(a):
        part = rem * 10 + int(digit)
        rem = part % b
        steps.append(f"{part}/{b}={part // b}" + (f" r{rem}" if rem else ""))
    return f"{a}/{b}: {', '.join(steps)} => {a // b}"


_OPS = {"+": (add, lambda a, b: a + b), "-": (sub, lambda a, b: a - b),
        "*": (mul, lambda a, b: a * b), "/": (div, lambda a, b: a // b)}


def calc(a: int, op: str, b: int) -> tuple[int, str]:
    """(value, trace) of `a op b`; the trace's last number is always the value."""
    if op not in _OPS:
        raise ValueError(f"unknown operator {op!r}; expected one of {sorted(_OPS)}")
    write, apply = _OPS[op]
    return apply(a, b), write(a, b)


def _check_nonneg(name: str, a: int, b: int) -> None:
    if a < 0 or b < 0:
        raise ValueError(f"longhand {name} takes operands >= 0, got {a} and {b}")
