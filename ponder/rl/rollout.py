"""Rollouts for RL: the step's problems, groups of samples drawn through the shared engine, and
the padded token tensors the update consumes.

Problems and sampling seeds are pure functions of (run seed, step), so a resumed run draws the
same problems and, on CPU, the same samples as the run it continues. Rollouts use no reasoning
budget: every token is the policy's own choice (a forced `</think>` would be trained on as if
sampled). The end token is part of the sequence, so the policy learns to stop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ponder.engine.base import Completion, SamplingParams
from ponder.engine.native import NativeEngine
from ponder.model.chat import Message
from ponder.rl.algos import entropy_of
from ponder.tasks.base import Problem, rng_for
from ponder.tasks.mix import HELD_OUT_BASE, sample_mix


def step_problems(run_seed: int, step: int, n: int, families: tuple[str, ...], min_difficulty: int,
                  max_difficulty: int) -> list[Problem]:
    """n training problems for `step` (0-based), seeds below the held-out range."""
    rng = rng_for("rl-problems", run_seed, step)
    problems = []
    for _ in range(n):
        seed = rng.randrange(HELD_OUT_BASE)
        level = rng.randint(min_difficulty, max_difficulty)
        problems.append(sample_mix(seed, level, families))
    return problems


def sample_seed(run_seed: int, step: int, index: int) -> int:
    return (run_seed * 1_000_003 + step * 100_003 + index) % (2**62)


def draw_groups(engine: NativeEngine, problems: list[Problem], group_size: int, max_tokens: int,
                temperature: float, run_seed: int, step: int, indices: list[int] | None = None) -> list[Completion]:
    """group_size samples per problem, problem-major: sample j of problem k is at k*G + j.
    `indices` are the problems' places in the step's full list (a rank's shard), which seed them."""
    prompts, params = [], []
    for i, problem in zip(indices if indices is not None else range(len(problems)), problems):
        for j in range(group_size):
            prompts.append([Message("user", problem.prompt)])
            params.append(SamplingParams(max_completion_tokens=max_tokens, temperature=temperature,
                                         seed=sample_seed(run_seed, step, i * group_size + j)))
    return engine.generate(prompts, params)


@dataclass(frozen=True)
class Sequences:
    tokens: torch.Tensor  # (B, L) prompt + completion, right-padded with pad
    mask: torch.Tensor  # (B, L-1) 1.0 where target tokens[:, 1:] is a sampled completion token
    lengths: torch.Tensor  # (B,) completion tokens
    widths: torch.Tensor  # (B,) prompt + completion tokens (the row's unpadded length)

    def rows(self, index: torch.Tensor) -> "Sequences":
        return Sequences(self.tokens[index], self.mask[index], self.lengths[index], self.widths[index])


def build_sequences(prompt_ids: list[list[int]], completions: list[Completion], pad: int) -> Sequences:
    rows = [list(p) + list(c.token_ids) for p, c in zip(prompt_ids, completions)]
    width = max(len(r) for r in rows)
    tokens = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width - 1))
    for b, (p, c, row) in enumerate(zip(prompt_ids, completions, rows)):
        tokens[b, : len(row)] = torch.tensor(row)
        mask[b, len(p) - 1 : len(row) - 1] = 1.0  # target t+1 is a completion token
    lengths = torch.tensor([len(c.token_ids) for c in completions])
    return Sequences(tokens, mask, lengths, torch.tensor([len(r) for r in rows]))


def token_logprobs(model, tokens: torch.Tensor, temperature: float = 1.0, chunk: int = 64,
                   widths: torch.Tensor | None = None, entropy: bool = False, entropy_grad: bool = False):
    """(B, L-1) log p(tokens[:, t+1] | tokens[:, :t+1]) under the sampling distribution (logits
    divided by the rollout temperature, so ratios compare like with like); gradients flow when enabled.
    With `widths`, each chunk runs only up to its longest row (right padding is never attended to,
    so cutting it changes nothing); positions past a row's width come back as 0.
    `entropy`: also return the (B, L-1) full-vocabulary entropy of that distribution at each position,
    detached unless `entropy_grad` (a bonus needs its gradient; a logged value should not keep
    another (b, width, V) tensor alive in the graph)."""
    out, entropies = [], []
    full = tokens.shape[1]
    for lo in range(0, tokens.shape[0], chunk):
        width = int(widths[lo : lo + chunk].max()) if widths is not None else full
        part = tokens[lo : lo + chunk, :width]
        logits = model(part[:, :-1]).float() / temperature  # (b, width-1, V)
        every = torch.log_softmax(logits, dim=-1)  # (b, width-1, V), shared with the entropy
        logp = every.gather(-1, part[:, 1:, None]).squeeze(-1)
        out.append(torch.nn.functional.pad(logp, (0, full - width)))
        if entropy:
            values = entropy_of(every if entropy_grad else every.detach())
            entropies.append(torch.nn.functional.pad(values, (0, full - width)))
    return (torch.cat(out), torch.cat(entropies)) if entropy else torch.cat(out)
