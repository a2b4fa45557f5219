"""The one chat format, shared by training, the engine, the server and evals.

    <|bos|><|developer|>...<|end|><|user|>...<|end|><|assistant|><think>REASONING</think>ANSWER<|end|>

A generation prompt ends with `<|assistant|><think>`: the model always starts in its hidden
reasoning, and the engine (not the model) decides when a budget forces `</think>`.
Earlier assistant turns are rendered with their answers only, as with the o-series, unless the
caller hands their reasoning back (the Responses API's encrypted reasoning items and
`previous_response_id`): then the turn is rendered whole, `<think>REASONING</think>ANSWER`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from ponder.errors import UserError
from ponder.model.tokenizer import ROLES, Tokenizer


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    reasoning: str = ""  # an earlier assistant turn's hidden reasoning, when it is carried forward

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise UserError(f"unknown message role {self.role!r}; valid roles: {', '.join(ROLES)}")
        if not isinstance(self.content, str):
            raise UserError(f"message content must be a string, got {type(self.content).__name__}")
        if self.reasoning and self.role != "assistant":
            raise UserError(f"only assistant messages carry reasoning, not {self.role!r} ones")


def as_messages(prompt: str | Iterable[Message | Mapping[str, str]]) -> list[Message]:
    """A bare string is one user message; dicts with role/content are accepted too."""
    if isinstance(prompt, str):
        return [Message("user", prompt)]
    out = []
    for m in prompt:
        if not isinstance(m, Message) and not (isinstance(m, Mapping) and "role" in m and "content" in m):
            raise UserError(f"each message needs a role and a content, got {m!r}")
        out.append(m if isinstance(m, Message) else Message(m["role"], m["content"]))
    return out


def encode_prompt(tok: Tokenizer, messages: list[Message]) -> list[int]:
    """Token ids of the conversation plus the generation prompt `<|assistant|><think>`."""
    sp = tok.special
    ids = [sp.bos]
    for m in messages:
        ids.append(sp.roles[m.role])
        if m.reasoning:
            ids.extend([sp.think_open, *tok.encode(m.reasoning), sp.think_close])
        ids.extend(tok.encode(m.content))
        ids.append(sp.end)
    ids.extend([sp.roles["assistant"], sp.think_open])
    return ids


def encode_completion(tok: Tokenizer, reasoning: str, answer: str) -> list[int]:
    """What the model should produce after the generation prompt (the SFT target)."""
    sp = tok.special
    return [*tok.encode(reasoning), sp.think_close, *tok.encode(answer), sp.end]


# The same format as a Jinja template, written into the HF export so that transformers users
# get identical prompts from `apply_chat_template`.
CHAT_TEMPLATE = (
    "{{ '<|bos|>' }}{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '<|end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|><think>' }}{% endif %}"
)
