"""RL step speed and time to accuracy: ponder's `train_rl` vs TRL's `GRPOTrainer`, one run, same CPU.

Both start from the same warm-started model, the bundled one unless `--init-from DIR` (TRL
trains its `ponder export --format hf` copy), and see the same problems in the same order
(`step_problems(seed, step, P)` of the RL recipe's training families, rendered by the model's
chat template), with the same group size, batch (P
prompts x G samples), max completion length, temperature, learning rate (constant), AdamW
betas/weight decay, gradient clip, optimizer updates per rollout batch, and loss: Dr.GRPO
advantages (no std scaling),
clipped surrogate with clip-higher, token sum over (batch x max length), no KL, truncated samples
masked out of the loss. Rewards are ponder's own functions (correctness + 0.1 x format) on both
sides; TRL's completion ids are turned into ponder `Completion`s the way ponder's engine does.

Held-out pass@1 is measured identically for both: TRL's weights are converted back into a ponder
model (an exact round trip, checked) and scored like the heldout_pass1 that `train_rl` logs
(ponder's engine, greedy, the fixed held-out mix of its eval_families). Time to accuracy counts training time only
(evaluations are excluded on both sides). TRL runs with plain `model.generate` (no vLLM) on the CPU, in fp32 or, with `--precision bf16`,
both trainers in bf16 mixed precision.

    OMP_NUM_THREADS=1 python bench/rl_vs_trl.py [--steps 6] [--prompts-per-step 8] [--group-size 8]
        [--max-completion-tokens 256] [--eval-every 3] [--eval-problems 40] [--lr 2e-5] [--threads 1]

Pinned against trl 1.16.0 (GRPOConfig fields: num_generations, steps_per_generation, loss_type,
scale_rewards, epsilon, epsilon_high, beta, mask_truncated_completions, shuffle_dataset, use_vllm).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from ponder.devices import autocast
from ponder.engine.base import Completion
from ponder.engine.spec import resolve_checkpoint
from ponder.errors import UserError
from ponder.model.checkpoint import load_checkpoint
from ponder.model.export_hf import export_hf, from_hf_state_dict
from ponder.engine.base import SamplingParams
from ponder.engine.native import NativeEngine
from ponder.rl.grpo import EVAL_TOKENS, train_rl
from ponder.rl.heldout import pass_at_1
from ponder.rl.rewards import correctness, format_reward
from ponder.rl.rl_config import RLConfig
from ponder.rl.rollout import step_problems
from ponder.tasks.mix import held_out_set

TRL_PIN = "trl==1.16.0"
REWARDS, WEIGHTS = ("correctness", "format"), (1.0, 0.1)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6, help="RL steps (rollout batches) per trainer")
    p.add_argument("--prompts-per-step", type=int, default=8)
    p.add_argument("--group-size", type=int, default=8, help="samples per prompt (TRL: num_generations)")
    p.add_argument("--max-completion-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--updates-per-step", type=int, default=2,
                   help="optimizer updates per rollout batch (TRL: steps_per_generation)")
    p.add_argument("--clip-low", type=float, default=0.2)
    p.add_argument("--clip-high", type=float, default=0.28)
    p.add_argument("--eval-every", type=int, default=3, help="held-out pass@1 every N RL steps (and at 0 and the end)")
    p.add_argument("--eval-problems", type=int, default=40)
    p.add_argument("--target", type=float, default=None,
                   help="held-out pass@1 to race to (default: the best accuracy both runs reached)")
    p.add_argument("--dynamic-sampling", action="store_true",
                   help="let ponder skip all-equal groups (its recipe default; TRL has no such option). The "
                        "update is the same: their advantages are 0, and constant_norm still counts them")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for both trainers")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="both trainers' precision: fp32, or bf16 mixed precision (fp32 weights and optimizer state, "
                        "bf16 autocast forward passes: ponder's --precision bf16, TRL's bf16=True, its default)")
    p.add_argument("--init-from", default="default",
                   help="the warm start both trainers begin from: 'default' (the bundled model) or a checkpoint "
                        "directory. A weaker start than the bundled model leaves RL room to raise held-out accuracy "
                        "within a few steps, so the time-to-accuracy race has a gain to time")
    p.add_argument("--out-dir", default=None, help="keep both runs here (default: a temporary directory)")
    args = p.parse_args()
    batch = args.prompts_per_step * args.group_size
    if batch % args.updates_per_step:
        p.error(f"--updates-per-step {args.updates_per_step} must divide the batch "
                f"(prompts-per-step x group-size = {batch}): TRL splits it into equal minibatches")
    if args.steps < 1 or args.eval_every < 1:
        p.error("--steps and --eval-every must be at least 1")
    try:
        args.start_from = resolve_checkpoint(args.init_from)  # the directory both trainers load
    except UserError as e:
        p.error(f"--init-from: {e}")
    return args


def rl_config(args, out_dir: Path) -> RLConfig:
    """ponder's side, with every setting TRL cannot mirror switched to what TRL does."""
    return RLConfig(
        name="ponder", out_dir=str(out_dir), seed=args.seed, init_from=args.init_from,
        prompts_per_step=args.prompts_per_step, group_size=args.group_size,
        max_completion_tokens=args.max_completion_tokens, temperature=args.temperature,
        advantage="dr_grpo", aggregation="constant_norm", clip_low=args.clip_low, clip_high=args.clip_high,
        kl_coef=0.0, dynamic_sampling=args.dynamic_sampling, overlong="mask",  # TRL: mask_truncated_completions
        rewards=REWARDS, reward_weights=WEIGHTS,
        steps=args.steps, lr=args.lr, warmup_steps=0,  # TRL: constant schedule (its warm-up starts at lr 0)
        updates_per_step=args.updates_per_step, grad_clip=1.0,
        eval_every=args.eval_every, eval_problems=args.eval_problems, eval_samples=0,  # TRL is scored greedy only
        checkpoint_every=args.steps, keep_checkpoints=1, threads=args.threads, precision=args.precision,
    )


# -- ponder ----------------------------------------------------------------------------------------

def run_ponder(cfg: RLConfig) -> dict:
    started = time.perf_counter()
    train_rl(cfg, progress=False)
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (Path(cfg.out_dir) / cfg.name / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["step"] > 0]
    curve, clock = [], 0.0
    for r in rows:
        clock += r.get("step_time_s", 0.0)
        if "heldout_pass1" in r:
            curve.append((r["step"], clock, r["heldout_pass1"]))
    return {"step_s": [r["step_time_s"] for r in steps], "rollout_s": [r["rollout_s"] for r in steps],
            "tokens": [r["completion_tokens"] for r in steps], "reward": [r["reward"] for r in steps],
            "curve": curve, "wall": wall}


# -- TRL -------------------------------------------------------------------------------------------

def to_completion(ids: list[int], tok) -> Completion:
    """A TRL sample as ponder's engine would report it: reasoning up to `</think>`, the answer after
    it without the end token, finish 'stop' only when the end token was sampled."""
    sp = tok.special
    stopped = bool(ids) and ids[-1] == sp.end
    k = ids.index(sp.think_close) + 1 if sp.think_close in ids else len(ids)
    reasoning_ids, answer_ids = ids[:k], ids[k:]
    by_token = stopped and bool(answer_ids) and answer_ids[-1] == sp.end
    return Completion(
        reasoning=tok.decode(t for t in reasoning_ids if t != sp.think_close),
        answer=tok.decode(answer_ids[:-1] if by_token else answer_ids),
        prompt_tokens=0, reasoning_tokens=len(reasoning_ids), answer_tokens=len(answer_ids),
        finish_reason="stop" if stopped else "length", token_ids=tuple(ids))


def trl_rewards(problems, tok):
    """ponder's reward functions in TRL's calling convention (dataset columns arrive as kwargs)."""

    def correctness_reward(prompts, completions, completion_ids, problem_id, **_):
        return correctness(prompts, [to_completion(c, tok) for c in completion_ids],
                           problems=[problems[i] for i in problem_id])

    def format_reward_(prompts, completions, completion_ids, **_):
        return format_reward(prompts, [to_completion(c, tok) for c in completion_ids])

    return [correctness_reward, format_reward_]


def load_hf_into_ponder(hf_model, model) -> None:
    sd = {k: v.detach() for k, v in hf_model.state_dict().items()}
    model.load_state_dict(from_hf_state_dict(sd, len(model.blocks)), strict=True)


def trl_config(args, out_dir: Path):
    from trl import GRPOConfig

    batch = args.prompts_per_step * args.group_size
    return GRPOConfig(
        output_dir=str(out_dir), seed=args.seed, use_cpu=True, bf16=args.precision == "bf16", fp16=False,
        # one RL step = one generation batch of P x G samples, split into `updates` optimizer steps
        per_device_train_batch_size=batch // args.updates_per_step, gradient_accumulation_steps=1,
        steps_per_generation=args.updates_per_step, num_iterations=1, max_steps=args.steps * args.updates_per_step,
        num_generations=args.group_size, max_completion_length=args.max_completion_tokens,
        temperature=args.temperature, top_p=1.0, top_k=0, use_vllm=False, shuffle_dataset=False,
        learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0, optim="adamw_torch",
        adam_beta1=0.9, adam_beta2=0.99, weight_decay=0.0, max_grad_norm=1.0,
        loss_type="dr_grpo", scale_rewards="none", epsilon=args.clip_low, epsilon_high=args.clip_high, beta=0.0,
        mask_truncated_completions=True, reward_weights=list(WEIGHTS),
        logging_steps=1, report_to="none", save_strategy="no", disable_tqdm=True, log_completions=False,
        dataloader_num_workers=0, remove_unused_columns=False,
    )


def run_trl(args, cfg: RLConfig, work: Path, start_acc: float) -> dict:
    import transformers
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import GRPOTrainer

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    hf_dir = export_hf(args.start_from, work / "hf")
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    hf_tok = AutoTokenizer.from_pretrained(hf_dir)
    scorer, tok = load_checkpoint(args.start_from)  # a ponder model to load TRL's weights into for evaluation
    start = {k: v.clone() for k, v in scorer.state_dict().items()}
    load_hf_into_ponder(model, scorer)  # the round trip must be exact, or the accuracies are not comparable
    if any(not torch.equal(v, scorer.state_dict()[k]) for k, v in start.items()):
        raise SystemExit("converting the HF export back into ponder's layout changed the weights")
    # The set train_rl scores (its eval_families: the whole mix), not the families trained on:
    # scoring TRL on arithmetic and word problems alone once made it look 10 points better.
    heldout = held_out_set(cfg.eval_problems, families=cfg.eval_families)
    problems = [p for s in range(args.steps) for p in step_problems(
        cfg.seed, s, cfg.prompts_per_step, cfg.families, cfg.min_difficulty, cfg.max_difficulty)]
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": p.prompt}], "problem_id": i}
                              for i, p in enumerate(problems)])
    u = args.updates_per_step
    out = {"step_s": [], "rollout_s": [], "tokens": [], "reward": [], "curve": []}

    def held_out(m) -> float:
        """What `train_rl` logs as heldout_pass1 (its `evaluate`, mix part only), on TRL's weights."""
        load_hf_into_ponder(m, scorer)
        with autocast(torch.device("cpu"), args.precision):  # as train_rl scores ponder's weights
            result = pass_at_1(NativeEngine(scorer.eval(), tok), heldout, SamplingParams(max_completion_tokens=EVAL_TOKENS))
        return round(result["all"], 4)

    class Clock(TrainerCallback):
        """Per-RL-step training time; evaluations happen between the clock's readings."""

        def on_train_begin(self, a, state, control, **kw):
            self.last, self.pending = time.perf_counter(), 0.0

        def on_step_end(self, a, state, control, **kw):
            self.pending += time.perf_counter() - self.last
            if state.global_step % u == 0:
                out["step_s"].append(self.pending)
                self.pending, rl_step = 0.0, state.global_step // u
                if rl_step % args.eval_every == 0 or rl_step == args.steps:
                    out["curve"].append((rl_step, sum(out["step_s"]), held_out(trainer.model)))
            self.last = time.perf_counter()

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs and state.global_step % u == 1 % u:
                out["tokens"].append(logs["completions/mean_length"])  # first update of a step: fresh rollout
                out["reward"].append(logs.get("reward", float("nan")))

    trainer = GRPOTrainer(model=model, reward_funcs=trl_rewards(problems, tok), args=trl_config(args, work / "trl"),
                          train_dataset=data, processing_class=hf_tok, callbacks=[Clock()])
    trainer.remove_callback(PrinterCallback)  # disable_tqdm swaps the bar for a dict printed per step
    generate = trainer._generate  # timed only, to split rollout from update as ponder's metrics do

    def timed_generate(*a, **kw):
        t = time.perf_counter()
        result = generate(*a, **kw)
        out["rollout_s"].append(time.perf_counter() - t)
        return result

    trainer._generate = timed_generate
    measured = held_out(model)  # the same weights as ponder's step 0 (checked above): the same score, or a bug here
    if abs(measured - start_acc) > 1e-9:
        raise SystemExit(f"TRL's step-0 held-out pass@1 {measured:.4f} differs from ponder's {start_acc:.4f} on the same "
                         "weights: the two are not scored on the same problems")
    out["curve"].append((0, 0.0, measured))
    started = time.perf_counter()
    trainer.train()
    out["wall"] = time.perf_counter() - started
    return out


# -- report ----------------------------------------------------------------------------------------

def time_to(curve, target: float) -> float | None:
    return next((t for _, t, acc in curve if acc >= target - 1e-9), None)


def report(args, ponder: dict, trl: dict, version: str) -> None:
    n = args.steps
    print(f"\nponder train_rl vs TRL {version} GRPOTrainer: from {args.init_from}, {n} RL steps of "
          f"{args.prompts_per_step} prompts x {args.group_size} samples, <= {args.max_completion_tokens} tokens, "
          f"T={args.temperature}, lr {args.lr}, {args.updates_per_step} updates/step, torch threads {args.threads}")
    print("rollout: ponder = sampling + rewards (its rollout_s); TRL = its `_generate` (sampling + decoding)")
    print(f"{'':>8} {'s/step mean':>12} {'median':>8} {'rollout s':>10} {'update s':>9} {'tokens/sample':>14} "
          f"{'reward':>7}")
    for name, r in (("ponder", ponder), ("TRL", trl)):
        step, roll = statistics.mean(r["step_s"]), statistics.mean(r["rollout_s"])
        print(f"{name:>8} {step:>12.2f} {statistics.median(r['step_s']):>8.2f} {roll:>10.2f} {step - roll:>9.2f} "
              f"{statistics.mean(r['tokens']):>14.1f} {statistics.mean(r['reward']):>7.3f}")
    ratio = statistics.mean(trl["step_s"]) / statistics.mean(ponder["step_s"])
    roll = statistics.mean(trl["rollout_s"]) / statistics.mean(ponder["rollout_s"])
    update = (statistics.mean(trl["step_s"]) - statistics.mean(trl["rollout_s"])) / (
        statistics.mean(ponder["step_s"]) - statistics.mean(ponder["rollout_s"]))
    print(f"RL steps per second, ponder / TRL: {ratio:.2f}x (goal >= 5x); rollout {roll:.2f}x, update {update:.2f}x")
    tok_ratio = (sum(trl["tokens"]) / sum(trl["step_s"])) / (sum(ponder["tokens"]) / sum(ponder["step_s"]))
    print(f"sampled tokens per second of training, ponder / TRL: {1 / tok_ratio:.2f}x")

    print(f"\nheld-out pass@1 ({args.eval_problems} problems, greedy, ponder's engine) vs training seconds")
    for name, r in (("ponder", ponder), ("TRL", trl)):
        print(f"{name:>8}: " + "  ".join(f"step {s}: {acc:.3f} @ {t:.0f}s" for s, t, acc in r["curve"]))
    print(f"wall clock incl. evaluations: ponder {ponder['wall']:.0f}s (train_rl also scores step 0 and the hardest "
          f"level), TRL {trl['wall']:.0f}s")
    start = ponder["curve"][0][2]
    best_p, best_t = max(a for *_, a in ponder["curve"][1:]), max(a for *_, a in trl["curve"][1:])
    target = args.target if args.target is not None else min(best_p, best_t)
    if args.target is None and target <= start:
        who = " and ".join(n for n, b in (("ponder", best_p), ("TRL", best_t)) if b <= start)
        print(f"time to accuracy: {who} did not rise above the start ({start:.3f}) in {n} steps; "
              f"no common accuracy gain to race to (raise --steps or --lr)")
        return
    tp, tt = time_to(ponder["curve"], target), time_to(trl["curve"], target)
    fmt = lambda t, r: f"{t:.0f}s" if t is not None else f"not reached in {sum(r['step_s']):.0f}s"  # noqa: E731
    line = f"time to held-out pass@1 >= {target:.3f} (start {start:.3f}): ponder {fmt(tp, ponder)}, TRL {fmt(tt, trl)}"
    if tp and tt:
        line += f" -> ponder {tt / tp:.2f}x sooner"
    print(line)


def main() -> None:
    args = parse_args()
    try:
        import trl
    except ImportError:
        print(f"TRL is not installed: pip install '{TRL_PIN}' (into this environment) to run this benchmark")
        sys.exit(2)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.out_dir) if args.out_dir else Path(tmp)
        cfg = rl_config(args, work)
        print(f"ponder: {args.steps} steps ...", flush=True)
        ponder = run_ponder(cfg)
        print(f"TRL {trl.__version__}: {args.steps} steps ...", flush=True)
        torch.manual_seed(args.seed)
        theirs = run_trl(args, cfg, work, ponder["curve"][0][2])
        report(args, ponder, theirs, trl.__version__)


if __name__ == "__main__":
    main()
