"""The `ponder bench think` figure: accuracy against tokens per problem (log x), one line per
strategy, single runs as markers. matplotlib is imported here only, when a plot is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ponder.think.curves import CurvePoint

STYLES = {"self_consistency": "o-", "best_of_n": "s--", "weighted_best_of_n": "^-.", "budget_forcing": "D:",
          "adaptive": "r*", "beam": "kP"}


def plot_curves(points: Sequence[CurvePoint], out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy in dict.fromkeys(p.strategy for p in points):
        line = sorted((p for p in points if p.strategy == strategy), key=lambda p: p.tokens)
        style = STYLES.get(strategy, "x-")
        ax.plot([p.tokens for p in line], [100 * p.accuracy for p in line], style, label=strategy,
                markersize=12 if style[-1] in "*P" else 5)
        if strategy == "self_consistency" or len(line) == 1:
            for p in line:
                ax.annotate(p.setting, (p.tokens, 100 * p.accuracy), textcoords="offset points",
                            xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    # Plain numbers at 1-2-5 steps: the default log labels (3x10^2 4x10^2 ...) run into each other.
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("mean tokens per problem (prompt + completion, every sample; log)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
