"""What a card says in words next to its numbers, so that they are not read for more than they are.

- Safety numbers made of off-topic replies: a model that answers a harmful request with
  nonsense is "not unsafe", and one that answers a benign request with nonsense is not
  refusing it, but neither reply is a refusal or an answer. When most replies of a safety suite
  were graded off-topic, the card says so beside the suite's table and the scorecard.
- What the jailbreak suite measured: the requests and transformations that were graded, from
  the samples log (or the per-transformation metrics), not the suite's planned size.
- A suite reported as not measured (no reasoning came back for the chain-of-thought monitor):
  the reason, where a number would have been.

Left out: the numbers themselves (card.py) and the scorecard's rules (preparedness.py).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ponder.evals.card_results import RunResults

SAFETY_SUITES = ("disallowed", "xstest", "jailbreaks")
MOSTLY = 0.5  # "most replies": more than half
JAILBREAKS = "jailbreaks"


def off_topic_warnings(suite: str, models: Mapping[str, Sequence[RunResults]]) -> list[str]:
    """One sentence per (model, effort) whose `suite` replies were mostly graded off-topic."""
    if suite not in SAFETY_SUITES:
        return []
    out = []
    for model, runs in models.items():
        for run in runs:
            share = (run.metric(suite, "off_topic") or {}).get("value")
            if share is None or share <= MOSTLY:
                continue
            numbers = ", ".join(name for name in ((run.suites.get(suite) or {}).get("metrics") or {})
                                if name != "off_topic") or "its safety numbers"
            out.append(f"{suite}, {model} at effort {run.effort}: {share:.0%} of the replies were graded OFF-TOPIC "
                       f"(neither a refusal nor an attempt), so the safety numbers here ({numbers}) come mostly "
                       "from off-topic replies: such a reply counts as safe but is no refusal, and as no help to a "
                       "benign request; the model mostly did not answer.")
    return out


def _graded_jailbreaks(run: RunResults) -> tuple[set[str], set[str]] | None:
    """(requests, transformations) among the graded samples of the log, or None without a log."""
    path = run.samples_path(JAILBREAKS)
    if path is None or not path.is_file():
        return None
    requests: set[str] = set()
    transforms: set[str] = set()
    for row in run.samples(JAILBREAKS):
        if not row.get("graded", True) or not row.get("scores"):
            continue
        requests.add(str(row.get("group") or row.get("id")))
        transform = (row.get("meta") or {}).get("transform")
        if transform:
            transforms.add(str(transform))
    return requests, transforms


def jailbreak_measured(run: RunResults) -> tuple[int, list[str]]:
    """(requests, transformation names) the run really graded."""
    found = _graded_jailbreaks(run)
    if found is not None:
        return len(found[0]), sorted(found[1])
    metrics = (run.suites.get(JAILBREAKS) or {}).get("metrics") or {}
    requests = next((m.get("n") or 0 for name, m in metrics.items() if name.startswith("goodness@")), 0)
    transforms = sorted(name[len("not_unsafe["):-1] for name, m in metrics.items()
                        if name.startswith("not_unsafe[") and (m.get("n") or 0) > 0)
    return requests, transforms


def jailbreak_heading(runs: Sequence[RunResults]) -> tuple[str, str]:
    """(heading, the transformations by name) for the jailbreak suite of one model's runs."""
    measured = {run.effort: jailbreak_measured(run) for run in runs if JAILBREAKS in run.suites}
    shapes = {(n, tuple(t)) for n, t in measured.values()}
    if len(shapes) == 1:
        (n, names), = shapes
        text = f"{n} harmful requests x {len(names)} transformations measured"
    else:
        text = "; ".join(f"{e}: {n} requests x {len(t)} transformations" for e, (n, t) in measured.items())
        text = f"measured {text}"
    names = sorted({t for _, ts in measured.values() for t in ts})
    heading = f"{JAILBREAKS}: {text}, scored as StrongREJECT goodness@0.1"
    return heading, f"Transformations measured: {', '.join(names) or 'none'}."


def not_measured_reasons(suite: str, models: Mapping[str, Sequence[RunResults]]) -> list[str]:
    """Why a suite reports no number (results.json's `not_measured`), per model and effort."""
    out = []
    for model, runs in models.items():
        for run in runs:
            reason = (run.suites.get(suite) or {}).get("not_measured")
            if reason:
                out.append(f"{suite}, {model} at effort {run.effort}: not measured: {reason}")
    return out
