"""Supervised warm start: train a model from scratch (or a checkpoint) on reference traces.

The loop is deliberately plain: a deterministic batch per step, AdamW with warm-up and cosine
decay, a checkpoint every N steps (atomic, with optimizer and RNG state), held-out pass@1 through
the shared engine, one JSONL line of metrics per step. Resume = load the newest checkpoint and
carry on from its step; the data stream needs nothing else.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ponder.config import config_defaults, config_to_dict
from ponder.devices import autocast, emulated_bf16_warning, resolve_device, synchronize
from ponder.engine.base import SamplingParams
from ponder.engine.native import NativeEngine
from ponder.engine.spec import resolve_checkpoint
from ponder.memory import HeapTrimmer
from ponder.model.checkpoint import load_checkpoint, save_checkpoint
from ponder.model.gpt import GPT
from ponder.model.tokenizer import train_tokenizer
from ponder.perf import measure_matmul_peak
from ponder.rl.heldout import pass_at_1
from ponder.rl.run_dir import RunDir
from ponder.rl.sft_config import SFTConfig
from ponder.rl.traces import batch_for_step, tokenizer_corpus
from ponder.tasks.mix import held_out_set

TOKENIZER_CORPUS_PROBLEMS = 3000


def learning_rate(cfg: SFTConfig, step: int) -> float:
    """Linear warm-up to lr, then cosine decay to lr * min_lr_ratio at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def make_optimizer(model: GPT, cfg: SFTConfig) -> torch.optim.AdamW:
    # Decay matrices only; norms' gains and (tied) embeddings are left alone, as in nanoGPT.
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8,
    )


def sequence_loss(model: GPT, inputs, targets, mask) -> torch.Tensor:
    logits = model(inputs)  # (B, T, V)
    per_token = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none")
    return (per_token * mask.flatten()).sum() / mask.sum().clamp_min(1)


def evaluate(model: GPT, tok, cfg: SFTConfig) -> dict[str, float]:
    problems = held_out_set(cfg.eval_problems, families=cfg.families)
    model.eval()
    with autocast(model.embed.weight.device, cfg.precision):
        result = pass_at_1(NativeEngine(model, tok), problems, SamplingParams(max_completion_tokens=cfg.max_seq_len))
    model.train()
    return result


def train_sft(cfg: SFTConfig, resume: bool = False, progress: bool = True) -> Path:
    """Run (or resume) supervised training; returns the final checkpoint directory."""
    from tqdm import tqdm

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    warning = emulated_bf16_warning(device, cfg.precision)
    if warning:
        print(warning, file=sys.stderr)
    run = RunDir(Path(cfg.out_dir) / cfg.name)
    latest = run.start(config_to_dict(cfg), resume, defaults=config_defaults(SFTConfig))
    if latest is not None:
        model, tok, state = RunDir.load(latest)
        start_step = int(state["step"])
    else:
        torch.manual_seed(cfg.seed)
        if cfg.init_from:
            model, tok = load_checkpoint(resolve_checkpoint(cfg.init_from))
        else:
            tok = train_tokenizer(tokenizer_corpus(TOKENIZER_CORPUS_PROBLEMS, cfg.families), cfg.vocab_size)
            model = GPT(cfg.model_config())
        state, start_step = None, 0
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    # Before the RNG restore: it draws random matrices. MFU is against the precision trained in.
    peak = measure_matmul_peak(dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float32, device=device)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    model.train()
    # Batches differ in length, and on CPU the C heap keeps what each step frees, fragmented:
    # 120 steps of the bundled tune grew to 9 GB resident without this.
    trim_heap = HeapTrimmer()
    bar = tqdm(total=cfg.steps, initial=start_step, desc=f"sft {cfg.name}", disable=not progress, unit="step")
    for step in range(start_step, cfg.steps):
        started = time.perf_counter()
        inputs, targets, mask = batch_for_step(
            tok, step, cfg.seed, cfg.batch_size, cfg.families, cfg.developer_prompt_rate, model.cfg.max_seq_len,
            cfg.cut_trace_rate, cfg.cut_trace_mode,
        )
        lr = learning_rate(cfg, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, targets, mask = inputs.to(device), targets.to(device), mask.to(device)
        with autocast(device, cfg.precision):
            loss = sequence_loss(model, inputs, targets, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        optimizer.step()
        synchronize(device)
        trim_heap()
        elapsed = time.perf_counter() - started
        real_tokens = int((inputs != tok.special.pad).sum())
        flops = 3 * model.cfg.flops_per_token(inputs.shape[1]) * real_tokens
        record = {
            "step": step + 1, "loss": round(loss.item(), 5), "lr": lr, "grad_norm": round(float(grad_norm), 4),
            "tokens": real_tokens, "tokens_per_s": round(real_tokens / elapsed, 1),
            "step_time_s": round(elapsed, 4), "flops": flops, "mfu": round(flops / elapsed / peak, 4),
        }
        done = step + 1
        if done == cfg.steps or (cfg.eval_every and done % cfg.eval_every == 0):
            record.update({f"heldout_pass1_{k}": round(v, 4) for k, v in evaluate(model, tok, cfg).items()})
        run.log(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_s']:.0f}", mfu=f"{record['mfu']:.0%}")
        bar.update(1)
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            run.save(done, model, tok, optimizer.state_dict(), cfg.keep_checkpoints)
    bar.close()
    save_checkpoint(model.eval(), tok, run.final, extra={"trained_steps": cfg.steps, "recipe": config_to_dict(cfg)})
    return run.final
