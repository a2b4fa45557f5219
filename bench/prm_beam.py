"""PRM-guided beam search against majority vote at equal token spend, on the hardest level.

Target: beam search over reasoning steps, guided by a process reward model trained Math-Shepherd
style (`ponder train --stage prm`), beats self-consistency (majority vote) with k chosen to spend
the same tokens, on held_out_set(N, difficulty=5) with the bundled model.

One run: train the PRM (or load --prm DIR), run beam search on the N problems, then draw
self-consistency samples (`SelfConsistency(k=K_MAX)`: sample i has seed seed+i, so the first k
are exactly what `SelfConsistency(k)` draws) and vote over the first k for every k <= K_MAX.
The matched k is the one whose mean generated tokens per problem are closest to beam's.
Spend is generated tokens (reasoning + answer, every sample, discarded steps included): what
decoding costs. Beam's prompt tokens re-read each step's prefix, so they are printed too, but
not matched (a prefix cache makes them nearly free; PRM forward passes are not counted either).
Accuracy is each problem's own verifier; errors are binomial standard errors, and the
difference's is paired (same problems).

    python bench/prm_beam.py [--n 150] [--prm DIR] [--beams 4] [--expansions 4] [--temperature 0.8]
                             [--variants mass:min best:min vote:last:0.5] [--seed S] [--first M]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from pathlib import Path

import torch

from ponder.engine.base import SamplingParams
from ponder.engine.spec import load_engine
from ponder.model.chat import Message
from ponder.prm.train import PRMConfig, train_prm
from ponder.tasks.mix import HELD_OUT_BASE, held_out_set
from ponder.think.beam import SELECTIONS, BeamSearch
from ponder.think.self_consistency import SelfConsistency, vote_result


def std_err(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / max(n, 1))


def paired_std_err(a: list[float], b: list[float]) -> float:
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / len(d)
    return math.sqrt(sum((x - mean) ** 2 for x in d) / max(len(d) - 1, 1) / len(d))


def by_family(problems, scores) -> str:
    groups: dict[str, list[float]] = defaultdict(list)
    for p, s in zip(problems, scores):
        groups[p.task].append(s)
    return ", ".join(f"{f} {100 * sum(v) / len(v):.0f}% (n={len(v)})" for f, v in sorted(groups.items()))


def get_prm(args) -> Path:
    if args.prm:
        return Path(args.prm)
    started = time.perf_counter()
    final = train_prm(PRMConfig(name=args.prm_name, out_dir=args.out_dir, seed=args.seed), progress=False)
    print(f"trained the PRM in {time.perf_counter() - started:.0f} s -> {final}")
    return final


def prm_metrics(final: Path) -> str:
    metrics = final.parent / "metrics.jsonl"
    if not metrics.is_file():
        return "(no metrics.jsonl next to the PRM)"
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    last, first = records[-1], records[0]
    keys = ("heldout_loss", "heldout_acc", "heldout_auroc", "heldout_answer_acc", "heldout_answer_auroc")
    return (f"labels: {first.get('traces')} traces, {first.get('steps')} steps, labelled in {first.get('labels_s')} s; "
            f"held-out before -> after training: " + ", ".join(f"{k.removeprefix('heldout_')} {first.get(k)} -> "
                                                                f"{last.get(k)}" for k in keys))


def parse_variant(text: str) -> tuple[str, str, float | None]:
    select, _, rest = text.partition(":")
    how, _, accept = rest.partition(":")
    try:
        threshold = float(accept) if accept else None
    except ValueError:
        threshold = -1.0
    if select not in SELECTIONS or how not in ("min", "last", "prod") or (
            threshold is not None and not 0 <= threshold <= 1):
        raise SystemExit(f"--variants: {text!r} is not SELECT:AGGREGATE[:ACCEPT] ({'|'.join(SELECTIONS)} : min|last|prod "
                         f"[: a PRM score in 0..1 for lazy expansion])")
    return select, how, threshold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=150, help="held-out problems at difficulty 5")
    parser.add_argument("--prm", default=None, metavar="DIR", help="a trained PRM (default: train one first)")
    parser.add_argument("--prm-name", default="prm_bench", help="run name when training the PRM")
    parser.add_argument("--out-dir", default="runs")
    parser.add_argument("--beams", type=int, default=4)
    parser.add_argument("--expansions", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=12)
    parser.add_argument("--variants", nargs="+", default=["mass:min", "best:min"], metavar="SELECT:AGGREGATE[:ACCEPT]",
                        help="beam searches to run; the first is judged, and is the strategy's default (mass:min); ACCEPT "
                             "turns on lazy expansion with that PRM threshold")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="sampling temperature of beam steps and of the majority-vote samples alike")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0,
                        help="skip this many held-out problems (another draw of problems, not only of samples)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    torch.set_num_threads(args.threads)

    final = get_prm(args)
    print(f"PRM {final}: {prm_metrics(final)}")
    engine = load_engine("default")
    problems = held_out_set(args.n, difficulty=5, base_seed=HELD_OUT_BASE + args.first)
    prompts = [[Message("user", p.prompt)] for p in problems]
    params = SamplingParams(max_completion_tokens=512, seed=args.seed)  # effort high: no reasoning cut

    rows = []  # (label, scores, generated tokens, prompt tokens, seconds)
    for select, how, accept in variants:
        started = time.perf_counter()
        results = BeamSearch(beams=args.beams, expansions=args.expansions, max_steps=args.max_steps, prm=str(final),
                             aggregate=how, select=select, accept=accept,
                             temperature=args.temperature).run(engine, prompts, params)
        rows.append((f"beam {select}:{how}" + ("" if accept is None else f":{accept:g}"), [p.verify(r.answer) for p, r in zip(problems, results)],
                     sum(r.completion_tokens for r in results) / len(results),
                     sum(r.prompt_tokens for r in results) / len(results), time.perf_counter() - started))

    started = time.perf_counter()
    one = SelfConsistency(k=1, temperature=args.temperature).run(engine, prompts, params)  # sample 0 of the pool, to size it
    per_sample = sum(r.completion_tokens for r in one) / len(one)
    k_max = max(2, math.ceil(1.3 * max(r[2] for r in rows) / per_sample))
    pool = [list(r.samples) for r in SelfConsistency(k=k_max, temperature=args.temperature).run(engine, prompts, params)]
    vote_s = time.perf_counter() - started
    curve = {}
    for k in range(1, k_max + 1):
        results = [vote_result(samples[:k]) for samples in pool]
        curve[k] = ([p.verify(r.answer) for p, r in zip(problems, results)],
                    sum(r.completion_tokens for r in results) / len(results),
                    sum(r.prompt_tokens for r in results) / len(results))

    n = len(problems)
    print(f"\n{n} held-out problems at difficulty 5 (from number {args.first}), bundled model, max_completion_tokens 512, seed {args.seed}; "
          f"beam: beams={args.beams} expansions={args.expansions} max_steps={args.max_steps}, temperature {args.temperature}; "
          f"majority vote: temperature {args.temperature}, first k of {k_max} samples (wall {vote_s:.0f} s for all {k_max})\n")
    print(f"{'':22s}{'accuracy':>15s}{'gen tok/problem':>17s}{'prompt tok/problem':>20s}{'wall s':>8s}")
    gaps = []  # (beam - vote accuracy, its paired s.e.) per variant; the first variant is judged
    for label, scores, tokens, prompt_tokens, seconds in rows:
        k = min(curve, key=lambda k: abs(curve[k][1] - tokens))  # majority vote at the same spend
        vote_scores, vote_tokens, vote_prompt = curve[k]
        acc, acc_v = sum(scores) / n, sum(vote_scores) / n
        gaps.append((acc - acc_v, paired_std_err(scores, vote_scores)))
        print(f"{label:22s}{100 * acc:8.1f}% ±{100 * std_err(acc, n):4.1f}{tokens:17.0f}{prompt_tokens:20.0f}"
              f"{seconds:8.0f}")
        print(f"{f'  majority vote@{k}':22s}{100 * acc_v:8.1f}% ±{100 * std_err(acc_v, n):4.1f}{vote_tokens:17.0f}"
              f"{vote_prompt:20.0f}")
        print(f"  generated-token ratio beam/vote {tokens / vote_tokens:.2f} (prompt {prompt_tokens / vote_prompt:.1f}); "
              f"difference {100 * gaps[-1][0]:+.1f} pp ± {100 * gaps[-1][1]:.1f} (paired s.e.)")
        print(f"  by family: beam {by_family(problems, scores)}\n             vote {by_family(problems, vote_scores)}")
    print("\nmajority vote curve (k: accuracy, generated tokens): " + ", ".join(
        f"{k}: {100 * sum(s) / n:.1f}% {t:.0f}" for k, (s, t, _) in curve.items() if k in (1, 2, 4, 8, 12, 16, 24, 32)
        or k == k_max))
    # The room a perfect chooser would have: problems where any of the k_max samples is right.
    covered = [max(p.verify(c.answer) for c in samples) for p, samples in zip(problems, pool)]
    print(f"pass@{k_max} (some sample right): {100 * sum(covered) / n:.1f}%, by family: {by_family(problems, covered)}")
    gap, noise = gaps[0]  # "beats" means by more than the noise: ahead by over one paired s.e.
    verdict = "MET" if gap > noise else "within noise, NOT met" if gap >= -noise else "NOT met"
    print(f"\ntarget (PRM beam search, {args.beams} beams x {args.expansions} expansions, {rows[0][0]}, beats majority "
          f"vote at equal generated tokens by more than one paired s.e.): {verdict}")


if __name__ == "__main__":
    main()
