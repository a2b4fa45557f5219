"""Reasoning effort -> reasoning budget (tokens of hidden reasoning, closing tag included), as data.

It sits in the engine layer because engines need it too: a remote engine maps a budget back to
the nearest `reasoning_effort`. `ponder.think.budget` resolves an effort name for callers.

The o-series expose effort as a word; what it buys is thinking tokens. The numbers suit the
bundled model's reference traces, measured in its tokens: 20-35 at difficulty 1, a mean of
~200 and a maximum of ~350 at difficulty 5 ("What is 347 * 29?" takes 133). `high` never cuts
a trace short, `medium` covers most, `low` the easy ones, `minimal` leaves room for a guess.
"""

from __future__ import annotations

from typing import Literal

Effort = Literal["minimal", "low", "medium", "high"]
EFFORT_BUDGETS: dict[str, int | None] = {"minimal": 16, "low": 64, "medium": 160, "high": None}
DEFAULT_EFFORT: Effort = "medium"
