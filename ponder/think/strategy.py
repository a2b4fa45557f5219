"""Test-time strategies by name: the registry and the one place user text becomes a strategy.

    make_strategy("self_consistency", {"k": "16"}).run(engine, prompts, params)

A strategy is a frozen dataclass whose fields are its parameters (with help and bounds in the
field metadata, see `ponder.think.base.param`), so the CLI, the server and recipes all validate
the same way: unknown names and out-of-range values raise a UserError that lists what is
valid. Values may be text ("16", as from `--param k=16`) or already numbers.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Callable, Iterable, Mapping, Union

from ponder.errors import UserError
from ponder.think.adaptive import Adaptive
from ponder.think.base import Strategy, ThinkResult, bounds_text
from ponder.think.beam import BeamSearch
from ponder.think.best_of_n import BestOfN
from ponder.think.budget_forcing import BudgetForcing
from ponder.think.self_consistency import SelfConsistency
from ponder.think.single import Single
from ponder.think.weighted_best_of_n import WeightedBestOfN

StrategyFactory = Callable[..., Strategy]

STRATEGIES: dict[str, StrategyFactory] = {
    cls.name: cls
    for cls in (Single, SelfConsistency, BestOfN, WeightedBestOfN, BudgetForcing, Adaptive, BeamSearch)
}
DEFAULT_STRATEGY = "single"

_TYPE_NAMES = {int: "int", float: "number", str: "text"}


def _base_type(hint: Any) -> type:
    """int for `int` and `int | None`; the registry's params are int, float or str."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def describe_params(name: str) -> list[str]:
    """One line per parameter of strategy `name`: "k: int in [1, 256], default 8 - samples ..."."""
    factory = STRATEGIES[name]
    hints = typing.get_type_hints(factory)
    lines = []
    for f in dataclasses.fields(factory):  # type: ignore[arg-type]
        kind = _TYPE_NAMES[_base_type(hints[f.name])]
        default = "none" if f.default is None else f.default
        bounds = bounds_text(f.metadata)
        kind += f" in {bounds}" if bounds else ""
        lines.append(f"{f.name}: {kind}, default {default} - {f.metadata.get('help', '')}")
    return lines


def _valid_params(name: str) -> str:
    lines = describe_params(name)
    return f"valid parameters: {'; '.join(lines)}" if lines else "it takes no parameters"


def _coerce(strategy: str, key: str, value: Any, kind: type) -> Any:
    """`value` as the parameter's type; its bounds are checked by the strategy itself."""
    where = f"strategy {strategy!r}, parameter {key!r}"
    if kind is str:
        if not isinstance(value, str) or not value:
            raise UserError(f"{where}: expected non-empty text, got {value!r}")
        return value
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError  # True samples, or 2.5 samples, is a mistake, not 1 or 2
        return int(value) if kind is int else float(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{where}: expected a {'whole number' if kind is int else 'number'}, got {value!r}") from None


def make_strategy(name: str, params: Mapping[str, str | int | float] | None = None) -> Strategy:
    """The strategy `name` with `params` validated and converted, or a UserError naming valid ones."""
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")
    factory = STRATEGIES[name]
    fields = {f.name: f for f in dataclasses.fields(factory)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(factory)
    values = {}
    for key, value in (params or {}).items():
        if key not in fields:
            raise UserError(f"strategy {name!r} has no parameter {key!r}; {_valid_params(name)}")
        values[key] = _coerce(name, key, value, _base_type(hints[key]))
    return factory(**values)


def parse_param_pairs(pairs: Iterable[str], flag: str = "--param") -> dict[str, str]:
    """["k=16", "scorer=countdown"] -> {"k": "16", "scorer": "countdown"}. Values stay text;
    `make_strategy` converts and checks them against the strategy's parameters."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UserError(f"{flag} {pair!r}: expected KEY=VALUE, e.g. {flag} k=16")
        if key in out:
            raise UserError(f"{flag} {key} is given twice")
        out[key] = value.strip()
    return out


__all__ = ["DEFAULT_STRATEGY", "STRATEGIES", "Strategy", "ThinkResult", "describe_params", "make_strategy",
           "parse_param_pairs"]
