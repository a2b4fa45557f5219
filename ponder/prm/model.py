"""The PRM: a ponder GPT that says "+" or "-" after every reasoning step (Math-Shepherd's trick).

Two ordinary vocabulary tokens stand for a good and a bad step, so a PRM is a plain ponder
checkpoint (same architecture, tokenizer and loader), initialised from the policy it judges.
Only the logits of those two tokens are read, at the last token of each step:
P(good) = softmax([logit+, logit-])[0]. No tag token is inserted after a step: its own last
token (the newline, or the end of the answer) is where the label is read, so one forward pass
over the plain conversation scores every step, and a beam's prefix is scored as generated.

    DIR/config.json, model.safetensors, tokenizer.json     an ordinary checkpoint
    DIR/prm.json    {"plus": "+", "minus": "-", "plus_id": 19, "minus_id": 21, "separator": "\\n"}

Steps (`step_ends`): every token of the reasoning that contains the separator ends a step; a
finished candidate's last step runs on through `</think>` and the answer to its last token.
Left out: where labels come from (labels.py) and training (train.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch

from ponder.errors import UserError
from ponder.model.chat import Message, as_messages, encode_prompt
from ponder.model.checkpoint import load_checkpoint, save_checkpoint, write_atomically
from ponder.model.gpt import GPT
from ponder.model.tokenizer import Tokenizer

PRM_FILE = "prm.json"
PLUS, MINUS, SEPARATOR = "+", "-", "\n"
SCORE_BATCH = 32  # sequences per forward pass when scoring


@dataclass(frozen=True)
class PRMSpec:
    """What prm.json records: the label tokens and what ends a step."""

    plus: str
    minus: str
    plus_id: int
    minus_id: int
    separator: str


@dataclass(frozen=True)
class PRM:
    model: GPT
    tok: Tokenizer
    spec: PRMSpec
    step_ids: frozenset[int]  # tokens whose text contains the separator

    @property
    def context_length(self) -> int:
        return self.model.cfg.max_seq_len


def _single_token(tok: Tokenizer, text: str) -> int:
    ids = tok.encode(text)
    if len(ids) != 1:
        raise UserError(f"the PRM needs {text!r} to be one token of the policy's tokenizer, but it encodes "
                        f"to {len(ids)} tokens {ids}")
    return ids[0]


def make_spec(tok: Tokenizer, plus: str = PLUS, minus: str = MINUS, separator: str = SEPARATOR) -> PRMSpec:
    return PRMSpec(plus, minus, _single_token(tok, plus), _single_token(tok, minus), separator)


def separator_ids(tok: Tokenizer, separator: str) -> frozenset[int]:
    # A byte-level BPE may merge the separator with its neighbours, so any token that contains
    # it ends a step (the bundled tokenizer has exactly one, the bare newline).
    return frozenset(i for i in range(tok.vocab_size) if separator in tok.decode([i]))


def as_prm(model: GPT, tok: Tokenizer, spec: PRMSpec) -> PRM:
    return PRM(model, tok, spec, separator_ids(tok, spec.separator))


def init_prm(policy_dir: Path | str) -> PRM:
    """A PRM that starts as a copy of the policy checkpoint in `policy_dir`."""
    model, tok = load_checkpoint(policy_dir)
    return as_prm(model, tok, make_spec(tok))


def save_prm(prm: PRM, path: Path | str, extra: dict | None = None) -> Path:
    """Write the checkpoint and prm.json in one atomic step: a loader never finds one without the other."""
    path = Path(path)

    def fill(tmp: Path) -> None:
        save_checkpoint(prm.model, prm.tok, tmp, extra=extra)
        (tmp / PRM_FILE).write_text(json.dumps(asdict(prm.spec), indent=2))

    write_atomically(path, fill)
    return path


def load_prm(path: Path | str) -> PRM:
    """Load a PRM directory; a missing or unreadable prm.json is a UserError naming the file."""
    path = Path(path)
    spec_path = path / PRM_FILE
    if path.is_dir() and not spec_path.is_file():
        raise UserError(f"{path} is not a PRM directory (it has no {PRM_FILE}); train one with "
                        "`ponder train --stage prm` or point at its final/ directory")
    model, tok = load_checkpoint(path)
    try:
        raw = json.loads(spec_path.read_text())
        spec = PRMSpec(**{k: raw[k] for k in PRMSpec.__dataclass_fields__})
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{spec_path} is not a valid PRM spec ({exc}); it needs "
                        f"{', '.join(PRMSpec.__dataclass_fields__)}") from None
    for name in ("plus_id", "minus_id"):
        if not isinstance(getattr(spec, name), int) or not 0 <= getattr(spec, name) < tok.vocab_size:
            raise UserError(f"{spec_path}: {name} {getattr(spec, name)!r} is not a token of {path / 'tokenizer.json'}")
    return as_prm(model.eval(), tok, spec)


def step_ends(completion_ids: Sequence[int], step_ids: frozenset[int], think_close: int,
              finished: bool) -> list[int]:
    """Indices into `completion_ids` of the tokens that end a step.

    `finished`: the candidate is over (answered, or cut off), so its last token ends the last
    step even when that is not a separator; an unfinished prefix ends at its last separator.
    """
    ends, in_reasoning = [], True
    for i, token in enumerate(completion_ids):
        if token == think_close:
            in_reasoning = False
        elif in_reasoning and token in step_ids:
            ends.append(i)
    last = len(completion_ids) - 1
    if finished and last >= 0 and (not ends or ends[-1] != last):
        ends.append(last)
    return ends


def pair_logits(model: GPT, tokens: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                spec: PRMSpec) -> torch.Tensor:
    """(N, 2) logits of (+, -) at tokens[rows, cols]; tokens (B, T), right-padded."""
    logits = model(tokens)  # (B, T, V); causal, so right padding never reaches a real position
    picked = logits[rows, cols]  # (N, V)
    return picked[:, [spec.plus_id, spec.minus_id]].float()


def padded(sequences: Sequence[Sequence[int]], pad: int) -> torch.Tensor:
    width = max(len(s) for s in sequences)
    out = torch.full((len(sequences), width), pad, dtype=torch.long)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
    return out


@torch.inference_mode()
def score_sequences(prm: PRM, items: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[list[float]]:
    """P(+) at each end of each (token ids, end positions) item, batched by similar length.

    Ends past the PRM's context are dropped (their steps go unscored), so a long candidate
    from another model can still be scored on the steps that fit.
    """
    limit = prm.context_length
    out: list[list[float]] = [[] for _ in items]
    order = sorted((i for i in range(len(items)) if any(e < limit for e in items[i][1])),
                   key=lambda i: len(items[i][0]))
    for lo in range(0, len(order), SCORE_BATCH):
        chunk = order[lo : lo + SCORE_BATCH]
        tokens = padded([list(items[i][0])[:limit] for i in chunk], prm.tok.special.pad)
        picks = [(r, e, i) for r, i in enumerate(chunk) for e in items[i][1] if e < limit]
        rows, cols, owners = zip(*picks)
        p = pair_logits(prm.model, tokens, torch.tensor(rows), torch.tensor(cols), prm.spec).softmax(-1)[:, 0]
        for i, value in zip(owners, p.tolist()):
            out[i].append(value)
    return out


def candidate_ids(prm: PRM, messages: Sequence[Message], reasoning: str,
                  answer: str | None = None, ended: bool = True) -> tuple[list[int], list[int]]:
    """(token ids, absolute step ends) of a candidate given as text.

    `answer` None: the candidate is still reasoning; its last line counts as a step whether or
    not a separator ends it. `ended`: the answer was finished by the end token (not cut off).
    """
    tok, sp = prm.tok, prm.tok.special
    prompt = encode_prompt(tok, as_messages(messages))
    completion = tok.encode(reasoning)
    if answer is not None:
        completion += [sp.think_close, *tok.encode(answer), *([sp.end] if ended else [])]
    ends = step_ends(completion, prm.step_ids, sp.think_close, finished=True)
    return prompt + completion, [len(prompt) + e for e in ends]


def score_steps_batch(prm: PRM, candidates: Sequence[tuple[Sequence[Message], str, str | None]]) -> list[list[float]]:
    """P(+) at each step end of many (messages, reasoning, answer or None) candidates at once."""
    return score_sequences(prm, [candidate_ids(prm, m, r, a) for m, r, a in candidates])


def score_steps(prm: PRM, messages: Sequence[Message], reasoning: str, answer: str | None = None) -> list[float]:
    """P(+) at each step end of one candidate: one float per reasoning line (and the answer)."""
    return score_steps_batch(prm, [(messages, reasoning, answer)])[0]
