"""Reading a number out of free-form answer text, and comparing numbers exactly.

Models end with things like "so the answer is $1,234.50." or "18 apples", so extraction is
forgiving about currency signs, thousands separators, units and trailing words, and takes the
LAST number in the text (the conclusion comes after the working). Values are `Fraction`s so
"2.50", "5/2" and "2.5" compare equal with no float rounding.

Left out on purpose: number words ("eighteen"), scientific notation, mixed numbers ("1 1/2"),
leading-dot decimals (".5") and spaced fractions ("3 / 4", which reads as a division the
model wrote out, not an answer).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from ponder.tasks.base import Problem

# One number: an optional sign (before or after a currency sign), digits with optional
# thousands groups, an optional decimal part, an optional "/denominator".
_NUMBER = re.compile(
    r"""
    (?:
        (?P<neg>(?<![\w)\]])-\s?)?\$\s?(?P<neg2>-)?   # currency: -$5, $-5, $ 5
      | (?P<neg3>(?<![\w)\]])-)?                   # bare: -5, but not the "-" in "10-5"
    )
    (?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)
    (?:\.(?P<frac>\d+))?
    (?:/(?P<den>\d+(?:\.\d+)?))?
    """,
    re.VERBOSE | re.ASCII,  # ASCII digits only: int() of other scripts is a surprise
)

# Unicode minus signs and dashes that models (and GSM8K) sometimes write.
_MINUS_LIKE = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-"})

Number = Union[Fraction, int, float, str, None]


def _to_fraction(match: re.Match[str]) -> Fraction | None:
    digits = match["int"].replace(",", "")
    value = Fraction(f"{digits}.{match['frac']}") if match["frac"] else Fraction(int(digits))
    if match["den"] is not None:
        den = Fraction(match["den"])
        if den == 0:
            return None  # "3/0" is not a number; let an earlier one stand
        value /= den
    if match["neg"] or match["neg2"] or match["neg3"]:
        value = -value
    return value


def extract_number(text: str) -> Fraction | None:
    """The last number in `text` as an exact Fraction, or None if there is none."""
    if not isinstance(text, str):
        return None
    found = None
    for match in _NUMBER.finditer(text.translate(_MINUS_LIKE)):
        value = _to_fraction(match)
        if value is not None:
            found = value
    return found


def _as_fraction(x: Number) -> Fraction | None:
    if x is None or isinstance(x, bool):
        return None
    if isinstance(x, Fraction):
        return x
    if isinstance(x, int):
        return Fraction(x)
    if isinstance(x, float):
        return Fraction(repr(x))  # "0.1" rather than its binary expansion
    if isinstance(x, str):
        return extract_number(x)
    raise TypeError(f"numbers_equal: cannot compare a {type(x).__name__}")


def numbers_equal(a: Number, b: Number) -> bool:
    """True when both sides hold a number and the numbers are exactly equal.

    Strings are read with `extract_number`, so "$1,234" equals 1234; a side with no number
    (None, "no idea") is never equal to anything, not even to another such side.
    """
    fa, fb = _as_fraction(a), _as_fraction(b)
    return fa is not None and fb is not None and fa == fb


def score_number(problem: "Problem", answer_text: str) -> float:
    """Verifier for tasks with a numeric answer: 1.0 if the last number matches, else 0.0."""
    return 1.0 if numbers_equal(extract_number(answer_text), problem.answer) else 0.0
