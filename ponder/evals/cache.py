"""The eval response cache: a re-run of the same eval makes no engine calls.

One SQLite file (WAL, so a second `ponder eval` reading it does not block the first writing).
A response is keyed by sha256 over everything that decides it:

- the model's identity: for a local checkpoint, a hash of its weights, config and tokenizer
  files, so a retrained checkpoint at the same path never hits stale entries; for a remote
  spec (`openai:MODEL@URL`), the spec string: what a server does behind its URL is its business;
- the exact messages, roles (and carried reasoning) included;
- every SamplingParams field (all of them can change the output or what is returned);
- the sample-of-k index.

File hashes are memoised in the same database by (path, inode, size, mtime, ctime), so a
multi-gigabyte checkpoint is read once, not at every run. The ctime is what makes the memo
safe: `os.utime` can put an edited file's mtime back, but no user can set its ctime, which
every write and every utime moves to "now". A memo is trusted only for `ponder eval` and
`ponder card`; `ponder serve` hashes the bytes again (gate.py). Left out: eviction (delete the
file to clear it) and sharing between machines.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Sequence

from ponder.errors import UserError
from ponder.engine.base import Completion, Engine, SamplingParams
from ponder.model.chat import Message

DEFAULT_CACHE = Path.home() / ".cache" / "ponder" / "evals.sqlite"
# Files of a checkpoint directory that decide its outputs; anything else there (logs, a stored
# system card) may change without invalidating the cache.
_IDENTITY_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
# Tokenizers come as tokenizer.json, or as SentencePiece (tokenizer.model) or GPT-2 style
# (vocab.json + merges.txt) files: swapping any of them changes what the model reads.
_IDENTITY_NAMES = ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
                   "chat_template.jinja", "special_tokens_map.json", "tokenizer.model", "vocab.json", "vocab.txt",
                   "merges.txt", "added_tokens.json", "spiece.model", "sentencepiece.bpe.model")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, completion TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS file_hashes_v2 (path TEXT PRIMARY KEY, inode INTEGER NOT NULL, size INTEGER NOT NULL,
                                           mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
                                           sha256 TEXT NOT NULL);
"""
# A file changed less than this long ago is hashed but not memoised: the kernel's clock moves in
# ticks, so an edit in the same tick as the hash could leave ctime unchanged (git's "racy" index).
RACY_NS = 2_000_000_000


def stat_key(path: Path) -> tuple[int, int, int, int]:
    """What the memo (and serve's check that the files it hashed are the files it loaded) compares."""
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(model_id: str, messages: Sequence[Message], params: SamplingParams, index: int) -> str:
    payload = {
        "model": model_id,
        "messages": [[m.role, m.content, m.reasoning] for m in messages],
        "params": dataclasses.asdict(params),
        "index": index,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _encode(c: Completion) -> str:
    return json.dumps({"reasoning": c.reasoning, "answer": c.answer, "prompt_tokens": c.prompt_tokens,
                       "reasoning_tokens": c.reasoning_tokens, "answer_tokens": c.answer_tokens,
                       "finish_reason": c.finish_reason, "token_ids": list(c.token_ids),
                       "logprobs": None if c.logprobs is None else list(c.logprobs)})


def _decode(text: str) -> Completion:
    d = json.loads(text)
    return Completion(reasoning=d["reasoning"], answer=d["answer"], prompt_tokens=d["prompt_tokens"],
                      reasoning_tokens=d["reasoning_tokens"], answer_tokens=d["answer_tokens"],
                      finish_reason=d["finish_reason"], token_ids=tuple(d["token_ids"]),
                      logprobs=None if d["logprobs"] is None else tuple(d["logprobs"]))


class ResponseCache:
    """Completions by key, in one SQLite file. Use from one thread (the runner's)."""

    def __init__(self, path: str | Path = DEFAULT_CACHE):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
        self._conn.executescript(_SCHEMA)

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
            chunk = unique[start:start + 500]
            rows = self._conn.execute(
                f"SELECT key, completion FROM responses WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update((key, _decode(text)) for key, text in rows)
        return found

    def put_many(self, items: Sequence[tuple[str, Completion]]) -> None:
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)",
                                   [(key, _encode(c), time.time()) for key, c in items])

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def file_sha256(self, path: Path) -> str:
        """sha256 of a file's bytes, memoised by (path, inode, size, mtime, ctime)."""
        path = path.resolve()
        key = stat_key(path)
        row = self._conn.execute("SELECT inode, size, mtime_ns, ctime_ns, sha256 FROM file_hashes_v2 WHERE path = ?",
                                 (str(path),)).fetchone()
        if row and tuple(row[:4]) == key:
            return row[4]
        digest = sha256_file(path)
        if stat_key(path) == key and time.time_ns() - key[3] > RACY_NS:  # unchanged while read, and not racy
            with self._conn:
                self._conn.execute("INSERT OR REPLACE INTO file_hashes_v2 VALUES (?, ?, ?, ?, ?, ?)",
                                   (str(path), *key, digest))
        return digest

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def identity_files(spec: str) -> tuple[str, list[Path]] | None:
    """(kind, the files that make the model) for a local model; None where there are no local
    files to hash (an endpoint, a hub id, a vLLM model). A local path that does not exist is a
    UserError naming it."""
    from ponder.engine.spec import resolve_checkpoint

    if spec.startswith(("openai:", "vllm:")):
        return None
    if spec.startswith("hf:"):
        kind, path = "hf", Path(spec[3:]).expanduser()
        if not path.exists() and not path.is_absolute() and spec[3:].count("/") == 1:
            return None  # a hub id: its files live in the hub cache, named by the id
    elif spec.startswith("gguf:"):
        kind, path = "gguf", Path(spec[5:]).expanduser()
    else:
        kind, path = "ponder", resolve_checkpoint(spec)
    if not path.exists():
        raise UserError(f"model spec {spec!r}: no such file or directory {path}")
    files = [path] if path.is_file() else sorted(
        p for p in path.iterdir() if p.is_file() and (p.suffix in _IDENTITY_SUFFIXES or p.name in _IDENTITY_NAMES))
    return kind, files


def model_identity(spec: str, cache: ResponseCache | None) -> str:
    """The string a model's responses (and its system card) are keyed by: a sha256 over the
    bytes of the local files that make the model, or the spec itself where there are none.
    `cache` None hashes every byte again instead of trusting the memo (what serve does)."""
    found = identity_files(spec)
    if found is None:
        return spec
    kind, files = found
    digest = hashlib.sha256(kind.encode())
    for f in files:
        digest.update(f"{f.name}:{cache.file_sha256(f) if cache is not None else sha256_file(f)}\n".encode())
    return f"{kind}:{digest.hexdigest()}"


def cached_generate(engine: Engine, requests: Sequence[tuple[Sequence[Message], SamplingParams, int]],
                    cache: ResponseCache | None, model_id: str) -> tuple[list[Completion], int]:
    """Completions for (messages, params, sample-of-k index) requests, in order, and how many
    came from the cache. The misses go to the engine in ONE generate call, so they batch."""
    if cache is None:
        return engine.generate([m for m, _, _ in requests], [p for _, p, _ in requests]), 0
    keys = [cache_key(model_id, m, p, i) for m, p, i in requests]
    hits = cache.get_many(keys)
    missing = [j for j, key in enumerate(keys) if key not in hits]
    if missing:
        fresh = engine.generate([requests[j][0] for j in missing], [requests[j][1] for j in missing])
        new = {keys[j]: c for j, c in zip(missing, fresh)}
        cache.put_many(list(new.items()))
        hits.update(new)
    return [hits[key] for key in keys], len(requests) - len(missing)
