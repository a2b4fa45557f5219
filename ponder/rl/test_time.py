"""Test-time compute curves of a trained policy, for figure (b) of the o1 pair: held-out accuracy
against thinking (reasoning tokens per problem, over every sample), (1) sweeping the reasoning
budget with greedy decoding and (2) majority vote over the first k of 16 samples (sample i has
seed i, so k=4 is what self-consistency with k=4 would draw). Voting reuses `ponder.think`'s
answer normalisation, a pure function; nothing here trains.
"""

from __future__ import annotations

from dataclasses import replace

from ponder.engine.base import SamplingParams
from ponder.engine.native import NativeEngine
from ponder.model.chat import Message
from ponder.tasks.base import Problem
from ponder.think.self_consistency import vote_result

BUDGETS = (8, 16, 32, 64, 128, 256, None)
KS = (1, 2, 4, 8, 16)


def _point(setting: str, problems: list[Problem], answers: list[str], tokens: float, reasoning: float) -> dict:
    """`tokens` is what a server bills (prompt + completion); `reasoning_tokens` is the thinking,
    the x of o1's figure. They differ most under a small budget: the model, cut off, often writes
    a long answer, so b=8 can bill more than b=64 while thinking 8 tokens."""
    accuracy = sum(p.verify(a) for p, a in zip(problems, answers)) / max(len(problems), 1)
    return {"setting": setting, "accuracy": round(accuracy, 4), "tokens": round(tokens, 1),
            "reasoning_tokens": round(reasoning, 1)}


def test_time_curves(engine: NativeEngine, problems: list[Problem], max_tokens: int = 512,
                     temperature: float = 0.8) -> dict[str, list[dict]]:
    prompts = [[Message("user", p.prompt)] for p in problems]
    n = max(len(problems), 1)
    budget = []
    for b in BUDGETS:
        out = engine.generate(prompts, SamplingParams(max_completion_tokens=max_tokens, reasoning_budget=b))
        budget.append(_point("high" if b is None else f"b={b}", problems, [c.answer for c in out],
                             sum(c.prompt_tokens + c.completion_tokens for c in out) / n,
                             sum(c.reasoning_tokens for c in out) / n))
    base = SamplingParams(max_completion_tokens=max_tokens, temperature=temperature)
    flat = engine.generate([p for p in prompts for _ in range(max(KS))],
                           [replace(base, seed=i) for _ in prompts for i in range(max(KS))])
    pools = [flat[j * max(KS):(j + 1) * max(KS)] for j in range(len(prompts))]
    majority = []
    for k in KS:
        results = [vote_result(pool[:k]) for pool in pools]
        majority.append(_point(f"k={k}", problems, [r.answer for r in results],
                               sum(r.prompt_tokens + r.completion_tokens for r in results) / n,
                               sum(r.reasoning_tokens for r in results) / n))
    return {"budget": budget, "majority": majority}


def thinking(point: dict) -> float:
    """A point's x: its reasoning tokens, or its billed tokens in curves saved before they were kept."""
    return point.get("reasoning_tokens", point["tokens"])


def monotone(points: list[dict]) -> bool:
    """True when accuracy never falls as compute rises (the o1 claim, checked on our curve)."""
    ordered = sorted(points, key=thinking)
    return all(b["accuracy"] >= a["accuracy"] for a, b in zip(ordered, ordered[1:]))
