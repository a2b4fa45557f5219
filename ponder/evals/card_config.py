"""`ponder card` settings: one frozen dataclass, filled from a TOML file (card.toml, shipped
with ponder, is the default) and flags, validated in one place (ponder.config.build_config).

It says what to run and how to grade it; which model, what to compare it with and where to
write the card are arguments of the command (card_cli.py), not settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder.config import build_config, field
from ponder.errors import UserError
from ponder.evals.card_results import EFFORT_ORDER
from ponder.evals.suites import SUITES

DEFAULT_CARD_CONFIG = Path(__file__).resolve().parent / "card.toml"


@dataclass(frozen=True)
class CardConfig:
    # What is run
    suites: tuple[str, ...] = field(tuple(SUITES), "eval suites the card runs")
    efforts: tuple[str, ...] = field(("low", "medium", "high"), "reasoning efforts swept (the x axis of the plots)")
    limit: int | None = field(100, "samples per suite; none = whole datasets")
    suite_limits: tuple[str, ...] = field((), "per-suite limits over `limit`, SUITE=N or SUITE=none (the scorecard's "
                                              "category subsets need the disallowed suite in full)")
    k: int = field(1, "samples per item (maj@k)")
    seed: int = field(0, "sampling seed")
    concurrency: int = field(16, "samples per engine call / requests in flight")
    # How it is graded
    judge: str | None = field(None, "a model spec that grades; none = the offline graders")
    data_dir: str | None = field(None, "folder of the eval datasets (default: $PONDER_DATA)")
    policy: str = field("", "Preparedness policy TOML; empty = ponder/evals/policy.toml")
    cache: str = field("default", "eval response cache: default, none, or a SQLite path")
    examples: int = field(5, "chain-of-thought deception examples shown in the card")

    def __post_init__(self) -> None:
        for name, values, allowed in (("suites", self.suites, tuple(SUITES)), ("efforts", self.efforts, EFFORT_ORDER)):
            if not values:
                raise UserError(f"{name}: name at least one; valid: {', '.join(allowed)}")
            bad = [v for v in values if v not in allowed]
            if bad:
                raise UserError(f"{name}: {', '.join(map(repr, bad))} not valid; valid: {', '.join(allowed)}")
            if len(set(values)) != len(values):
                raise UserError(f"{name}: a value is named twice in {list(values)}")
        for name in ("k", "concurrency"):
            if getattr(self, name) < 1:
                raise UserError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"limit: must be at least 1 or none, got {self.limit}")
        for item in self.suite_limits:
            name, sep, value = item.partition("=")
            if not sep or name not in SUITES or not (value == "none" or (value.isdigit() and int(value) >= 1)):
                raise UserError(f"suite_limits: {item!r} is not SUITE=N or SUITE=none with N >= 1 and SUITE one of "
                                f"{', '.join(SUITES)}")
        if not 0 <= self.examples <= 50:
            raise UserError(f"examples: must be in 0..50, got {self.examples}")

    @property
    def sorted_efforts(self) -> tuple[str, ...]:
        return tuple(e for e in EFFORT_ORDER if e in self.efforts)

    def limit_for(self, suite: str) -> int | None:
        for item in self.suite_limits:
            name, _, value = item.partition("=")
            if name == suite:
                return None if value == "none" else int(value)
        return self.limit

    def policy_path(self) -> Path | None:
        return Path(self.policy).expanduser() if self.policy else None

    def cache_path(self) -> Path | None:
        from ponder.evals.cache import DEFAULT_CACHE

        if self.cache == "none":
            return None
        return DEFAULT_CACHE if self.cache == "default" else Path(self.cache).expanduser()


def load_card_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> CardConfig:
    """defaults <- card.toml (or `path`) <- flag overrides (None = not given)."""
    return build_config(CardConfig, Path(path) if path is not None else DEFAULT_CARD_CONFIG, overrides)
