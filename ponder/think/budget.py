"""Reasoning effort -> reasoning budget: resolve an effort name, with a clear error for a wrong one.

The table itself is `ponder.engine.effort` (engines need it too); it is re-exported here.
"""

from __future__ import annotations

from ponder.engine.effort import DEFAULT_EFFORT, EFFORT_BUDGETS, Effort
from ponder.errors import UserError

__all__ = ["DEFAULT_EFFORT", "EFFORT_BUDGETS", "Effort", "budget_for"]


def budget_for(effort: str) -> int | None:
    if effort not in EFFORT_BUDGETS:
        raise UserError(f"unknown reasoning effort {effort!r}; valid: {', '.join(EFFORT_BUDGETS)}")
    return EFFORT_BUDGETS[effort]
