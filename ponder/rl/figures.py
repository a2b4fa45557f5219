"""The o1 figure pair and two behaviour plots, written to the run directory at the end of RL.

(a) rl_compute.png: held-out pass@1 against cumulative training FLOPs (log x);
(b) test_time.png: held-out accuracy of the trained model against test-time thinking (reasoning
    tokens, log x), both a reasoning-budget sweep (greedy) and majority vote over k samples;
(c) reasoning_length.png: mean reasoning tokens of the rollouts over training;
(d) revisions.png: the share of rollouts whose chain of thought checks or revises a step.

The data for (a), (c) and (d) is metrics.jsonl; (b) runs the final model (see test_time.py).
matplotlib is imported only here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ponder.rl.test_time import thinking


def read_metrics(run: Path) -> list[dict]:
    rows = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line from a kill
    return rows


def _axes(title: str, xlabel: str, ylabel: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    return plt, fig, ax


def _save(plt, fig, ax, out: Path) -> Path:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def rl_compute_plot(rows: Sequence[dict], run: Path, hardest: int) -> Path:
    evals = [r for r in rows if "heldout_pass1" in r and r.get("flops", 0) > 0]
    start = next((r for r in rows if r.get("step") == 0 and "heldout_pass1" in r), None)
    plt, fig, ax = _axes("held-out pass@1 (effort high) against RL training compute",
                         "cumulative training FLOPs (rollouts + updates; log)", "held-out pass@1 (%)")
    key = f"heldout_pass1_d{hardest}"
    lines = [("heldout_pass1", "task mix, greedy", "o-"), (key, f"difficulty {hardest}, greedy", "o-"),
             ("heldout_pass1_sampled", "task mix, sampled", "s--"),
             (f"{key}_sampled", f"difficulty {hardest}, sampled", "s--")]
    for name, label, style in lines:
        points = [(r["flops"], 100 * r[name]) for r in evals if name in r]
        if not points:
            continue  # runs without sampled evals (eval_samples 0, or older runs)
        ax.plot(*zip(*points), style, label=label)
        if start is not None and name in start:
            ax.axhline(100 * start[name], ls=":", lw=1, color=ax.lines[-1].get_color())
    ax.set_xscale("log")
    return _save(plt, fig, ax, run / "rl_compute.png")


def over_training_plot(rows: Sequence[dict], run: Path, key: str, ylabel: str, name: str, scale: float = 1.0) -> Path:
    steps = [r for r in rows if key in r and r.get("step", 0) > 0]
    plt, fig, ax = _axes(f"{ylabel} over RL training", "RL step", ylabel)
    ax.plot([r["step"] for r in steps], [scale * r[key] for r in steps], "-", alpha=0.4, label="per step")
    window = max(1, len(steps) // 10)
    smooth = [sum(scale * s[key] for s in steps[max(0, i - window + 1): i + 1]) / len(steps[max(0, i - window + 1): i + 1])
              for i in range(len(steps))]
    ax.plot([r["step"] for r in steps], smooth, "-", lw=2, label=f"mean of {window}")
    ax.set_ylim(bottom=0)  # lengths and shares: an all-zero series would otherwise get a negative axis
    return _save(plt, fig, ax, run / name)


def test_time_plot(curves: dict, run: Path) -> Path:
    plt, fig, ax = _axes("held-out accuracy of the RL-trained model against test-time compute",
                         "mean reasoning tokens per problem (every sample; log)", "accuracy (%)")
    for name, style in (("budget", "o-"), ("majority", "s--")):
        points = curves.get(name, [])
        ax.plot([thinking(p) for p in points], [100 * p["accuracy"] for p in points], style,
                label={"budget": "reasoning budget (greedy)", "majority": "majority vote over k"}[name])
        for p in points:
            ax.annotate(p["setting"], (thinking(p), 100 * p["accuracy"]), textcoords="offset points",
                        xytext=(3, -9), fontsize=7)
    ax.set_xscale("log")
    return _save(plt, fig, ax, run / "test_time.png")


def write_figures(run: Path, hardest: int, curves: dict | None = None) -> list[Path]:
    rows = read_metrics(run)
    out = [rl_compute_plot(rows, run, hardest),
           over_training_plot(rows, run, "reasoning_tokens", "mean reasoning tokens", "reasoning_length.png"),
           over_training_plot(rows, run, "revise_share", "chains that check or revise (%)", "revisions.png", 100)]
    if curves is not None:
        out.append(test_time_plot(curves, run))
    return out
