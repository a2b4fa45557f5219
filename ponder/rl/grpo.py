"""RL on verifiable rewards: groups of samples per problem through the shared engine, group-
relative advantages, a clipped policy-gradient update. Algorithms come from `algos.py` by name.

One step: draw the step's problems (a pure function of seed and step) -> G samples each through
`NativeEngine` over the current weights -> rewards (the tasks' verifiers) -> advantages per
group -> drop all-equal groups (dynamic sampling) -> `updates_per_step` minibatch updates of the
clipped surrogate (+ k3 KL to the frozen start when kl_coef > 0) -> one JSONL metrics line.
Held-out pass@1 (greedy, no reasoning budget: effort high) is measured at step 0, every
`eval_every` steps and at the end. Checkpoints carry optimizer, RNG and step, so a SIGKILL
loses at most `checkpoint_every` steps and `--resume` continues exactly.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from ponder.config import config_defaults, config_to_dict
from ponder.devices import autocast, emulated_bf16_warning, resolve_device, synchronize
from ponder.engine.base import SamplingParams
from ponder.engine.native import NativeEngine
from ponder.engine.spec import resolve_checkpoint
from ponder.errors import UserError
from ponder.model.checkpoint import load_checkpoint, save_checkpoint
from ponder.perf import measure_matmul_peak
from ponder.rl import distributed
from ponder.rl.heldout import pass_at_1, sampled_pass_at_1
from ponder.rl.rewards import RewardSet
from ponder.rl.rl_config import RLConfig
from ponder.rl.step import rollout, update
from ponder.rl.run_dir import RunDir
from ponder.tasks.mix import held_out_set

EVAL_TOKENS = 512


def eval_tokens(cfg: RLConfig) -> int:
    """Completion tokens for held-out evals at effort high: at least what training samples, so a
    recipe that trains longer chains (recipes/gpu_rl.toml: 768) is not judged on cut-off ones."""
    return max(EVAL_TOKENS, cfg.max_completion_tokens)


def evaluate(model, tok, cfg: RLConfig) -> dict[str, float]:
    """Held-out pass@1 at effort high (no budget) on the mix and on the hardest level: greedy, and
    with `eval_samples`, of samples at the rollout temperature. RL trains the sampled policy; a
    step that only makes it pick the greedy answer more often moves the sampled figure alone."""
    model.eval()
    engine = NativeEngine(model, tok, max_batch=cfg.rollout_batch)
    tokens = eval_tokens(cfg)
    sets = {"heldout_pass1": held_out_set(cfg.eval_problems, families=cfg.eval_families),
            f"heldout_pass1_d{cfg.eval_difficulty}": held_out_set(cfg.eval_problems, cfg.eval_difficulty,
                                                                   families=cfg.eval_families)}
    greedy = {key: pass_at_1(engine, problems, SamplingParams(max_completion_tokens=tokens))
              for key, problems in sets.items()}
    out = {key: round(result["all"], 4) for key, result in greedy.items()}
    out["heldout_reasoning_tokens"] = round(greedy["heldout_pass1"]["reasoning_tokens"], 1)
    if cfg.eval_samples:
        for key, problems in sets.items():
            sampled = sampled_pass_at_1(engine, problems, cfg.eval_samples, cfg.temperature, tokens)
            out[f"{key}_sampled"] = round(sampled["all"], 4)
    return out


def start_policy(cfg: RLConfig, run: RunDir, resume: bool, d: distributed.Dist):
    """(model, tokenizer, trainer state or None). Rank 0 checks and creates the run directory;
    every rank then loads the same checkpoint (a refusal on rank 0 is raised on every rank)."""
    outcome = None
    if d.main:
        try:
            outcome = ("ok", run.start(config_to_dict(cfg), resume, defaults=config_defaults(RLConfig)))
        except UserError as error:
            outcome = ("error", str(error))
    status, latest = d.broadcast_object(outcome)
    if status == "error":
        raise UserError(latest)
    if latest is not None:
        return RunDir.load(latest)
    model, tok = load_checkpoint(resolve_checkpoint(cfg.init_from))
    return model, tok, None


def train_rl(cfg: RLConfig, resume: bool = False, progress: bool = True) -> Path:
    """Run (or resume) the RL stage, in this process or as one rank of a torchrun job;
    returns the final checkpoint directory."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    d = distributed.init_dist(device)
    warning = emulated_bf16_warning(device, cfg.precision)
    if warning and d.main:
        print(warning, file=sys.stderr)
    try:
        model, tok = _train(cfg, resume, progress, d, device)
    finally:
        distributed.close(d)
    root = Path(cfg.out_dir) / cfg.name
    if d.main:  # after the process group is gone: the other ranks need not wait on the figures
        with autocast(device, cfg.precision):  # FSDP's gathered copy is on the CPU: back to the device
            report(model.to(device), tok, cfg, root)
    return root / "final"


def _train(cfg: RLConfig, resume: bool, progress: bool, d: distributed.Dist, device: torch.device):
    """The RL loop; returns the trained (model, tokenizer) on rank 0 (None elsewhere), the final
    checkpoint saved by rank 0."""
    from tqdm import tqdm

    run = RunDir(Path(cfg.out_dir) / cfg.name)
    model, tok, state = start_policy(cfg, run, resume, d)
    model.to(device)
    ref = None
    if cfg.kl_coef:
        ref = load_checkpoint(resolve_checkpoint(cfg.init_from))[0].to(device).eval().requires_grad_(False)
    policy = distributed.wrap(model, d, cfg.parallel)  # before the optimizer: FSDP replaces the parameters
    # Before any seeding or RNG restore (it draws random matrices): MFU is against this machine's
    # measured matmul peak, per rank, in the precision trained in.
    peak = measure_matmul_peak(n=1024, dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float32,
                               device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    start, flops, nan_run = 0, 0.0, 0
    board = open_board(cfg, run.root) if d.main else None
    if state is not None:
        policy.load_optimizer_state(optimizer, state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        start, flops = int(state["step"]), float(state.get("flops", 0.0))
    else:
        torch.manual_seed(cfg.seed)
        with policy.gathered(), autocast(device, cfg.precision):
            if d.main:
                log(run, board, {"step": 0, "flops": 0.0, **evaluate(model, tok, cfg)})
    rewards = RewardSet(cfg.rewards, cfg.reward_weights)
    bar = tqdm(total=cfg.steps, initial=start, desc=f"rl {cfg.name}", disable=not (progress and d.main), unit="step")
    for step in range(start, cfg.steps):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * min(1.0, (step + 1) / max(cfg.warmup_steps, 1))
        record = run_step(step, policy, ref, optimizer, cfg, rewards, tok, d, device)
        step_flops = record.pop("step_flops")
        flops += step_flops
        nan_run = nan_run + 1 if record["nonfinite_updates"] and not record["updates"] else 0
        synchronize(device)
        elapsed = time.perf_counter() - started
        done = step + 1
        record = {"step": done, **record, "lr": optimizer.param_groups[0]["lr"], "step_time_s": round(elapsed, 3),
                  "tokens_per_s": round(record["sampled_tokens"] / elapsed, 1), "flops": flops,
                  "mfu": round(step_flops / elapsed / (peak * d.world), 4),
                  "reward_failures": reward_failures(rewards, d), "world_size": d.world}
        if done == cfg.steps or (cfg.eval_every and done % cfg.eval_every == 0):
            with policy.gathered(), autocast(device, cfg.precision):
                if d.main:
                    record |= evaluate(model, tok, cfg)
        if d.main:
            log(run, board, record)
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save(run, policy, tok, optimizer, done, cfg.keep_checkpoints, flops)
        d.barrier()
        if nan_run >= cfg.max_nan_steps:
            raise UserError(f"RL stopped at step {done}: the loss was not finite in {nan_run} steps in a row "
                            f"(lower --lr, or check the rewards); the last good checkpoint is in {run.checkpoints}")
        bar.set_postfix(reward=f"{record['reward']:.2f}", kept=f"{record['kept']:.2f}",
                        pass1=record.get("heldout_pass1", ""))
        bar.update(1)
    bar.close()
    final = policy.full_model()
    if d.main:
        save_checkpoint(final.eval(), tok, run.final,
                        extra={"trained_steps": cfg.steps, "rl_recipe": config_to_dict(cfg)})
        if board is not None:
            board.close()
    d.barrier()
    return final, tok


def save(run: RunDir, policy, tok, optimizer, step: int, keep: int, flops: float) -> None:
    """A resumable checkpoint: full weights and optimizer state, gathered to rank 0 (collective)."""
    model, optimizer_state = policy.full_model(), policy.optimizer_state(optimizer)
    if model is not None:
        run.save(step, model, tok, optimizer_state, keep, extra_state={"flops": flops})


def run_step(step: int, policy, ref, optimizer, cfg: RLConfig, rewards: RewardSet, tok, d: distributed.Dist,
             device: torch.device) -> dict:
    """One RL step: the rollout (whole weights, no gradient), then the updates. Returns its metrics,
    with `step_flops` (rollout: 2 x params per sampled token; update: 8, a forward, a backward and
    the old-log-prob pass, per trained token)."""
    started = time.perf_counter()
    with policy.gathered(), autocast(device, cfg.precision):
        batch = rollout(policy.model, tok, cfg, rewards, step, d)
    record = dict(batch.stats) | {"rollout_s": round(time.perf_counter() - started, 3)}
    if batch.any_kept:
        record |= update(policy, ref, optimizer, cfg, batch, tok.special.pad, d, step)
    else:
        record |= {"updates": 0, "nonfinite_updates": 0}
    params = sum(p.numel() for p in policy.model.parameters())
    trained = record["trained_tokens"] * bool(record["updates"])
    return record | {"step_flops": 2 * params * record["sampled_tokens"] + 8 * params * trained}


def reward_failures(rewards: RewardSet, d: distributed.Dist) -> dict[str, int]:
    """Samples each reward failed on so far, over all ranks."""
    counts = d.sum([float(rewards.failures.get(name, 0)) for name in rewards.names])
    return {name: int(c) for name, c in zip(rewards.names, counts) if c}


def log(run: RunDir, board, record: dict) -> None:
    run.log(record)
    to_board(board, record)


def report(model, tok, cfg: RLConfig, root: Path) -> None:
    """The figures and the test-time curves (test_time.json) of a finished run."""
    import json

    from ponder.rl.figures import write_figures
    from ponder.rl.test_time import test_time_curves

    curves = None
    if cfg.test_time_problems:
        problems = held_out_set(cfg.test_time_problems, families=cfg.eval_families)
        curves = test_time_curves(NativeEngine(model.eval(), tok), problems, max_tokens=eval_tokens(cfg))
        (root / "test_time.json").write_text(json.dumps(curves, indent=1) + "\n")
    write_figures(root, cfg.eval_difficulty, curves)


def open_board(cfg: RLConfig, root: Path):
    """A TensorBoard writer when asked for and installed, else None (the JSONL is the record)."""
    if not cfg.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(root / "tensorboard"))


def to_board(board, record: dict) -> None:
    if board is None:
        return
    for key, value in record.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
            board.add_scalar(key, value, record["step"])
