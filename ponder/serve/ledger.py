"""The usage ledger: one row per served request, with its tokens, latency and cost, and reports.

Reasoning tokens are hidden from the user but billed: they are part of completion_tokens and
priced as output. A row's cost is computed when it is recorded and stored, so a later change of
prices re-bills nothing. Invoicing and currencies are left out; cost is in whatever unit the
price table uses.
"""

from __future__ import annotations

import math
import sqlite3
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from ponder.errors import UserError
from ponder.serve import db

DEFAULT_MODEL = "*"  # the price table entry used for any model without its own


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float  # reasoning tokens are billed here: they are completion tokens

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UserError(f"{f.name} must be a number of at least 0, got {value!r}")


class PriceTable:
    """Prices per model name, with a default for models not listed."""

    def __init__(self, prices: dict[str, Price], default: Price = Price(0.0, 0.0)) -> None:
        self.prices = dict(prices)
        self.default = default

    @classmethod
    def from_toml(cls, path: Path) -> PriceTable:
        """Read `[models."NAME"]` tables with input_per_million and output_per_million;
        the entry named "*" prices every model not listed."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"cannot read price table {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"price table {path} is not valid TOML: {exc}") from None
        extra = sorted(set(data) - {"models"})
        if extra:
            raise UserError(
                f"price table {path}: unknown top-level key {extra[0]!r}; only [models.NAME] tables go here"
            )
        models = data.get("models")
        if not isinstance(models, dict) or not models:
            raise UserError(f'price table {path}: no [models."NAME"] tables; add one, or [models."*"] for all models')
        prices = {name: _read_price(path, name, entry) for name, entry in models.items()}
        default = prices.pop(DEFAULT_MODEL, Price(0.0, 0.0))
        return cls(prices, default)

    def price(self, model: str) -> Price:
        return self.prices.get(model, self.default)

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        p = self.price(model)
        return (prompt_tokens * p.input_per_million + completion_tokens * p.output_per_million) / 1_000_000


def _read_price(path: Path, name: str, entry: object) -> Price:
    where = f"price table {path}: models.{name!r}"
    if not isinstance(entry, dict):
        raise UserError(f"{where} must be a table with input_per_million and output_per_million")
    known = {f.name for f in fields(Price)}
    for field_name in entry:
        if field_name not in known:
            raise UserError(f"{where}: unknown field {field_name!r}; valid: {', '.join(sorted(known))}")
    for field_name in sorted(known - set(entry)):
        raise UserError(f"{where}: missing field {field_name!r}")
    try:
        return Price(**entry)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class UsageRow:
    """One request."""

    request_id: str
    key_id: str | None  # None when the server runs without keys
    model: str
    endpoint: str  # e.g. "/v1/chat/completions"
    t: float  # when it was recorded (the request finished), seconds since the epoch
    prompt_tokens: int
    completion_tokens: int  # reasoning tokens included
    reasoning_tokens: int
    latency_s: float
    cost: float
    status: str  # "completed", or how it ended otherwise ("cancelled", "error", ...)


_COLUMNS = ", ".join(f.name for f in fields(UsageRow))
_GROUPS = {
    "key": "u.key_id",
    "day": "strftime('%Y-%m-%d', u.t, 'unixepoch')",  # UTC, so a report reads the same anywhere
    "model": "u.model",
}


class Ledger:
    """The usage table. Safe to share between threads; `conn` should come from db.connect."""

    def __init__(
        self, conn: sqlite3.Connection, prices: PriceTable = PriceTable({}), clock: Callable[[], float] = time.time
    ) -> None:
        self._conn = conn
        self._prices = prices
        self._clock = clock
        self._lock = db.lock_for(conn)

    def record(
        self, request_id: str, key_id: str | None, model: str, endpoint: str, prompt_tokens: int,
        completion_tokens: int, reasoning_tokens: int, latency_s: float, status: str = "completed",
    ) -> UsageRow:
        """Write one request's row. A request id already in the ledger raises ValueError: billing
        a request twice is a bug in the caller, never something to paper over."""
        counts = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "reasoning_tokens": reasoning_tokens}
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if reasoning_tokens > completion_tokens:
            raise ValueError(
                f"reasoning_tokens ({reasoning_tokens}) cannot exceed completion_tokens ({completion_tokens}), "
                "which include them"
            )
        if not math.isfinite(latency_s) or latency_s < 0:
            raise ValueError(f"latency_s must be a finite number of at least 0, got {latency_s!r}")
        row = UsageRow(
            request_id, key_id, model, endpoint, self._clock(), prompt_tokens, completion_tokens,
            reasoning_tokens, float(latency_s), self._prices.cost(model, prompt_tokens, completion_tokens), status,
        )
        try:
            with db.transaction(self._conn, self._lock) as conn:
                conn.execute(f"INSERT INTO usage ({_COLUMNS}) VALUES ({', '.join('?' * len(fields(row)))})",
                             tuple(getattr(row, f.name) for f in fields(row)))
        except sqlite3.IntegrityError:
            raise ValueError(f"request {request_id!r} is already in the ledger") from None
        return row

    def rows(self, key: str | None = None) -> list[UsageRow]:
        """Every row, oldest first; `key` (a key id or name) keeps that key's rows only."""
        where, params = self._key_filter(key)
        with self._lock:
            found = self._conn.execute(
                f"SELECT {_COLUMNS} FROM usage u {where} ORDER BY u.t, u.request_id", params
            ).fetchall()
        return [UsageRow(*r) for r in found]

    def report(self, key: str | None = None, by: Literal["key", "day", "model"] = "key") -> list[dict]:
        """Totals per key, UTC day or model: dicts with group, requests, prompt_tokens,
        completion_tokens, reasoning_tokens, cost and mean_latency_s (by key also the key's name)."""
        if by not in _GROUPS:
            raise UserError(f"cannot group usage by {by!r}; valid: {', '.join(_GROUPS)}")
        where, params = self._key_filter(key)
        with self._lock:
            found = self._conn.execute(
                f"""SELECT {_GROUPS[by]} AS grp, MAX(k.name), COUNT(*), SUM(u.prompt_tokens),
                           SUM(u.completion_tokens), SUM(u.reasoning_tokens), SUM(u.cost), AVG(u.latency_s)
                    FROM usage u LEFT JOIN api_keys k ON k.id = u.key_id {where}
                    GROUP BY grp ORDER BY grp""",
                params,
            ).fetchall()
        out = []  # rounded: summing floats in SQL leaves noise like 0.0049999999999999975
        for grp, name, requests, prompt, completion, reasoning, cost, latency in found:
            item: dict = {"group": grp}
            if by == "key":
                item["name"] = name
            item.update(requests=requests, prompt_tokens=prompt, completion_tokens=completion,
                        reasoning_tokens=reasoning, cost=round(cost, 12), mean_latency_s=round(latency, 6))
            out.append(item)
        return out

    def _key_filter(self, key: str | None) -> tuple[str, tuple]:
        if key is None:
            return "", ()
        with self._lock:
            known = self._conn.execute(
                "SELECT 1 FROM api_keys WHERE id = ? OR name = ? "
                "UNION ALL SELECT 1 FROM usage WHERE key_id = ? LIMIT 1",
                (key, key, key),
            ).fetchone()
        if known is None:
            raise UserError(f"no key with id or name {key!r}; `ponder keys list` shows them")
        # A name may belong to several keys over time (one revoked, its replacement active): all count.
        return "WHERE u.key_id = ? OR u.key_id IN (SELECT id FROM api_keys WHERE name = ?)", (key, key)
