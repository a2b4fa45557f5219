"""Reasoning effort -> reasoning budget (tokens of hidden reasoning, closing tag included).

The o-series expose effort as a word; what it buys is thinking tokens. The numbers suit the
bundled model, whose hardest reference traces run to about 150 tokens: `high` never cuts a
trace short, `minimal` leaves room for little more than a guess.
"""

from __future__ import annotations

from typing import Literal

from ponder.errors import UserError

Effort = Literal["minimal", "low", "medium", "high"]
EFFORT_BUDGETS: dict[str, int | None] = {"minimal": 8, "low": 32, "medium": 96, "high": None}
DEFAULT_EFFORT: Effort = "medium"


def budget_for(effort: str) -> int | None:
    if effort not in EFFORT_BUDGETS:
        raise UserError(f"unknown reasoning effort {effort!r}; valid: {', '.join(EFFORT_BUDGETS)}")
    return EFFORT_BUDGETS[effort]
