"""The native engine: batched generation for ponder's own model with an in-place KV cache,
per-request reasoning budgets, stop conditions, sampling and logprobs.

Every row's state (in reasoning or not, tokens used, finished) lives in tensors, so one decode
step costs the same handful of ops whatever the batch size; rows that finish are dropped from
the batch once a quarter of it is done, so long stragglers do not drag the whole batch along.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import torch

from ponder.engine.base import Completion, SamplingParams, per_request
from ponder.engine.sampling import sample_next
from ponder.errors import UserError
from ponder.model.chat import Message, as_messages, encode_prompt
from ponder.model.gpt import GPT, KVCache, cache_dtype
from ponder.model.tokenizer import Tokenizer

NO_BUDGET = 1 << 30
# Decode attends over the whole KV cache, unwritten slots masked: a whole cache layer is
# contiguous, and on a CPU a bf16 batched matmul copies a strided slice first (5x slower than
# the fp32 one it replaces). The cache grows by this many slots at a time, so the masked tail
# costs at most this much attention per step, and regrowing the cache is rare.
CACHE_GROWTH = 32
# Finished rows leave the batch once this share of it has finished. A finished row costs a full
# row of every step until then, and dropping rows copies the cache; a quarter drew the same
# tokens 10% faster than a half in RL rollouts (AVX2 CPU; an eighth and a sixteenth were no
# faster: bench/compaction_share.py).
COMPACT_SHARE = 0.25


@dataclass
class _Rows:
    """Decode state of the rows still in the batch (all tensors (B,))."""

    index: torch.Tensor  # original row of each current row
    pad: torch.Tensor  # left padding of each row
    in_reasoning: torch.Tensor
    budget: torch.Tensor
    reasoning_used: torch.Tensor
    generated: torch.Tensor
    max_new: torch.Tensor
    finished: torch.Tensor
    temperature: torch.Tensor
    top_k: torch.Tensor
    top_p: torch.Tensor
    ignore_eos: torch.Tensor
    min_reasoning: torch.Tensor

    def keep(self, rows: torch.Tensor) -> "_Rows":
        return _Rows(**{name: getattr(self, name)[rows] for name in self.__dataclass_fields__})


class NativeEngine:
    """Engine over a ponder `GPT` and its tokenizer."""

    def __init__(self, model: GPT, tokenizer: Tokenizer, name: str = "ponder", max_batch: int = 64, seed: int = 0):
        self.model = model.eval()
        self.tok = tokenizer
        self.name = name
        self.max_batch = max_batch
        self.generator = torch.Generator().manual_seed(seed)  # for sampled rows without their own seed
        sp = tokenizer.special
        vocab = model.cfg.vocab_size
        never = torch.zeros(vocab, dtype=torch.bool)
        never[[sp.pad, sp.bos, sp.think_open, *sp.roles.values()]] = True
        never[tokenizer.vocab_size :] = True  # embedding rows the tokenizer never produces
        self.ban_in_reasoning = never.clone()
        self.ban_in_reasoning[sp.end] = True  # reasoning must be closed before the answer ends
        self.ban_in_answer = never.clone()
        self.ban_in_answer[sp.think_close] = True

    @property
    def context_length(self) -> int:
        return self.model.cfg.max_seq_len

    def encode(self, messages: Sequence[Message]) -> list[int]:
        return encode_prompt(self.tok, as_messages(messages))

    @functools.cached_property
    def longest_token_chars(self) -> int:
        """The most characters one token stands for (its byte-level spelling is at least as long),
        so a text longer than context x this cannot fit, whatever it says."""
        return max(len(piece) for piece in self.tok.backend.get_vocab())

    def generate(self, prompts, params) -> list[Completion]:
        return self.generate_ids([self.encode(p) for p in prompts], params)

    def generate_ids(self, prompt_ids: Sequence[Sequence[int]], params) -> list[Completion]:
        params = per_request(params, len(prompt_ids))
        prompts = []
        for ids, p in zip(prompt_ids, params):
            # Budget 0: the reasoning is closed in the prompt, so no reasoning token is spent.
            ids = list(ids) + [self.tok.special.think_close] if p.reasoning_budget == 0 else list(ids)
            if len(ids) >= self.context_length:
                raise UserError(
                    f"prompt is {len(ids)} tokens but the model's context is {self.context_length}; "
                    f"shorten it to at most {self.context_length - 1} tokens, leaving room to answer"
                )
            prompts.append(ids)
        out: list[Completion | None] = [None] * len(prompts)
        # Similar lengths share a batch, so little of each batch is padding.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        for lo in range(0, len(order), self.max_batch):
            chunk = order[lo : lo + self.max_batch]
            for i, c in zip(chunk, self._run_batch([prompts[i] for i in chunk], [params[i] for i in chunk])):
                out[i] = c
        return out  # type: ignore[return-value]

    def _run_batch(self, prompts: list[list[int]], params: list[SamplingParams]) -> list[Completion]:
        device = self.model.embed.weight.device
        # Under autocast, no_grad rather than inference mode: autocast caches its bf16 copy of each
        # weight only outside inference mode, and otherwise casts every weight at every decode step.
        with torch.no_grad() if torch.is_autocast_enabled(device.type) else torch.inference_mode():
            return self._decode(prompts, params)

    def _decode(self, prompts: list[list[int]], params: list[SamplingParams]) -> list[Completion]:
        cfg, sp = self.model.cfg, self.tok.special
        # Row bookkeeping and sampling stay on the CPU (small tensors, seeded CPU generators, so
        # a seed gives the same random draws on any device; a GPU's logits, and so near-ties,
        # may still differ from the CPU's); only the model's inputs go to its device.
        device = self.model.embed.weight.device
        B, P = len(prompts), max(len(p) for p in prompts)
        lengths = torch.tensor([len(p) for p in prompts])
        max_new = torch.minimum(torch.tensor([p.max_completion_tokens for p in params]), cfg.max_seq_len - lengths)
        steps = int(max_new.max())
        rows = _Rows(
            index=torch.arange(B),
            pad=P - lengths,
            in_reasoning=torch.tensor([p.reasoning_budget != 0 for p in params]),
            budget=torch.tensor([NO_BUDGET if p.reasoning_budget is None else p.reasoning_budget for p in params]),
            reasoning_used=torch.zeros(B, dtype=torch.long),
            generated=torch.zeros(B, dtype=torch.long),
            max_new=max_new,
            finished=max_new <= 0,
            temperature=torch.tensor([float(p.temperature) for p in params]),
            top_k=torch.tensor([p.top_k for p in params]),
            top_p=torch.tensor([float(p.top_p) for p in params]),
            ignore_eos=torch.tensor([p.ignore_eos for p in params]),
            min_reasoning=torch.tensor([p.min_reasoning_tokens for p in params]),
        )
        # Budget forcing: each row's "Wait" tokens, and those still to be written.
        extension = [self.tok.encode(p.extend_with) if p.min_reasoning_tokens else [] for p in params]
        forced: list[list[int]] = [[] for _ in params]
        stop_ids = torch.zeros(cfg.vocab_size, dtype=torch.bool)
        stop_ids[sp.end] = True
        per_row_stop = [set(p.stop_token_ids) for p in params]
        want_logprobs = any(p.logprobs for p in params)
        generators = [torch.Generator().manual_seed(p.seed) if p.seed is not None else None for p in params]
        tokens_out = torch.full((B, steps), sp.pad, dtype=torch.long)
        logprobs_out = torch.zeros((B, steps)) if want_logprobs else None
        stopped_out = torch.zeros(B, dtype=torch.bool)  # by a stop token or string; else by length

        tokens = torch.full((B, P), sp.pad, dtype=torch.long)
        for i, p in enumerate(prompts):
            tokens[i, P - len(p) :] = torch.tensor(p, dtype=torch.long)
        slot = torch.arange(P + steps)
        key_valid = slot.unsqueeze(0) >= rows.pad.unsqueeze(1)  # (B, S)
        positions = (torch.arange(P).unsqueeze(0) - rows.pad.unsqueeze(1)).clamp_min(0)  # (B, P)
        causal = torch.ones(P, P, dtype=torch.bool).tril()
        # Padding queries attend to themselves so no softmax row is empty (an empty row is NaN,
        # and NaN values would leak into real rows through 0 * NaN).
        mask = (key_valid[:, None, None, :P] & causal) | torch.eye(P, dtype=torch.bool)
        cache, logits = self._prefill(tokens, positions, mask, min(P + CACHE_GROWTH, P + steps), device)
        written = key_valid & (slot < P).unsqueeze(0)  # (B, S) slots holding a real token's key

        for j in range(steps):
            token = self._choose(logits, rows, generators, extension, forced)
            if logprobs_out is not None:
                logprobs_out[rows.index, j] = logits.float().log_softmax(-1).gather(1, token[:, None]).squeeze(1)
            live = ~rows.finished
            tokens_out[rows.index, j] = torch.where(live, token, sp.pad)
            rows.generated += live
            rows.reasoning_used += live & rows.in_reasoning
            is_stop = (stop_ids[token] & ~rows.ignore_eos) | self._user_stop(token, rows, per_row_stop)
            stop_now = live & ~rows.in_reasoning & is_stop
            rows.in_reasoning &= ~(token == sp.think_close)
            stop_now |= live & self._stop_string_hit(tokens_out, rows, params, j)
            stopped_out[rows.index[stop_now]] = True
            rows.finished |= stop_now | (rows.generated >= rows.max_new)
            if bool(rows.finished.all()):
                break
            if j + 1 == steps:
                break
            if int(rows.finished.sum()) >= COMPACT_SHARE * len(rows.finished) and len(rows.finished) >= 8:
                keep = (~rows.finished).nonzero().squeeze(1)
                rows, token = rows.keep(keep), token[keep]
                written = written[keep]
                cache.keep_rows(keep.to(device))
            S = P + j + 1
            written[:, S - 1] = True
            if S > cache.length:
                cache.grow(min(cache.length + CACHE_GROWTH, P + steps))
            # Finished rows are still computed until the batch is compacted; clamping keeps their
            # (discarded) positions inside the rotary table when a long prompt filled the context.
            positions = (S - 1 - rows.pad).clamp_max(cfg.max_seq_len - 1).unsqueeze(1)
            logits = self.model(token.unsqueeze(1).to(device), positions.to(device), cache, S - 1,
                                written[:, None, None, : cache.length].to(device))[:, -1].float().cpu()
        return [
            self._completion(prompts[i], tokens_out[i], logprobs_out, i, params[i], bool(stopped_out[i]))
            for i in range(B)
        ]

    def _prefill(self, tokens, positions, mask, slots: int, device) -> tuple[KVCache, torch.Tensor]:
        """The prompts' keys and values in a cache of `slots` slots per row, and the logits at
        each prompt's last token (B, V).

        Equal prompts are computed once: an RL step samples a group of completions from each
        prompt, and a vote draws k from one, so most rows of such a batch repeat another. Their
        keys and values are copied into every row that shares them."""
        unique, inverse = torch.unique(tokens, dim=0, return_inverse=True)
        if len(unique) == len(tokens):
            unique, inverse, first = tokens, None, torch.arange(len(tokens))
        else:
            first = torch.zeros(len(unique), dtype=torch.long)  # a row that holds each unique prompt
            first[inverse] = torch.arange(len(tokens))
        cache = KVCache(self.model.cfg, len(unique), slots, dtype=cache_dtype(self.model, device), device=device)
        logits = self.model(unique.to(device), positions[first].to(device), cache, 0, mask[first].to(device),
                            last_only=True)[:, -1].float().cpu()  # (U, V)
        if inverse is None:
            return cache, logits
        cache.keep_rows(inverse.to(device))  # (rows of the batch) <- (their unique prompt)
        return cache, logits[inverse]

    def _choose(self, logits, rows: _Rows, generators, extension=None, forced=None) -> torch.Tensor:
        """Next token per row. `extension[i]` / `forced[i]` (lists, by original row): budget
        forcing's "Wait" tokens and those still owed; `forced` lists are updated in place."""
        banned = torch.where(rows.in_reasoning.unsqueeze(1), self.ban_in_reasoning, self.ban_in_answer)
        logits = logits.masked_fill(banned, float("-inf"))
        sampled = rows.temperature > 0
        uniforms = None
        if bool(sampled.any()):
            uniforms = torch.rand(len(rows.index), generator=self.generator)
            own = [generators[original] for original in rows.index.tolist()]
            if all(g is not None for g in own):  # every row seeded (RL, votes): one cat, not B writes
                uniforms = torch.cat([torch.rand(1, generator=g) for g in own])
            else:
                for r, g in enumerate(own):
                    if g is not None:
                        uniforms[r] = torch.rand(1, generator=g)[0]
        token = sample_next(logits, rows.temperature, rows.top_k, rows.top_p, uniforms)
        if forced is not None and bool(rows.min_reasoning.any()):
            token = self._extend_reasoning(token, rows, extension, forced)
        # The budget counts the closing tag, so the last allowed reasoning token is `</think>`.
        force_close = rows.in_reasoning & (rows.reasoning_used + 1 >= rows.budget)
        return torch.where(force_close, self.tok.special.think_close, token)

    def _extend_reasoning(self, token, rows: _Rows, extension, forced) -> torch.Tensor:
        """s1's budget forcing: a row that tries to close its reasoning before its minimum writes
        "Wait" instead, one token per step, and keeps thinking."""
        close = self.tok.special.think_close
        early = rows.in_reasoning & (token == close) & (rows.reasoning_used < rows.min_reasoning)
        token = token.clone()
        for r, original in enumerate(rows.index.tolist()):
            owed = forced[original]
            if not owed and bool(early[r]):
                owed.extend(extension[original])
            if owed and bool(rows.in_reasoning[r]):
                token[r] = owed.pop(0)
        return token

    @staticmethod
    def _user_stop(token, rows: _Rows, per_row_stop) -> torch.Tensor:
        hit = torch.zeros(len(token), dtype=torch.bool)
        if any(per_row_stop):
            for r, (original, t) in enumerate(zip(rows.index.tolist(), token.tolist())):
                hit[r] = t in per_row_stop[original]
        return hit

    def _stop_string_hit(self, tokens_out, rows: _Rows, params, j: int) -> torch.Tensor:
        hit = torch.zeros(len(rows.index), dtype=torch.bool)
        if not any(p.stop or p.stop_in_reasoning for p in params):
            return hit
        for r, original in enumerate(rows.index.tolist()):
            p = params[original]
            reasoning, answer = self._split(tokens_out[original, : j + 1].tolist(), p)
            if rows.finished[r]:
                continue
            if rows.in_reasoning[r] and p.stop_in_reasoning:
                hit[r] = any(s in self.tok.decode(reasoning) for s in p.stop_in_reasoning)
            elif not rows.in_reasoning[r] and p.stop:
                hit[r] = any(s in self.tok.decode(answer) for s in p.stop)
        return hit

    def _split(self, ids: list[int], params: SamplingParams) -> tuple[list[int], list[int]]:
        """(reasoning ids with their closing tag, answer ids) of a generated sequence."""
        if params.reasoning_budget == 0:
            return [], ids
        close = self.tok.special.think_close
        if close in ids:
            k = ids.index(close) + 1
            return ids[:k], ids[k:]
        return ids, []

    def _completion(self, prompt, row_tokens, logprobs_out, i: int, params: SamplingParams, stopped: bool):
        sp = self.tok.special
        n = int((row_tokens != sp.pad).sum())  # pad is banned, so it only marks unused steps
        ids = row_tokens[:n].tolist()
        reasoning_ids, answer_ids = self._split(ids, params)
        by_token = stopped and bool(answer_ids) and (answer_ids[-1] == sp.end or answer_ids[-1] in params.stop_token_ids)
        answer = self.tok.decode(answer_ids[:-1] if by_token else answer_ids)
        for s in params.stop:
            if s in answer:
                answer = answer[: answer.index(s)]
        reasoning = self.tok.decode(t for t in reasoning_ids if t != sp.think_close)
        return Completion(
            reasoning=reasoning,
            answer=answer,
            prompt_tokens=len(prompt),
            reasoning_tokens=len(reasoning_ids),
            answer_tokens=len(answer_ids),
            finish_reason="stop" if stopped else "length",
            token_ids=tuple(ids),
            logprobs=tuple(logprobs_out[i, :n].tolist()) if logprobs_out is not None and params.logprobs else None,
        )
