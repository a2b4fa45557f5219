"""Rate limits and quotas per key: rolling windows over events stored in SQLite.

Every window rolls (the last 60 s, 24 h, 7 days), so there is no burst at a calendar boundary,
and the events live in the database, so a restart forgives nothing. The check and the taking of
a request happen in one IMMEDIATE transaction, so concurrent requests, from threads or from
several server processes, can never admit more than the limit.

Tokens are known only when a request finishes, so admission reserves the most the request can
spend (its prompt plus its completion bound, for every sample it may draw), as OpenAI's limiter
counts max_tokens; when it ends, `settle` replaces the reservation with what was really spent,
and `release` takes back a request that never ran. A burst of concurrent requests therefore
cannot take more than tpm in any minute: each one's reservation is counted as soon as it is
admitted. Limits per model are left out.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ponder.serve import db
from ponder.serve.keys import ApiKey, KeyLimits

MINUTE, DAY, WEEK = 60.0, 86_400.0, 7 * 86_400.0
PRUNE_EVERY = 3_600.0  # seconds of clock time between deletions of events older than a week


# The names of the limits, as a refusal names the one that was exhausted (the 429's `type`).
REQUESTS, TOKENS, REQUESTS_PER_DAY, REQUESTS_PER_WEEK = "requests", "tokens", "requests_per_day", "requests_per_week"


@dataclass(frozen=True)
class LimitDecision:
    allowed: bool
    reason: str | None  # for people, when refused: which limit, and when to try again
    # OpenAI's x-ratelimit-* trios (requests from rpm, tokens from tpm; a trio is left out when
    # its limit is unset), plus retry-after in whole seconds and x-ratelimit-exhausted when refused.
    headers: dict[str, str] = field(default_factory=dict)
    limit: str | None = None  # when refused: the limit that must free up first (REQUESTS, TOKENS, ...)
    reservation: int | None = None  # when admitted: the event to settle or release afterwards


def format_reset(seconds: float) -> str:
    """A duration the way OpenAI's reset headers write it: "20ms", "1s", "6m0s", "1h2m3s"."""
    seconds = round(seconds, 6)  # float noise must not turn 12 s into "13s"
    if seconds <= 0:
        return "0s"
    if math.ceil(seconds * 1000) < 1000:
        return f"{math.ceil(seconds * 1000)}ms"
    hours, rest = divmod(math.ceil(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(round(seconds, 6))))


class RateLimiter:
    """Admits or refuses a key's requests. Safe to share between threads."""

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], float] = time.time) -> None:
        self._conn = conn
        self._clock = clock
        self._lock = db.lock_for(conn)
        self._last_prune = -math.inf

    def admit(self, key: ApiKey, estimated_tokens: int = 0) -> LimitDecision:
        """Take one request and reserve `estimated_tokens` (the most it may spend) from `key`'s
        allowance now, or refuse without taking anything."""
        return self._decide(key, estimated_tokens, take=True)

    def check(self, key: ApiKey) -> LimitDecision:
        """Would a request with no tokens be admitted now? Takes nothing: the cheap test a
        server makes before it spends time reading and tokenizing a prompt."""
        return self._decide(key, 0, take=False)

    def settle(self, reservation: int, tokens: int) -> None:
        """Replace an admitted request's reservation with the tokens it really spent (prompt +
        completion, every sample), which count against tpm from its admission on."""
        _check_count("tokens", tokens)
        with db.transaction(self._conn, self._lock) as conn:
            conn.execute("UPDATE rate_events SET tokens = ? WHERE rowid = ?", (tokens, reservation))

    def release(self, reservation: int) -> None:
        """Give back an admitted request that never ran (it failed before generating anything):
        neither the request nor its tokens count."""
        with db.transaction(self._conn, self._lock) as conn:
            conn.execute("DELETE FROM rate_events WHERE rowid = ?", (reservation,))

    def _decide(self, key: ApiKey, estimated_tokens: int, take: bool) -> LimitDecision:
        _check_count("estimated_tokens", estimated_tokens)
        lim = key.limits
        with db.transaction(self._conn, self._lock) as conn:
            now = self._clock()
            self._maybe_prune(conn, now)
            req_min, tok_min, req_day, req_week, oldest_req, oldest_tok = conn.execute(
                """SELECT
                     COALESCE(SUM(CASE WHEN t > :minute THEN requests END), 0),
                     COALESCE(SUM(CASE WHEN t > :minute THEN tokens END), 0),
                     COALESCE(SUM(CASE WHEN t > :day THEN requests END), 0),
                     COALESCE(SUM(requests), 0),
                     MIN(CASE WHEN t > :minute AND requests > 0 THEN t END),
                     MIN(CASE WHEN t > :minute AND tokens > 0 THEN t END)
                   FROM rate_events WHERE key_id = :key AND t > :week""",
                {"minute": now - MINUTE, "day": now - DAY, "week": now - WEEK, "key": key.id},
            ).fetchone()
            used = _Used(req_min, tok_min, req_day, req_week)
            refusals = self._refusals(conn, key, now, estimated_tokens, used)
            if refusals:
                wait, reason, limit = max(refusals)  # the request must wait for the slowest limit to free up
                headers = _headers(lim, used, _reset(oldest_req, now), _reset(oldest_tok, now))
                return LimitDecision(False, reason, {**headers, "retry-after": retry_after(wait),
                                                     "x-ratelimit-exhausted": limit}, limit)
            if not take:
                return LimitDecision(True, None, {})
            cursor = conn.execute("INSERT INTO rate_events (key_id, t, requests, tokens) VALUES (?, ?, 1, ?)",
                                  (key.id, now, estimated_tokens))
        oldest_req = now if oldest_req is None else oldest_req
        if estimated_tokens and oldest_tok is None:
            oldest_tok = now
        taken = _Used(req_min + 1, tok_min + estimated_tokens, req_day + 1, req_week + 1)
        headers = _headers(lim, taken, _reset(oldest_req, now), _reset(oldest_tok, now))
        return LimitDecision(True, None, headers, reservation=cursor.lastrowid)

    def _refusals(self, conn: sqlite3.Connection, key: ApiKey, now: float, estimated: int,
                  used: "_Used") -> list[tuple[float, str, str]]:
        """(seconds until this limit would admit the request, message, limit) per limit it breaks."""
        lim, out = key.limits, []

        def wait(window: float, column: str, need: int) -> float:
            return _wait(conn, key.id, now, window, column, need)

        if lim.rpm is not None and used.requests + 1 > lim.rpm:
            w = wait(MINUTE, "requests", used.requests + 1 - lim.rpm)
            out.append((w, f"rate limit reached for requests: {lim.rpm} per minute; try again in {format_reset(w)}",
                        REQUESTS))
        if lim.tpm is not None and estimated > lim.tpm:
            out.append((MINUTE, (
                f"request too large: up to {estimated} tokens (prompt plus max_completion_tokens for every "
                f"sample), more than this key's limit of {lim.tpm} tokens per minute; ask for fewer tokens "
                f"(a shorter prompt, a smaller max_completion_tokens, fewer samples)"
            ), TOKENS))
        elif lim.tpm is not None and used.tokens + estimated > lim.tpm:
            w = wait(MINUTE, "tokens", used.tokens + estimated - lim.tpm)
            out.append((w, (
                f"rate limit reached for tokens: {lim.tpm} per minute, {used.tokens} used or reserved in the last "
                f"minute and up to {estimated} requested; try again in {format_reset(w)}"
            ), TOKENS))
        if lim.per_day is not None and used.day + 1 > lim.per_day:
            w = wait(DAY, "requests", used.day + 1 - lim.per_day)
            out.append((w, f"daily quota of {lim.per_day} requests used up (rolling 24 h); "
                           f"try again in {format_reset(w)}", REQUESTS_PER_DAY))
        if lim.per_week is not None and used.week + 1 > lim.per_week:
            w = wait(WEEK, "requests", used.week + 1 - lim.per_week)
            out.append((w, f"weekly quota of {lim.per_week} requests used up (rolling 7 days); "
                           f"try again in {format_reset(w)}", REQUESTS_PER_WEEK))
        return out

    def _maybe_prune(self, conn: sqlite3.Connection, now: float) -> None:
        # Hourly, not per request: the delete scans by time, and a week-old event only costs space.
        if now - self._last_prune >= PRUNE_EVERY:
            conn.execute("DELETE FROM rate_events WHERE t <= ?", (now - WEEK,))
            self._last_prune = now


def _wait(conn: sqlite3.Connection, key_id: str, now: float, window: float, column: str, need: int) -> float:
    """Seconds until `need` units of `column` have left the window: the oldest events go first,
    so it is when the event that brings the running total to `need` turns `window` old."""
    assert column in ("requests", "tokens")
    row = conn.execute(
        f"""SELECT t FROM (
              SELECT t, SUM({column}) OVER (ORDER BY t, rowid ROWS UNBOUNDED PRECEDING) AS total
              FROM rate_events WHERE key_id = ? AND t > ? AND {column} > 0)
            WHERE total >= ? ORDER BY t LIMIT 1""",
        (key_id, now - window, need),
    ).fetchone()
    return window if row is None else max(0.0, row[0] + window - now)


def _reset(oldest: float | None, now: float) -> float:
    """Seconds until the oldest event in the minute window leaves it, i.e. until `remaining` next
    rises; 0 when the window is empty (the limit is already in its initial state)."""
    return 0.0 if oldest is None else max(0.0, oldest + MINUTE - now)


@dataclass(frozen=True)
class _Used:
    """A key's usage in each window: requests and tokens in the minute, requests in 24 h and 7 days."""

    requests: int
    tokens: int
    day: int
    week: int


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def _headers(lim: KeyLimits, used: _Used, reset_requests: float, reset_tokens: float) -> dict[str, str]:
    """OpenAI's trios for rpm and tpm, and ponder's for the rolling day and week quotas (their
    reset is left out: it needs a scan of the window, and retry-after gives it when refused)."""
    headers: dict[str, str] = {}
    if lim.rpm is not None:
        headers["x-ratelimit-limit-requests"] = str(lim.rpm)
        headers["x-ratelimit-remaining-requests"] = str(max(0, lim.rpm - used.requests))
        headers["x-ratelimit-reset-requests"] = format_reset(reset_requests)
    if lim.tpm is not None:
        headers["x-ratelimit-limit-tokens"] = str(lim.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, lim.tpm - used.tokens))
        headers["x-ratelimit-reset-tokens"] = format_reset(reset_tokens)
    for limit, count, suffix in ((lim.per_day, used.day, "day"), (lim.per_week, used.week, "week")):
        if limit is not None:
            headers[f"x-ratelimit-limit-requests-{suffix}"] = str(limit)
            headers[f"x-ratelimit-remaining-requests-{suffix}"] = str(max(0, limit - count))
    return headers
