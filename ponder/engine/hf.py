"""Engine over any transformers causal LM (a local directory or a hub id), behind ponder's
`Engine` interface.

Prompts are rendered by the model's own chat template; think tags (`<think>`/`</think>` by
default, as DeepSeek-R1 and Qwen3 write them) split the hidden reasoning from the answer; the
reasoning budget, s1-style minimum reasoning and per-row stops are enforced by a logits processor
and a stopping criterion on top of `model.generate`, so the model code stays transformers'.

Leaves out: continuous batching (the server runs this engine through `generate` on a worker
thread), llama.cpp (gguf.py loads GGUF files through transformers), and ponder's guard against
special tokens typed into a prompt: text that spells a special token becomes that token, as in
transformers' own `apply_chat_template`.
"""

from __future__ import annotations

import functools

import random
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import torch

from ponder.engine.base import Completion, SamplingParams, per_request
from ponder.errors import UserError
from ponder.model.chat import Message, as_messages

HF_EXTRA = "pip install 'ponder[hf]'"
OPENING, REASONING, ANSWER = "opening", "reasoning", "answer"  # where a row's next token goes

# For tokenizers without a chat template (base models, most GGUF files): a plain transcript the
# model continues. A base model goes on to write the next "User:" turn itself, so that ends it.
PLAIN_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] in ('system', 'developer') %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}User: {{ m['content'] }}\n"
    "{% else %}Assistant: {{ m['content'] }}\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
PLAIN_STOPS = ("\nUser:",)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class HFOptions:
    """How a transformers model is loaded and driven."""

    # Reasoning
    think_tags: tuple[str, str] = ("<think>", "</think>")  # (open, close) around hidden reasoning
    # Prompts
    chat_template: str | None = None  # Jinja; replaces the model's own (default: its own, else PLAIN_TEMPLATE)
    # Loading
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: the checkpoint's own
    device: str | None = None  # None: cuda when available, else cpu
    local_files_only: bool = False  # a hub id resolves from the local cache only, no network retries
    # Generation
    max_batch: int = 16  # requests with the same sampling settings share one `generate` call
    seed: int = 0  # seeds sampled requests that bring no seed of their own

    def __post_init__(self) -> None:
        tags = self.think_tags
        if not (isinstance(tags, tuple) and len(tags) == 2 and all(isinstance(t, str) and t for t in tags)) \
                or tags[0] == tags[1]:
            raise UserError(f"think_tags must be two different non-empty strings (open, close), got {tags!r}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise UserError(f"dtype must be one of auto, float32, bfloat16, float16, got {self.dtype!r}")
        if self.max_batch < 1:
            raise UserError(f"max_batch must be at least 1, got {self.max_batch}")


@dataclass
class _Row:
    """One request's decode state, shared by the logits processor and the stopping criterion."""

    prompt: list[int]
    params: SamplingParams
    state: str
    max_new: int
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    open_len: int = 0  # generated ids up to the model's own open tag (whitespace + tag), not reasoning text
    reasoning_len: int = 0  # ids of reasoning, closing tag included, once it has closed
    force: list[int] = field(default_factory=list)  # closing-tag ids still to write (budget reached)
    owed: list[int] = field(default_factory=list)  # extension ("Wait") ids still to write (s1)
    done: bool = False
    stopped: bool = False  # by an end token, stop token or stop string; else by length
    by_token: bool = False  # the last id is the end/stop token, left out of the answer text


def _import_transformers():
    try:
        import transformers
    except ModuleNotFoundError as exc:
        if exc.name != "transformers":  # a broken install, not a missing extra: show it as it is
            raise
        raise UserError(f"the HF engine needs transformers: {HF_EXTRA}") from exc
    return transformers


class HFEngine:
    """Engine over a transformers `PreTrainedModel` and its tokenizer."""

    def __init__(self, model, tokenizer, options: HFOptions = HFOptions(), name: str = "hf"):
        transformers = _import_transformers()
        self.model, self.tok, self.options, self.name = model.eval(), tokenizer, options, name
        self.device = next(model.parameters()).device
        self.open_ids, self.close_ids = (self._tag_ids(t) for t in options.think_tags)
        eos = model.generation_config.eos_token_id if model.generation_config else None
        eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos.add(tokenizer.eos_token_id)
        self.eos_ids = sorted(eos)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (self.eos_ids or [0])[0]
        # The engine owns decoding: a checkpoint's suggested sampling (temperature, top_k,
        # repetition penalty) would silently change what SamplingParams asked for.
        model.generation_config = transformers.GenerationConfig(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=self.eos_ids or None, pad_token_id=self.pad_id)
        self.plain = options.chat_template is None and not tokenizer.chat_template
        self.template = options.chat_template or tokenizer.chat_template or PLAIN_TEMPLATE
        added = tokenizer.get_added_vocab()
        open_tag = options.think_tags[0]
        self.thinks = open_tag in self.template or (len(self.open_ids) == 1 and open_tag in added)
        self.has_developer = ("developer" in self.template or any("developer" in t for t in added)) \
            and self._supports_role("developer")
        self.has_system = self._supports_role("system")
        never = {i for i in (tokenizer.bos_token_id, self.pad_id) if i is not None and i not in eos}
        # Single-token tags are control tokens: no second open tag, no close tag in the answer.
        open_tag_id = set(self.open_ids) if len(self.open_ids) == 1 else set()
        close_tag_id = set(self.close_ids) if len(self.close_ids) == 1 else set()
        self.ban_opening = sorted(never)
        self.ban_answer = sorted(never | open_tag_id | close_tag_id)
        self.ban_reasoning = sorted(never | open_tag_id | eos)  # the reasoning must close before the end
        self._rng = random.Random(options.seed)
        self._space: dict[int, bool] = {}
        # The server calls generate from several threads; sampling seeds the process-wide torch
        # RNG, and two generate calls at once only fight over the same cores, so one at a time.
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, spec: str | Path, **options) -> "HFEngine":
        """Load `spec` (a directory with config.json, or a hub id) with `HFOptions(**options)`."""
        opts = HFOptions(**options)
        source = _locate(str(spec))
        transformers = _import_transformers()
        device = opts.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = opts.dtype if opts.dtype == "auto" else getattr(torch, opts.dtype)
        try:
            tok = transformers.AutoTokenizer.from_pretrained(source, local_files_only=opts.local_files_only)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                source, dtype=dtype, local_files_only=opts.local_files_only)
        except (OSError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot load HF model {str(spec)!r}: {reason}") from exc
        return cls(model.to(device), tok, opts, name=Path(source).name if Path(source).is_dir() else source)

    @property
    def context_length(self) -> int:
        cfg = self.model.config
        n = getattr(getattr(cfg, "text_config", None) or cfg, "max_position_embeddings", None)
        limit = getattr(self.tok, "model_max_length", None)
        return int(n or (limit if limit and limit < 1 << 24 else 2048))

    @functools.cached_property
    def longest_token_chars(self) -> int:
        """The most characters one vocabulary entry spells. Byte-level BPE spells each byte as one
        character and SentencePiece a byte-fallback token as six (<0x0A>), so no token stands
        for more text than this: a prompt longer than context x this cannot fit."""
        return max(len(piece) for piece in self.tok.get_vocab())

    def encode(self, messages: Sequence[Message]) -> list[int]:
        """Prompt token ids: the conversation rendered with the generation prompt."""
        return self._tokenize(self._render(messages))

    def generate(self, prompts, params) -> list[Completion]:
        params = per_request(params, len(prompts))
        rows = [self._prepare(p, sp) for p, sp in zip(prompts, params)]
        # A sampled request with a seed runs alone, so its result never depends on its batch mates.
        groups: dict[tuple, list[int]] = {}
        for i, sp in enumerate(params):
            key = ("greedy",) if sp.temperature == 0 else ("seeded", i) if sp.seed is not None \
                else ("sampled", sp.temperature, sp.top_k, sp.top_p)
            groups.setdefault(key, []).append(i)
        with self._lock:
            for members in groups.values():
                members.sort(key=lambda i: len(rows[i].prompt))  # similar lengths: little padding
                for lo in range(0, len(members), self.options.max_batch):
                    self._run([rows[i] for i in members[lo : lo + self.options.max_batch]])
        return [self._completion(r) for r in rows]

    # -- prompts --------------------------------------------------------------------------------

    def _tag_ids(self, tag: str) -> list[int]:
        return self.tok.encode(tag, add_special_tokens=False)

    def _tokenize(self, text: str) -> list[int]:
        # A model's template writes its own BOS; the plain fallback leaves it to the tokenizer.
        return self.tok.encode(text, add_special_tokens=self.plain)

    def _apply(self, conversation: list[dict]) -> str:
        return self.tok.apply_chat_template(
            conversation, chat_template=self.template, tokenize=False, add_generation_prompt=True)

    def _supports_role(self, role: str) -> bool:
        probe = "\x1fponder-probe\x1f"
        try:
            text = self._apply([{"role": role, "content": probe}, {"role": "user", "content": "hi"}])
        except Exception:  # templates raise on roles they lack (Gemma 2, Mistral): that is the answer
            return False
        return probe in text

    def _conversation(self, messages) -> list[dict]:
        """ponder messages -> template dicts: developer becomes system where the template has no
        developer role; instructions a template cannot take go in front of the first user turn."""
        out, instructions = [], []
        for m in as_messages(messages):
            role = "system" if m.role == "developer" and not self.has_developer else m.role
            if role == "system" and not self.has_system:
                instructions.append(m.content)
                continue
            turn = {"role": role, "content": m.content}
            if m.reasoning:  # the key Qwen3-style templates read; others ignore it
                turn["reasoning_content"] = m.reasoning
            out.append(turn)
        if instructions:
            first = next((t for t in out if t["role"] == "user"), None)
            if first is None:
                out.insert(0, {"role": "user", "content": "\n\n".join(instructions)})
            else:
                first["content"] = "\n\n".join([*instructions, first["content"]])
        return out

    def _render(self, messages) -> str:
        from jinja2 import TemplateError

        try:
            return self._apply(self._conversation(messages))
        except TemplateError as exc:
            raise UserError(f"model {self.name!r}: its chat template rejected the conversation: {exc}") from exc

    def _prepare(self, messages, params: SamplingParams) -> _Row:
        text = self._render(messages)
        ids = self._tokenize(text)
        budget, tail = params.reasoning_budget, text.rstrip()
        # A budget too small to hold the closing tag leaves no room to think: same as 0.
        no_room = budget is not None and budget < len(self.close_ids)
        if tail.endswith(self.options.think_tags[1]):
            state = ANSWER  # the template itself closed the reasoning (e.g. Qwen3 with thinking off)
        elif tail.endswith(self.options.think_tags[0]):
            state = ANSWER if no_room else REASONING
            ids += self.close_ids if no_room else []
        elif self.thinks and budget is not None:
            # Opening the tag in the prompt makes the budget count reasoning only, not the tag.
            state = ANSWER if no_room else REASONING
            ids += self.open_ids + (self.close_ids if no_room else [])
        else:
            state = ANSWER if budget == 0 else OPENING  # the model may still open the tag itself
        if len(ids) >= self.context_length:
            raise UserError(
                f"prompt is {len(ids)} tokens but the model's context is {self.context_length}; "
                f"shorten it to at most {self.context_length - 1} tokens, leaving room to answer")
        return _Row(ids, params, state, min(params.max_completion_tokens, self.context_length - len(ids)))

    # -- decoding -------------------------------------------------------------------------------

    @torch.inference_mode()
    def _run(self, rows: list[_Row]) -> None:
        transformers = _import_transformers()
        sp = rows[0].params  # the group shares temperature, top_k, top_p and seed
        width = max(len(r.prompt) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):  # left padding: every row's next token is at the same column
            input_ids[b, width - len(r.prompt) :] = torch.tensor(r.prompt)
            mask[b, width - len(r.prompt) :] = 1
        sampled = sp.temperature > 0
        processors = [_Steer(self, rows)]
        if sampled:  # applied after the bans, so top-p renormalises over allowed tokens only
            processors.append(transformers.TemperatureLogitsWarper(sp.temperature))
            if sp.top_k:
                processors.append(transformers.TopKLogitsWarper(sp.top_k))
            if sp.top_p < 1:
                processors.append(transformers.TopPLogitsWarper(sp.top_p))
        if any(r.params.min_reasoning_tokens for r in rows):
            processors.append(_Extend(self, rows, sampled))  # must see the final distribution
        extra = dict(temperature=1.0, top_k=0, top_p=1.0) if sampled else {}
        config = transformers.GenerationConfig(
            max_new_tokens=max(r.max_new for r in rows), do_sample=sampled, pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids or None, bos_token_id=self.tok.bos_token_id, **extra)
        call = dict(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                    generation_config=config, logits_processor=transformers.LogitsProcessorList(processors),
                    stopping_criteria=transformers.StoppingCriteriaList([_Watch(self, rows, processors[0])]))
        if not sampled:
            self.model.generate(**call)
            return
        seed = sp.seed if sp.seed is not None else self._rng.getrandbits(63)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the caller's global RNG is left as it was
            torch.manual_seed(seed)
            self.model.generate(**call)

    def _is_space(self, token: int) -> bool:
        if token not in self._space:
            text = self.tok.decode([token])
            self._space[token] = bool(text) and text.isspace()
        return self._space[token]

    def _close_rest(self, ids: list[int]) -> list[int]:
        """The closing-tag ids still missing when the reasoning already ends with a part of it."""
        close = self.close_ids
        for k in range(min(len(close) - 1, len(ids)), 0, -1):
            if ids[-k:] == close[:k]:
                return close[k:]
        return list(close)  # a copy: the caller pops it as the tag is written

    def _advance(self, r: _Row, token: int) -> None:
        """Account for the token a row just got; mark the row done when it should stop."""
        r.ids.append(token)
        for queue in (r.force, r.owed):
            if queue and queue[0] == token:
                queue.pop(0)
        if r.state == OPENING:
            self._opening(r)
        p, n, close = r.params, len(r.ids), self.close_ids
        if r.state == REASONING and n >= r.open_len + len(close) and r.ids[-len(close) :] == close:
            r.state, r.reasoning_len = ANSWER, n
        elif r.state == REASONING and p.stop_in_reasoning:
            r.done = r.stopped = self._tail_has(r.ids[r.open_len :], p.stop_in_reasoning)
        elif r.state == ANSWER and n > r.reasoning_len:
            if (token in self.eos_ids and not p.ignore_eos) or token in p.stop_token_ids:
                r.done = r.stopped = r.by_token = True
            elif p.stop or self.plain:
                r.done = r.stopped = self._tail_has(r.ids[r.reasoning_len :], p.stop + PLAIN_STOPS * self.plain)
        r.done = r.done or n >= r.max_new

    def _opening(self, r: _Row) -> None:
        """A row whose prompt left the reasoning unopened: reasoning starts only if its output
        begins (after whitespace) with the open tag; anything else makes it all answer."""
        k = 0
        while k < len(r.ids) and self._is_space(r.ids[k]):
            k += 1
        rest = r.ids[k:]
        if not rest:
            return
        if rest[: len(self.open_ids)] != self.open_ids[: len(rest)]:
            r.state = ANSWER
        elif len(rest) >= len(self.open_ids):
            r.state, r.open_len = REASONING, k + len(self.open_ids)

    def _tail_has(self, ids: list[int], stops: tuple[str, ...]) -> bool:
        # A stop string of n characters spans at most 4n byte-level tokens: no need to decode more.
        window = 4 * max(len(s) for s in stops) + 4
        text = self.tok.decode(ids[-window:])
        return any(s in text for s in stops)

    def _completion(self, r: _Row) -> Completion:
        p, ids = r.params, r.ids
        rl = {ANSWER: r.reasoning_len, REASONING: len(ids), OPENING: 0}[r.state]
        closed = r.state == ANSWER and rl > 0
        reasoning = self._decode(ids[r.open_len : rl - len(self.close_ids) if closed else rl])
        # Whitespace next to a tag is formatting ("<think>\n", "</think>\n\n"), not content; an
        # unclosed reasoning keeps its end (a step cut by stop_in_reasoning ends with its stop).
        reasoning = reasoning.strip() if closed else reasoning.lstrip()
        answer = self._decode(ids[rl : len(ids) - r.by_token])
        cuts = [answer.index(s) for s in p.stop + PLAIN_STOPS * self.plain if s in answer]
        answer = answer[: min(cuts)] if cuts else answer
        return Completion(
            reasoning=reasoning,
            answer=answer.lstrip(),
            prompt_tokens=len(r.prompt),
            reasoning_tokens=rl,
            answer_tokens=len(ids) - rl,
            finish_reason="stop" if r.stopped else "length",
            token_ids=tuple(ids),
            logprobs=tuple(r.logprobs) if p.logprobs else None,
        )

    def _decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True) if ids else ""


def _one_hot(scores: torch.Tensor, b: int, token: int) -> None:
    scores[b] = float("-inf")
    scores[b, token] = 0.0


class _Steer:
    """Logits processor, first in the list: forces the closing tag when a row's reasoning
    reaches its budget (token by token for a multi-token tag), writes owed extension tokens,
    and bans what cannot come next (the end token while reasoning, a tag in the answer).

    A plain callable: `LogitsProcessorList` needs only `__call__(input_ids, scores)`, and this way
    the module imports without transformers."""

    def __init__(self, engine: HFEngine, rows: list[_Row]):
        self.engine, self.rows = engine, rows
        self.logprobs = None  # (B, V) of the step's raw logits, for rows that asked for them
        self.want_logprobs = any(r.params.logprobs for r in rows)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        e = self.engine
        if self.want_logprobs:
            self.logprobs = scores.float().log_softmax(-1)
        for b, r in enumerate(self.rows):
            if r.done:
                continue
            if r.state == REASONING:
                budget = r.params.reasoning_budget
                if not r.force and budget is not None:
                    rest = e._close_rest(r.ids)
                    if len(r.ids) + len(rest) >= budget:  # the budget counts the closing tag
                        r.force = rest
                if r.force or r.owed:
                    _one_hot(scores, b, (r.force or r.owed)[0])
                    continue
                scores[b, e.ban_reasoning] = float("-inf")
            else:
                banned = e.ban_opening if r.state == OPENING else e.ban_answer
                # ignore_eos bans the end token: transformers would end the row on it regardless.
                scores[b, banned + (e.eos_ids if r.params.ignore_eos else [])] = float("-inf")
        return scores


class _Extend:
    """Logits processor, last in the list (s1 budget forcing): a row below its minimum reasoning
    whose next token would start the closing tag writes `extend_with` ("Wait") instead. It picks
    the token itself (argmax, or a draw from the final distribution) to know what would come."""

    def __init__(self, engine: HFEngine, rows: list[_Row], sampled: bool):
        self.engine, self.rows, self.sampled = engine, rows, sampled

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        e = self.engine
        for b, r in enumerate(self.rows):
            p = r.params
            if r.done or r.state != REASONING or r.force or r.owed or len(r.ids) >= p.min_reasoning_tokens:
                continue
            if self.sampled:
                choice = int(torch.multinomial(scores[b].float().softmax(-1), 1))
            else:
                choice = int(scores[b].argmax())
            if choice == e.close_ids[0]:
                r.owed = e._tag_ids(p.extend_with)
                choice = r.owed[0]
            _one_hot(scores, b, choice)
        return scores


class _Watch:
    """Stopping criterion: records each row's new token and says which rows are done (end
    token or stop in the answer, stop_in_reasoning, or the row's own max_completion_tokens)."""

    def __init__(self, engine: HFEngine, rows: list[_Row], steer: _Steer):
        self.engine, self.rows, self.steer = engine, rows, steer

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        last = input_ids[:, -1].tolist()
        for b, r in enumerate(self.rows):
            if r.done:
                continue
            if r.params.logprobs and self.steer.logprobs is not None:
                r.logprobs.append(float(self.steer.logprobs[b, last[b]]))
            self.engine._advance(r, last[b])
        return torch.tensor([r.done for r in self.rows], device=input_ids.device)


def _locate(spec: str) -> str:
    """A local model directory, or a hub id; anything else is a UserError naming it."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"HF model directory {str(path)!r} has no config.json; "
                            "a transformers model directory holds config.json, weights and tokenizer files")
        return str(path)
    if path.is_file():
        hint = " (a .gguf file loads with the gguf: kind)" if path.suffix.lower() == ".gguf" else ""
        raise UserError(f"HF model {spec!r} is a file; a transformers model is a directory with config.json{hint}")
    if _HUB_ID.match(spec) and not spec.startswith("."):
        return spec
    raise UserError(f"unknown HF model {spec!r}: no such directory, and not a hub id (owner/name)")
