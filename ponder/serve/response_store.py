"""Stored responses: what `previous_response_id` continues from and `GET /v1/responses/{id}` returns.

Each row keeps two things apart: the conversation the server continues from (which may hold the
hidden reasoning of assistant turns, so it never leaves the server) and the public response
object exactly as the client saw it. A response belongs to the API key that made it; any other
key is told it does not exist, so ids cannot be probed across keys.

Left out: expiry of old responses and `store: false` (the caller simply does not put()).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from ponder.serve.db import lock_for

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id           TEXT PRIMARY KEY,
    key_id       TEXT,
    created_at   REAL NOT NULL,
    model        TEXT NOT NULL,
    conversation TEXT NOT NULL,
    response     TEXT NOT NULL
)
"""
_COLUMNS = "id, key_id, created_at, model, conversation, response"


@dataclass(frozen=True)
class StoredResponse:
    id: str  # "resp_..."
    created_at: float  # unix seconds
    model: str
    # The full conversation to continue from, final assistant turn included:
    # [{"role": ..., "content": ...}, ...]; assistant turns may carry a hidden "reasoning" key.
    conversation: list[dict]
    response: dict  # the public response object as returned to the client, no hidden reasoning
    key_id: str | None  # the owner; None only when the server runs without keys


class ResponseStore:
    """Responses in the server's SQLite file, readable and deletable only by their owner."""

    def __init__(self, conn: sqlite3.Connection):
        # Each write must be on disk when put() returns; an implicit transaction left open by a
        # legacy-mode connection would hold it back until some later commit that may never come.
        if conn.isolation_level is not None and getattr(conn, "autocommit", None) is not True:
            raise ValueError("ResponseStore needs an autocommit connection (isolation_level=None)")
        self._conn = conn
        # The connection's own lock when it has one (db.connect): a write from this store must
        # not land inside another store's open transaction on the same connection.
        self._lock = lock_for(conn)
        with self._lock:
            conn.execute(_SCHEMA)

    def put(self, item: StoredResponse) -> None:
        """Store a new response; an id already stored raises sqlite3.IntegrityError (ids are
        minted by the server, so a clash is a bug, and overwriting would hide it)."""
        row = (
            item.id,
            item.key_id,
            item.created_at,
            item.model,
            json.dumps(item.conversation, ensure_ascii=False),
            json.dumps(item.response, ensure_ascii=False),
        )
        with self._lock:
            self._conn.execute(f"INSERT INTO responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", row)

    def get(self, response_id: str, key_id: str | None) -> StoredResponse | None:
        """The response if it exists and belongs to `key_id`; None otherwise (the same answer
        for both, so another key learns nothing)."""
        with self._lock:  # one shared connection: don't step a cursor mid-write from another thread
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM responses WHERE id = ? AND key_id IS ?", (response_id, key_id)
            ).fetchone()
        if row is None:
            return None
        rid, owner, created_at, model, conversation, response = row
        return StoredResponse(
            id=rid,
            created_at=created_at,
            model=model,
            conversation=json.loads(conversation),
            response=json.loads(response),
            key_id=owner,
        )

    def delete(self, response_id: str, key_id: str | None) -> bool:
        """Delete the response if `key_id` owns it; False when missing or someone else's."""
        with self._lock:
            cursor = self._conn.execute("DELETE FROM responses WHERE id = ? AND key_id IS ?", (response_id, key_id))
        return cursor.rowcount > 0
