"""API keys: create, authenticate, list and revoke, with each key's rate limits and quotas.

Only the SHA-256 of a secret is stored: a copied database file lets nobody call the server.
A plain hash (no salt, no slow KDF) is enough because secrets are 256 random bits, not
passwords, and it keeps authentication a single indexed lookup. Enforcing the limits is
limits.py's job; changing a key's limits after creation is left out (revoke and create anew).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

from ponder.errors import UserError
from ponder.serve import db

SECRET_PREFIX = "pk-"
DISPLAY_CHARS = 10  # "pk-" plus 7 secret characters: enough to tell keys apart, useless to an attacker
_MIN_PARTIAL = 6  # a shorter partial id or prefix would match keys by accident


@dataclass(frozen=True)
class KeyLimits:
    """Per-key limits; None means unlimited. Every window is rolling, not calendar-aligned."""

    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # tokens per minute: prompt + completion, reasoning tokens included
    per_day: int | None = None  # requests in any rolling 24 h
    per_week: int | None = None  # requests in any rolling 7 days

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise UserError(f"key limit {f.name} must be a positive whole number or unset, got {value!r}")

    @property
    def unlimited(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def describe(self) -> str:
        """'rpm=3 per_week=50', or 'none' for an unlimited key."""
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name) is not None]
        return " ".join(parts) or "none"


@dataclass(frozen=True)
class ApiKey:
    id: str  # "key_" + 12 hex chars: the public identifier, safe to log
    name: str
    prefix: str  # first DISPLAY_CHARS of the secret, for telling keys apart in listings
    created_at: float
    revoked_at: float | None
    limits: KeyLimits

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


_COLUMNS = "id, name, prefix, created_at, revoked_at, rpm, tpm, per_day, per_week"


def _row_to_key(row: tuple) -> ApiKey:
    id_, name, prefix, created_at, revoked_at, rpm, tpm, per_day, per_week = row
    return ApiKey(id_, name, prefix, created_at, revoked_at, KeyLimits(rpm, tpm, per_day, per_week))


class KeyStore:
    """The api_keys table. Safe to share between threads; `conn` should come from db.connect."""

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], float] = time.time) -> None:
        self._conn = conn
        self._clock = clock
        self._lock = db.lock_for(conn)

    def create(self, name: str, limits: KeyLimits = KeyLimits()) -> tuple[str, ApiKey]:
        """A new key and its secret. The secret is returned here once and never stored."""
        name = name.strip() if isinstance(name, str) else name
        if not isinstance(name, str) or not name or not name.isprintable():
            raise UserError(f"key name must be non-empty printable text, got {name!r}")
        with db.transaction(self._conn, self._lock) as conn:
            clash = conn.execute(
                "SELECT id FROM api_keys WHERE name = ? AND revoked_at IS NULL", (name,)
            ).fetchone()
            if clash:
                raise UserError(f"an active key named {name!r} already exists ({clash[0]}); pick another name")
            secret = SECRET_PREFIX + secrets.token_urlsafe(32)
            key = ApiKey(
                id="key_" + secrets.token_hex(6), name=name, prefix=secret[:DISPLAY_CHARS],
                created_at=self._clock(), revoked_at=None, limits=limits,
            )
            conn.execute(
                f"INSERT INTO api_keys ({_COLUMNS}, secret_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key.id, key.name, key.prefix, key.created_at, None,
                 limits.rpm, limits.tpm, limits.per_day, limits.per_week, hash_secret(secret)),
            )
        return secret, key

    def authenticate(self, secret: str) -> ApiKey | None:
        """The active key with this secret, or None when it is unknown or revoked."""
        if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
            return None
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE secret_sha256 = ? AND revoked_at IS NULL",
                (hash_secret(secret),),
            ).fetchone()
        return _row_to_key(row) if row else None

    def get(self, key_id: str) -> ApiKey | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return _row_to_key(row) if row else None

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id").fetchall()
        return [_row_to_key(r) for r in rows]

    def revoke(self, id_or_prefix: str) -> ApiKey:
        """Revoke the one key whose id, display prefix or secret is (or starts with) `id_or_prefix`.

        Revoking a revoked key changes nothing and returns it, so a retried command is harmless.
        """
        with db.transaction(self._conn, self._lock) as conn:
            key = self._find(conn, id_or_prefix.strip())
            if key.revoked_at is None:
                now = self._clock()
                conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (now, key.id))
                key = ApiKey(key.id, key.name, key.prefix, key.created_at, now, key.limits)
        return key

    def find(self, id_or_prefix: str) -> ApiKey:
        """The one key matching like revoke() does; UserError when none or several match."""
        with self._lock:
            return self._find(self._conn, id_or_prefix.strip())

    def any_created(self) -> bool:
        """Has a key ever been made here? Revoked keys count: revoking the last key must lock
        the server, not open it to everyone."""
        with self._lock:
            return self._conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    def any_active(self) -> bool:
        with self._lock:
            return self._conn.execute("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1").fetchone() is not None

    def _find(self, conn: sqlite3.Connection, text: str) -> ApiKey:
        # The whole secret works too: someone revoking a leaked key often has only that at hand.
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE id = ? OR prefix = ? OR secret_sha256 = ?",
            (text, text, hash_secret(text)),
        ).fetchall()
        if not rows and len(text) >= _MIN_PARTIAL:
            # Partial matches only by a long enough start: "key_" or "pk-" alone would match every key.
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE substr(id, 1, ?) = ? OR substr(prefix, 1, ?) = ?",
                (len(text), text, len(text), text),
            ).fetchall()
        if not rows:
            raise UserError(
                f"no key with id or prefix {text!r}; `ponder keys list` shows them "
                f"(a partial id or prefix needs at least {_MIN_PARTIAL} characters)"
            )
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows)
            raise UserError(f"{text!r} matches {len(rows)} keys ({ids}); give a full key id")
        return _row_to_key(rows[0])
