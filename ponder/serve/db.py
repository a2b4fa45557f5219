"""The server's one SQLite file: opening it, its schema, and the lock that guards writes.

Keys, rate-limit events and the usage ledger live in one file so a key, its quota and its bill
can never disagree after a crash. Autocommit plus WAL with synchronous=FULL means a write is on
disk when the call returns: the server can be SIGKILLed and the ledger holds exactly the
requests that completed. Schema migrations are left out until there is a second version.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ponder.errors import UserError

DEFAULT_DB: Path = Path(os.environ.get("PONDER_HOME", "~/.ponder")).expanduser() / "serve.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);

CREATE TABLE IF NOT EXISTS api_keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at    REAL NOT NULL,
    revoked_at    REAL,
    rpm           INTEGER,
    tpm           INTEGER,
    per_day       INTEGER,
    per_week      INTEGER
);

-- One row per admitted request (requests=1, tokens=0) or finished request (requests=0, tokens=n).
CREATE TABLE IF NOT EXISTS rate_events (
    key_id   TEXT NOT NULL,
    t        REAL NOT NULL,
    requests INTEGER NOT NULL,
    tokens   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_events_key_t ON rate_events (key_id, t);
CREATE INDEX IF NOT EXISTS rate_events_t ON rate_events (t);

CREATE TABLE IF NOT EXISTS usage (
    request_id        TEXT PRIMARY KEY,
    key_id            TEXT,
    model             TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    t                 REAL NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens  INTEGER NOT NULL,
    latency_s         REAL NOT NULL,
    cost              REAL NOT NULL,
    status            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_key_t ON usage (key_id, t);
"""


class ServeConnection(sqlite3.Connection):
    """A connection that carries the lock every store sharing it must hold to write.

    One lock per connection, not per store: an explicit transaction belongs to the connection,
    so a KeyStore write from another thread must not land inside a RateLimiter transaction.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.RLock()


def lock_for(conn: sqlite3.Connection) -> threading.RLock:
    """The connection's shared lock; a connection not made by connect() gets a private one."""
    return getattr(conn, "lock", None) or threading.RLock()


@contextmanager
def transaction(conn: sqlite3.Connection, lock: threading.RLock) -> Iterator[sqlite3.Connection]:
    """Hold the thread lock and an IMMEDIATE transaction, so a read-then-write (is there quota
    left? then take it) is atomic against other threads and other server processes alike."""
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (creating if needed) the serve database at `path`, ready for all the stores."""
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder for the serve database {path}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise UserError(f"serve database {path} is a folder; give a file path such as {path / 'serve.db'}")
    try:
        conn = sqlite3.connect(
            path, timeout=5.0, isolation_level=None, check_same_thread=False, factory=ServeConnection
        )
    except sqlite3.Error as exc:
        raise UserError(f"cannot open serve database {path}: {exc}") from None
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL, not WAL's usual NORMAL: a request that was answered must stay billed even
        # through a power cut, and one fsync per write is cheap next to generating tokens.
        conn.execute("PRAGMA synchronous = FULL")
        _ensure_schema(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise UserError(
            f"{path} is not a usable ponder serve database ({exc}); pass another path with --db"
        ) from None
    except UserError:
        conn.close()
        raise
    return conn


def _ensure_schema(conn: sqlite3.Connection) -> None:
    # One transaction, so two servers opening a new file at once insert one version row, not two.
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if row[0] is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise UserError(
                f"serve database schema version {row[0]} is newer than this ponder understands "
                f"({SCHEMA_VERSION}); upgrade ponder or use another --db"
            )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
