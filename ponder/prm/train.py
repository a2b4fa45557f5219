"""`ponder train --stage prm`: label policy traces Math-Shepherd style, then fine-tune a PRM.

The PRM starts as a copy of the policy and learns, at each step end only, a two-way
cross-entropy between its (+, -) logits and the step's soft label (the share of completions
from that step that verified). Problems are split by seed: a share of them never trains and
gives held-out step-label accuracy and AUROC at every eval, next to the loss, in
OUT_DIR/NAME/metrics.jsonl. The labels are kept in OUT_DIR/NAME/labels.jsonl, so a later run
can retrain without relabelling (`labels_from`). The PRM is saved atomically to OUT_DIR/NAME/final.

Defaults finish in about 5-8 minutes on two CPU cores with one torch thread (the bundled
model is too small for a second thread to pay for its synchronisation).
Left out: resuming (a run takes minutes; start it again under a new --name).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from ponder.config import build_config, config_overrides, config_to_dict, stray_flags
from ponder.errors import UserError
from ponder.prm.config import DEFAULT_LEVELS, PRMConfig, add_prm_arguments  # noqa: F401 (re-exported)
from ponder.prm.labels import LabelledTrace, label_problems, load_labels, save_labels, training_problems
from ponder.prm.model import PRM, init_prm, padded, pair_logits, save_prm, score_sequences

# --- pure pieces -------------------------------------------------------------------------------


def split_by_problem(traces: Sequence[LabelledTrace], share: float) -> tuple[list[LabelledTrace], list[LabelledTrace]]:
    """(train, held out): the last `share` of problems (by seed) are held out, all their traces."""
    seeds = sorted({t.seed for t in traces})
    held = set(seeds[len(seeds) - max(1, math.ceil(share * len(seeds))):]) if len(seeds) > 1 else set()
    return [t for t in traces if t.seed not in held], [t for t in traces if t.seed in held]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over steps of -(y log P(+) + (1-y) log P(-)); logits (N, 2), targets (N,) in [0, 1]."""
    logp = logits.log_softmax(-1)  # (N, 2)
    return -(targets * logp[:, 0] + (1 - targets) * logp[:, 1]).mean()


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties count half); None without both classes."""
    n_pos = sum(positive)
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum, i = 0.0, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mean_rank = (i + j) / 2 + 1  # ranks i+1..j+1 share their mean
        rank_sum += mean_rank * sum(positive[order[k]] for k in range(i, j + 1))
        i = j + 1
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def step_metrics(predicted: Sequence[float], soft: Sequence[float]) -> dict[str, float | None]:
    """Accuracy and AUROC of P(+) against "more likely than not to be solved" (soft >= 0.5),
    and the loss of the predictions against the soft labels."""
    good = [y >= 0.5 for y in soft]
    n = max(len(soft), 1)
    eps = 1e-6
    loss = -sum(y * math.log(max(p, eps)) + (1 - y) * math.log(max(1 - p, eps)) for p, y in zip(predicted, soft)) / n
    area = auroc(predicted, good)
    return {
        "loss": round(loss, 5),
        "acc": round(sum((p >= 0.5) == g for p, g in zip(predicted, good)) / n, 4),
        "auroc": None if area is None else round(area, 4),
    }


def batch_tensors(traces: Sequence[LabelledTrace], pad: int):
    """(tokens (B, T), rows (N,), cols (N,), targets (N,)) for a batch of labelled traces."""
    tokens = padded([t.tokens for t in traces], pad)
    rows = [r for r, t in enumerate(traces) for _ in t.ends]
    cols = [e for t in traces for e in t.ends]
    targets = [y for t in traces for y in t.soft]
    return tokens, torch.tensor(rows), torch.tensor(cols), torch.tensor(targets)


# --- the run -----------------------------------------------------------------------------------


def evaluate(prm: PRM, traces: Sequence[LabelledTrace]) -> dict[str, float | None]:
    if not traces:
        return {}
    prm.model.eval()
    scores = score_sequences(prm, [(t.tokens, t.ends) for t in traces])
    prm.model.train()
    out = step_metrics([p for s in scores for p in s], [y for t in traces for y in t.soft])
    last = step_metrics([s[-1] for s in scores], [t.soft[-1] for t in traces])  # answer steps: an ORM
    record = {**{f"heldout_{k}": v for k, v in out.items()}, **{f"heldout_answer_{k}": v for k, v in last.items()}}
    # Pooled AUROC rewards telling families apart (Countdown steps are mostly bad); within a
    # family it measures what a search needs: telling a good step from a bad one.
    for task in sorted({t.task for t in traces}):
        mine = [(s, t) for s, t in zip(scores, traces) if t.task == task]
        area = auroc([p for s, _ in mine for p in s], [y >= 0.5 for _, t in mine for y in t.soft])
        record[f"heldout_auroc_{task}"] = None if area is None else round(area, 4)
    return record


def label_summary(traces: Sequence[LabelledTrace]) -> dict[str, float]:
    soft = [y for t in traces for y in t.soft]
    n = max(len(soft), 1)
    return {
        "traces": len(traces), "steps": len(soft), "mean_soft_label": round(sum(soft) / n, 4),
        "share_good_steps": round(sum(y >= 0.5 for y in soft) / n, 4),
        "traces_correct": round(sum(t.correct for t in traces) / max(len(traces), 1), 4),
    }


def make_labels(cfg: PRMConfig, policy_dir: Path, run_root: Path, progress: bool) -> list[LabelledTrace]:
    from tqdm import tqdm

    from ponder.engine.native import NativeEngine
    from ponder.model.checkpoint import load_checkpoint

    if cfg.labels_from:
        return load_labels(cfg.labels_from)
    engine = NativeEngine(*load_checkpoint(policy_dir))
    problems = training_problems(cfg.problems, cfg.seed, cfg.levels)
    bars: dict[str, tqdm] = {}

    def report(phase: str, done: int, total: int) -> None:
        bar = bars.setdefault(phase, tqdm(total=total, desc=f"prm labels: {phase}", disable=not progress, unit="gen"))
        bar.update(done - bar.n)

    traces = label_problems(engine, problems, cfg.traces_per_problem, cfg.completions_per_step, cfg.temperature,
                            cfg.max_completion_tokens, cfg.seed, cfg.trace_temperature,
                            cfg.rollouts_on_correct, cfg.references, report)
    for bar in bars.values():
        bar.close()
    save_labels(traces, run_root / "labels.jsonl")
    return traces


def start_run(cfg: PRMConfig) -> Path:
    root = Path(cfg.out_dir) / cfg.name
    metrics = root / "metrics.jsonl"
    if (root / "final").exists() or (metrics.is_file() and metrics.stat().st_size):
        raise UserError(f"run directory {root} already holds a PRM run; pass --name to start a new one "
                        f"(reuse its labels with --labels-from {root})")
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config_to_dict(cfg), indent=2))
    return root


def fit(prm: PRM, train: Sequence[LabelledTrace], held: Sequence[LabelledTrace], cfg: PRMConfig, log,
        started: float, progress: bool) -> None:
    """Fine-tune `prm` in place on the step labels of `train`, logging one JSON line per step."""
    from tqdm import tqdm

    from ponder.rl.sft import learning_rate, make_optimizer

    # PRMConfig names its schedule and optimizer fields as SFTConfig does, so SFT's warm-up +
    # cosine schedule and weight-decay groups serve both.
    optimizer = make_optimizer(prm.model, cfg)  # type: ignore[arg-type]
    order = torch.Generator().manual_seed(cfg.seed)
    queue: list[int] = []
    prm.model.train()
    for step in tqdm(range(cfg.steps), desc=f"prm {cfg.name}", disable=not progress, unit="step"):
        if len(queue) < cfg.batch_size:  # epochs in a fresh random order, batches never short
            queue += torch.randperm(len(train), generator=order).tolist()
        batch, queue = [train[i] for i in queue[: cfg.batch_size]], queue[cfg.batch_size :]
        tokens, rows, cols, targets = batch_tensors(batch, prm.tok.special.pad)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)  # type: ignore[arg-type]
        loss = soft_cross_entropy(pair_logits(prm.model, tokens, rows, cols, prm.spec), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(prm.model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        optimizer.step()
        done = step + 1
        record = {"step": done, "loss": round(loss.item(), 5), "lr": optimizer.param_groups[0]["lr"]}
        if done == cfg.steps or (cfg.eval_every and done % cfg.eval_every == 0):
            record.update(evaluate(prm, held), elapsed_s=round(time.perf_counter() - started, 1))
        log.write(json.dumps(record) + "\n")
        log.flush()
    prm.model.eval()


def train_prm(cfg: PRMConfig, progress: bool = True) -> Path:
    """Label (or reuse labels), fine-tune the PRM, log metrics; returns the PRM directory."""
    from ponder.engine.spec import resolve_checkpoint

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    policy_dir = resolve_checkpoint(cfg.policy)
    root = start_run(cfg)
    started = time.perf_counter()
    traces = make_labels(cfg, policy_dir, root, progress)
    prm = init_prm(policy_dir)
    if any(max(t.tokens) >= prm.tok.vocab_size for t in traces):
        raise UserError(f"the labels in {cfg.labels_from} use tokens the policy {cfg.policy!r} lacks; "
                        "label with the same policy")
    train, held = split_by_problem(traces, cfg.heldout_share)
    if not train:
        raise UserError(f"no labelled traces to train on (labelled {len(traces)}); raise --problems")
    with (root / "metrics.jsonl").open("w") as log:
        log.write(json.dumps({"step": 0, "labels_s": round(time.perf_counter() - started, 1),
                              "heldout_traces": len(held), **label_summary(train), **evaluate(prm, held)}) + "\n")
        fit(prm, train, held, cfg, log, started, progress)
    return save_prm(prm, root / "final", extra={"prm_recipe": config_to_dict(cfg), "trained_steps": cfg.steps})


# --- the CLI stage (wired by ponder/cli.py) ------------------------------------------------------

def run_prm_stage(args: argparse.Namespace) -> int:
    """`ponder train --stage prm`: build the config from --recipe and flags, train, print the path."""
    from ponder.rl.sft_config import SFTConfig

    from ponder.rl.rl_config import RLConfig

    prm_fields = {f.name for f in dataclasses.fields(PRMConfig)}
    stray = stray_flags(args, PRMConfig, (SFTConfig, RLConfig))
    if getattr(args, "resume", False):
        stray.insert(0, "--resume")
    if stray:
        raise UserError(f"{', '.join(stray)} do(es) not apply to --stage prm; "
                        f"its settings are: {', '.join('--' + n.replace('_', '-') for n in sorted(prm_fields))}")
    recipe = getattr(args, "recipe", None)
    cfg = build_config(PRMConfig, Path(recipe) if recipe else None, config_overrides(args, PRMConfig))
    final = train_prm(cfg, progress=not getattr(args, "no_progress", False))
    print(f"trained PRM: {final}")
    return 0
