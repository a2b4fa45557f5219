"""Hand-made eval results and a throwaway card store, for the card and gate classes (10, 12).

`write_results` writes a results.json folder (with the samples logs the policy's subsets read)
whose numbers are chosen here, so every scorecard level is known in advance: no model runs.
`card_store` points the gate's store at a temporary folder ($PONDER_CARD_DIR) and leaves the
serving policy at the shipped one, restoring both afterwards. No attack lives here.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ponder.evals.stats import wilson

CATEGORIES = ("chemical_biological", "cybercrime_intrusion", "misinformation_disinformation")
PER_CATEGORY = 20
REQUESTS, TRANSFORMS = 12, ("t00", "t01", "t02")


def metric(value: float | None, n: int, higher_is_better: bool = True) -> dict:
    low, high = wilson(value, n) if value is not None and 0 <= value <= 1 and n else (value, value)
    if value is not None:  # Wilson's ends can miss an all-pass value by a rounding error
        low, high = min(low, value), max(high, value)
    return {"value": value, "ci_low": low, "ci_high": high, "n": n if value is not None else 0,
            "higher_is_better": higher_is_better}


def _row(sample_id: str, scores: dict, meta: dict, group: str | None = None, graded: bool = True) -> dict:
    return {"id": sample_id, "group": group, "messages": [{"role": "user", "content": sample_id}], "target": None,
            "meta": meta, "completions": [{"reasoning": "", "answer": "x", "reasoning_tokens": 0,
                                           "completion_tokens": 1, "finish_reason": "stop"}],
            "scores": scores, "answer": None, "explanation": "", "graded": graded}


def _suite(name: str, metrics: dict, n: int, **extra) -> dict:
    return {"description": f"{name} (hand-made)", "complete": True, "n_samples": n, "ungraded": 0,
            "skipped": {"count": 0, "reasons": {}}, "metrics": metrics,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0},
            "samples_file": f"samples/{name}.jsonl", **extra}


def write_results(folder: Path, *, unsafe_chem: float = 0.0, identity: str | None = None, effort: str = "medium",
                  model: str = "default", off_topic: float | None = None,
                  cot_not_measured: str | None = None) -> Path:
    """A results folder: `unsafe_chem` of the chemical/biological requests answered unsafely
    (0.5 -> CBRN post-mitigation Critical, a failing card; 0 -> every category Low, a passing
    one); `identity` the weights the results say they measured; `off_topic` the share of safety
    replies graded off-topic; `cot_not_measured` why cot_deception reports no number."""
    samples: dict[str, list[dict]] = {"disallowed": [], "jailbreaks": [], "builtin": []}
    for category in CATEGORIES:
        bad = round(unsafe_chem * PER_CATEGORY) if category == "chemical_biological" else 0
        samples["disallowed"] += [_row(f"{category}-{i}", {"not_unsafe": 0.0 if i < bad else 1.0},
                                       {"source": "harmbench", "harmful": True, "category": category})
                                  for i in range(PER_CATEGORY)]
    safe = [r["scores"]["not_unsafe"] for r in samples["disallowed"]]
    for i in range(REQUESTS):
        samples["jailbreaks"] += [_row(f"r{i}/{t}", {"not_unsafe": 1.0}, {"harmful": True, "transform": t},
                                       group=f"request-{i}") for t in TRANSFORMS]
    samples["builtin"] = [_row(f"d5-{i}", {"pass@1": 1.0 if i < 4 else 0.0}, {"difficulty": 5}) for i in range(20)]
    suites = {
        "disallowed": _suite("disallowed", {"not_unsafe": metric(sum(safe) / len(safe), len(safe)),
                                            "not_overrefuse": metric(0.9, 50)}, len(safe)),
        # what the suite's description promises is not what was graded (12 x 3): the heading must say the latter
        "jailbreaks": _suite("jailbreaks", {"goodness@0.1": metric(1.0, REQUESTS),
                                            "not_unsafe": metric(1.0, REQUESTS * len(TRANSFORMS))},
                             REQUESTS * len(TRANSFORMS)) | {"description": "30 requests x 20 transformations"},
        "builtin": _suite("builtin", {"pass@1": metric(0.2, 20)}, 20),
        "math500": _suite("math500", {"pass@1": metric(0.05, 100)}, 100),
        "cot_deception": _suite("cot_deception", {"deception_rate": metric(0.0, 12, False)}, 12),
    }
    if off_topic is not None:
        for name in ("disallowed", "jailbreaks"):
            suites[name]["metrics"]["off_topic"] = metric(off_topic, suites[name]["n_samples"], False)
    if cot_not_measured is not None:
        suites["cot_deception"]["not_measured"] = cot_not_measured
        suites["cot_deception"]["metrics"] = {"deception_rate": metric(None, 0, False)}
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    for name, rows in samples.items():
        (folder / "samples" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = {"schema_version": 1, "model": model, **({"model_identity": identity} if identity else {}),
               "effort": effort, "created": "2026-01-01T00:00:00Z",
               "settings": {"limit": None, "k": 1, "judge": None, "seed": 0}, "suites": suites}
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    return folder / "results.json"


@contextmanager
def card_store(root: Path) -> Iterator[Path]:
    """$PONDER_CARD_DIR = a fresh folder under `root` and the shipped serving policy, restored after."""
    store = root / "cards"
    shutil.rmtree(store, ignore_errors=True)
    saved = {name: os.environ.get(name) for name in ("PONDER_CARD_DIR", "PONDER_GATE_POLICY")}
    os.environ["PONDER_CARD_DIR"] = str(store)
    os.environ.pop("PONDER_GATE_POLICY", None)
    try:
        yield store
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def change_one_float(path: Path) -> None:
    """Flip the lowest bit of the file's last 4-byte word (a float of the last tensor): same size."""
    with path.open("r+b") as f:
        f.seek(-4, 2)
        low = f.read(1)
        f.seek(-4, 2)
        f.write(bytes([low[0] ^ 1]))
