"""Supervised traces: a problem becomes token ids (prompt, <think> reference </think> answer)
with a mask over the tokens the model must learn to produce, batched deterministically.

The batch for step s is a pure function of (seed, s): a resumed run sees exactly the data an
uninterrupted run would have seen, with nothing but the step number saved.
"""

from __future__ import annotations

import functools
import random
from typing import Iterable

import torch

from ponder.model.chat import Message, encode_prompt
from ponder.model.tokenizer import Tokenizer
from ponder.tasks.base import Problem
from ponder.tasks.mix import HELD_OUT_BASE, sample_mix

STEPS_PER_POOL = 16  # a pool of 16 batches is sorted by length, so little of a batch is padding
DEVELOPER_PROMPTS = (
    "You are a helpful assistant.",
    "Answer with just the final result.",
    "You are a careful math tutor. Think step by step.",
    "Be concise.",
    "Solve the user's problem.",
)


def messages_for(problem: Problem, rng: random.Random, developer_rate: float) -> list[Message]:
    messages = [Message("user", problem.prompt)]
    if rng.random() < developer_rate:
        messages.insert(0, Message("developer", rng.choice(DEVELOPER_PROMPTS)))
    return messages


def reasoning_tokens(tok: Tokenizer, problem: Problem) -> tuple[list[int], list[int]]:
    """The reference's ids, and 1 for each token to train: 0 for a token wholly inside one of
    the problem's `untrained` spans (a shown mistake; the tokens around it are trained)."""
    ids, offsets = tok.encode_with_offsets(problem.reference)
    spans = problem.untrained
    return ids, [0 if any(a <= start and end <= b for a, b in spans) else 1 for start, end in offsets]


def encode_example(tok: Tokenizer, messages: list[Message], problem: Problem) -> tuple[list[int], list[int]]:
    """(ids, target) where target[i] = 1 for the tokens after the generation prompt the model
    must learn to produce (all of them, but a shown mistake's)."""
    return _encode(tok, messages, problem, keep=None)


def encode_cut_example(tok: Tokenizer, messages: list[Message], problem: Problem, keep: int) -> tuple[list[int], list[int]]:
    """A trace cut off after `keep` of its tokens, as a reasoning budget cuts it, then the answer.

    A model that never saw a cut trace goes on writing the trace after a forced `</think>` (at
    effort minimal the bundled model answers with 137 tokens on average). The closing tag is
    not trained: the model must not learn to stop thinking early on its own, only what to write
    once the budget has stopped it. The trace prefix is trained as in a whole example."""
    return _encode(tok, messages, problem, keep=keep)


def _encode(tok: Tokenizer, messages: list[Message], problem: Problem, keep: int | None) -> tuple[list[int], list[int]]:
    """prompt <think> trace (its first `keep` tokens, or all) </think> answer <end>, with the
    tokens to train: the trace but a shown mistake, the closing tag only when the trace is whole,
    and the answer."""
    sp = tok.special
    prompt = encode_prompt(tok, messages)
    reasoning, trained = reasoning_tokens(tok, problem)
    if keep is not None:
        reasoning, trained = reasoning[:keep], trained[:keep]
    answer = [*tok.encode(problem.answer), sp.end]
    ids = prompt + reasoning + [sp.think_close] + answer
    return ids, [0] * len(prompt) + trained + [int(keep is None)] + [1] * len(answer)


def cut_point(tok: Tokenizer, problem: Problem, seed: int, rate: float) -> int | None:
    """Where the example of `seed` is cut (uniform over its trace's tokens), or None for a whole
    example. Its own generator: the rate leaves every other draw of the data stream as it was."""
    rng = random.Random(seed ^ 0xC0FFEE)
    if rng.random() >= rate:
        return None
    return rng.randrange(max(1, len(tok.encode(problem.reference))))


def pool_seeds(run_seed: int, pool: int, batch_size: int) -> range:
    """Problem seeds of one pool: disjoint across pools and runs' seeds, below the held-out range."""
    per_pool = STEPS_PER_POOL * batch_size
    start = (run_seed * 1_000_003 + pool * per_pool) % (HELD_OUT_BASE - per_pool)
    return range(start, start + per_pool)


def batch_for_step(
    tok: Tokenizer, step: int, run_seed: int, batch_size: int, families: tuple[str, ...], developer_rate: float,
    max_len: int, cut_rate: float = 0.0, cut_mode: str = "replace",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """inputs (B, T), targets (B, T), loss mask (B, T) float for optimizer step `step` (0-based).
    `cut_rate`: the share of examples whose trace is also cut short before the answer
    (encode_cut_example). `cut_mode` "replace": the cut example takes the whole one's place;
    "add": it comes on top, so batches grow by about that share."""
    pool, index = divmod(step, STEPS_PER_POOL)
    groups = _pool_batches(tok, pool, run_seed, batch_size, families, developer_rate, max_len, cut_rate, cut_mode)
    return collate(groups[index], tok.special.pad)


@functools.lru_cache(maxsize=2)
def _pool_batches(tok, pool, run_seed, batch_size, families, developer_rate, max_len, cut_rate, cut_mode) -> list[list]:
    """The pool's examples sorted by length, cut into batches, in a seeded order. Cached: the
    16 steps of a pool share one generation pass."""
    examples = []
    for seed in pool_seeds(run_seed, pool, batch_size):
        problem = sample_mix(seed, families=families)
        rng = random.Random(seed ^ 0x5EED)
        messages = messages_for(problem, rng, developer_rate)
        keep = cut_point(tok, problem, seed, cut_rate) if cut_rate > 0 else None
        encoded = [encode_example(tok, messages, problem)] if keep is None or cut_mode == "add" else []
        if keep is not None:
            encoded.append(encode_cut_example(tok, messages, problem, keep))
        examples += [(ids[:max_len], target[:max_len]) for ids, target in encoded]
    examples.sort(key=lambda e: len(e[0]))
    n = len(examples)  # STEPS_PER_POOL x batch_size, plus the added cut examples
    groups = [examples[i * n // STEPS_PER_POOL : (i + 1) * n // STEPS_PER_POOL] for i in range(STEPS_PER_POOL)]
    random.Random(run_seed * 7919 + pool).shuffle(groups)
    return groups


def collate(examples: Iterable[tuple[list[int], list[int]]], pad: int):
    examples = list(examples)
    T = max(len(ids) for ids, _ in examples) - 1
    inputs = torch.full((len(examples), T), pad, dtype=torch.long)
    targets = torch.full((len(examples), T), pad, dtype=torch.long)
    mask = torch.zeros((len(examples), T))
    for i, (ids, target) in enumerate(examples):
        n = len(ids) - 1
        inputs[i, :n] = torch.tensor(ids[:-1])
        targets[i, :n] = torch.tensor(ids[1:])
        mask[i, :n] = torch.tensor(target[1:], dtype=torch.float)
    return inputs, targets, mask


def tokenizer_corpus(n: int, families: tuple[str, ...]) -> list[str]:
    """Texts to learn BPE merges from: prompts, traces and answers of training problems."""
    texts = list(DEVELOPER_PROMPTS)
    for seed in range(n):
        p = sample_mix(seed, families=families)
        texts.extend((p.prompt, p.reference, p.answer))
    return texts
