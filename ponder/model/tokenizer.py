"""Tokenizer: byte-level BPE with every digit its own token, plus role and reasoning specials.

Digits stay single tokens so place-value arithmetic is learnable by a tiny model (as in Llama);
byte-level fallback means any user text round-trips exactly. Saved as a HF `tokenizers` JSON,
so transformers' AutoTokenizer loads the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ponder.errors import UserError

PAD, BOS, END = "<|pad|>", "<|bos|>", "<|end|>"
ROLES = ("system", "developer", "user", "assistant")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SPECIAL_TOKENS = (PAD, BOS, END, *(f"<|{r}|>" for r in ROLES), THINK_OPEN, THINK_CLOSE)


def role_token(role: str) -> str:
    return f"<|{role}|>"


@dataclass(frozen=True)
class SpecialIds:
    pad: int
    bos: int
    end: int
    think_open: int
    think_close: int
    roles: dict[str, int]

    def all(self) -> frozenset[int]:
        return frozenset({self.pad, self.bos, self.end, self.think_open, self.think_close, *self.roles.values()})


class Tokenizer:
    """Thin wrapper over `tokenizers.Tokenizer` that knows ponder's special token ids."""

    def __init__(self, backend):
        self.backend = backend
        # Text a user typed never becomes a control token: "</think>" in a prompt stays six
        # characters, so no prompt can close the hidden reasoning or fake a role. ponder inserts
        # special ids itself (chat.py) and never parses them out of text.
        backend.encode_special_tokens = True
        ids = {tok: backend.token_to_id(tok) for tok in SPECIAL_TOKENS}
        missing = [tok for tok, i in ids.items() if i is None]
        if missing:
            raise UserError(f"tokenizer lacks ponder's special tokens {missing}")
        self.special = SpecialIds(
            pad=ids[PAD], bos=ids[BOS], end=ids[END], think_open=ids[THINK_OPEN], think_close=ids[THINK_CLOSE],
            roles={r: ids[role_token(r)] for r in ROLES},
        )

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """Plain text to ids; special-token strings typed by a user are NOT turned into specials."""
        return self.backend.encode(text, add_special_tokens=False, is_pretokenized=False).ids if text else []

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """`encode`, with each token's (start, end) character span in `text`."""
        if not text:
            return [], []
        found = self.backend.encode(text, add_special_tokens=False, is_pretokenized=False)
        return found.ids, list(found.offsets)

    def decode(self, ids: Iterable[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=False)

    def save(self, path: Path) -> None:
        self.backend.save(str(path))

    @classmethod
    def load(cls, path: Path) -> "Tokenizer":
        from tokenizers import Tokenizer as Backend

        path = Path(path)
        if not path.is_file():
            raise UserError(f"missing tokenizer file {path}")
        try:
            backend = Backend.from_file(str(path))
        except Exception as exc:  # the Rust side raises plain Exception on a bad file
            raise UserError(f"{path} is not a valid tokenizers JSON file: {str(exc).splitlines()[0]}") from None
        return cls(backend)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> Tokenizer:
    """Learn BPE merges from `texts` (the task corpus). Deterministic for the same texts."""
    from tokenizers import Tokenizer as Backend, decoders, models, pre_tokenizers, trainers

    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return Tokenizer(backend)
