"""Scorers for best-of-n: plain functions `(prompt_messages, completion) -> float`, higher better.

Picked by name from `SCORERS`, or given as a `module:function` path to any importable function
with that signature. A scorer that needs token logprobs says so with a `needs_logprobs = True`
attribute, and the strategy asks the engine for them.

Built in:
- `confidence`: the model's own certainty, no verifier needed: the mean token logprob of the
  whole completion (reasoning and answer), reported as exp(mean) - the geometric-mean token
  probability in (0, 1]. Same ranking as the mean logprob, but never negative, so weighted
  voting can add it up (a sum of negative logprobs would punish popular answers).
- `countdown`: a real verifier for Countdown prompts, read from the prompt text itself (the
  numbers and the target), so it needs no hidden reference answer: 1.0 when the answer's
  expression uses each given number at most once and equals the target, else 0.0; 0.5 when the
  prompt is not a Countdown prompt (no opinion, so it neither helps nor hurts a sample).

Extension point for a process reward model: `prm` is found lazily through `LAZY_SCORERS`
(`ponder.prm.scorer:score`) the first time the name is asked for, so importing it, and loading
its weights, costs nothing until someone uses it; another scorer can register itself with
`register_scorer(name, fn)`. A PRM scores the steps of `completion.reasoning` and reduces them
to one float (its lowest step, as in Math-Shepherd).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
from typing import Callable, Sequence

from ponder.engine.base import Completion
from ponder.errors import UserError
from ponder.model.chat import Message
from ponder.tasks.countdown import score_countdown

# Higher is better; weighted voting adds scores up, so a scorer meant for it should be >= 0.
Scorer = Callable[[Sequence[Message], Completion], float]

NOT_COUNTDOWN = 0.5

# Countdown prompts name the rules, the target ("make 83", "Reach 83", "target 83") and the
# numbers ("numbers 25, 5, 4 and 3", "using 25 5 4 3", "from 25, 5, 4, 3").
_RULES = re.compile(r"countdown|each number|at most once", re.IGNORECASE)
_TARGET = re.compile(r"\b(?:make|reach|target|get)\s*:?\s*(\d+)\b", re.IGNORECASE)
_NUMBERS = re.compile(r"\b(?:numbers|using|from)\s*:?\s*(\d+(?:\s*(?:,\s*and\s+|,|\band\b|\s)\s*\d+)+)",
                      re.IGNORECASE)


def countdown_instance(prompt: str) -> tuple[tuple[int, ...], int] | None:
    """(numbers, target) of a Countdown prompt, or None when the text is not one."""
    if not _RULES.search(prompt):
        return None
    target, numbers = _TARGET.search(prompt), _NUMBERS.search(prompt)
    if target is None or numbers is None:
        return None
    values = tuple(int(n) for n in re.findall(r"\d+", numbers.group(1)))
    return (values, int(target.group(1))) if len(values) >= 2 else None


def _last_user_text(prompt: Sequence[Message]) -> str:
    return next((m.content for m in reversed(prompt) if m.role == "user"), "")


def countdown(prompt: Sequence[Message], completion: Completion) -> float:
    found = countdown_instance(_last_user_text(prompt))
    if found is None:
        return NOT_COUNTDOWN
    numbers, target = found
    # score_countdown reads only the answer text and its keyword arguments, not the problem.
    return score_countdown(None, completion.answer, numbers=numbers, target=target)  # type: ignore[arg-type]


def confidence(prompt: Sequence[Message], completion: Completion) -> float:
    if completion.logprobs is None:
        raise UserError("scorer 'confidence' needs token logprobs, and this engine returned none; "
                        "use another scorer (e.g. scorer=countdown)")
    if not completion.logprobs:
        return 0.0  # nothing generated: the least confident there is
    return math.exp(sum(completion.logprobs) / len(completion.logprobs))


confidence.needs_logprobs = True  # type: ignore[attr-defined]

SCORERS: dict[str, Scorer] = {"confidence": confidence, "countdown": countdown}
# Scorers whose module is imported only when first asked for: name -> "module:function".
LAZY_SCORERS: dict[str, str] = {"prm": "ponder.prm.scorer:score"}


def register_scorer(name: str, fn: Scorer) -> None:
    if not callable(fn):
        raise TypeError(f"scorer {name!r} must be callable")
    SCORERS[name] = fn


def needs_logprobs(fn: Scorer) -> bool:
    return bool(getattr(fn, "needs_logprobs", False))


def _installed(path: str) -> bool:
    try:
        return importlib.util.find_spec(path.partition(":")[0]) is not None
    except ModuleNotFoundError:  # a missing parent package
        return False


def _valid() -> str:
    lazy = [n for n, path in LAZY_SCORERS.items() if n not in SCORERS and _installed(path)]
    return f"valid scorers: {', '.join([*SCORERS, *lazy])}, or module:function"


def _import(path: str, label: str) -> Scorer:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise UserError(f"scorer {label!r}: no module named {exc.name!r}; {_valid()}") from None
        raise
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError(f"scorer {label!r}: module {module_name!r} has no function {attr!r}; {_valid()}")
    return fn


def resolve_scorer(name: str) -> Scorer:
    """The scorer a name or `module:function` path points to, or a UserError naming valid ones."""
    if name in SCORERS:
        return SCORERS[name]
    if name in LAZY_SCORERS:
        try:
            return _import(LAZY_SCORERS[name], name)
        except UserError:
            raise UserError(f"scorer {name!r} is not available in this install yet; {_valid()}") from None
    if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", name):
        return _import(name, name)
    raise UserError(f"unknown scorer {name!r}; {_valid()}")
