"""API keys and the database file they live in: hashing, revocation, validation, WAL, persistence."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys

import pytest

from ponder.errors import UserError
from ponder.serve import keys as keys_module
from ponder.serve.db import SCHEMA_VERSION, connect
from ponder.serve.keys import KeyLimits, KeyStore

from tests.serve.fake_clock import FakeClock


def Clock(t: float = 1_700_000_000.0) -> FakeClock:
    return FakeClock(t)

@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "serve.db"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(db_path, clock):
    conn = connect(db_path)
    yield KeyStore(conn, clock=clock)
    conn.close()


def test_create_returns_a_secret_that_authenticates(store):
    secret, key = store.create("alice", KeyLimits(rpm=3))
    assert re.fullmatch(r"pk-[A-Za-z0-9_-]{43}", secret)
    assert re.fullmatch(r"key_[0-9a-f]{12}", key.id)
    assert key.prefix == secret[:10] and key.name == "alice" and key.active
    assert key.created_at == 1_700_000_000.0 and key.limits == KeyLimits(rpm=3)
    assert store.authenticate(secret) == key


@pytest.mark.parametrize("wrong", ["", "pk-", "pk-nope", "sk-whatever", "x" * 200])
def test_unknown_secrets_do_not_authenticate(store, wrong):
    secret, _ = store.create("alice")
    assert store.authenticate(wrong) is None
    assert store.authenticate(secret[:-1]) is None


def test_only_the_hash_of_the_secret_reaches_the_disk(db_path, store):
    secrets = [store.create(f"user{i}")[0] for i in range(5)]
    files = [p for p in db_path.parent.iterdir() if p.name.startswith("serve.db")]
    data = b"".join(p.read_bytes() for p in files)
    assert data and files
    for secret in secrets:
        assert secret.encode() not in data
        assert secret[3:].encode() not in data  # not even without its "pk-"
        assert keys_module.hash_secret(secret).encode() in data


def test_revoked_key_stops_authenticating(store):
    secret, key = store.create("alice")
    assert store.any_active()
    revoked = store.revoke(key.id)
    assert revoked.revoked_at == 1_700_000_000.0 and not revoked.active
    assert store.authenticate(secret) is None
    assert not store.any_active()
    assert store.list() == [revoked]


def test_revoke_by_prefix_partial_id_or_whole_secret(store):
    secrets_and_keys = [store.create(f"k{i}") for i in range(3)]
    (s0, k0), (s1, k1), (s2, k2) = secrets_and_keys
    assert store.revoke(k0.prefix).id == k0.id
    assert store.revoke(k1.id[:8]).id == k1.id
    assert store.revoke(s2).id == k2.id
    assert not store.any_active()


def test_revoking_twice_is_harmless(store, clock):
    _, key = store.create("alice")
    first = store.revoke(key.id)
    clock.t += 100
    assert store.revoke(key.id) == first


def test_revoke_unknown_names_it(store):
    store.create("alice")
    with pytest.raises(UserError, match="key_doesnotexist"):
        store.revoke("key_doesnotexist")
    with pytest.raises(UserError, match="'key_'"):  # too short to be a partial match
        store.revoke("key_")


def test_revoke_ambiguous_lists_the_matches(store, monkeypatch):
    ids = iter(["abcdef000001", "abcdef000002"])
    monkeypatch.setattr(keys_module.secrets, "token_hex", lambda n: next(ids))
    store.create("a")
    store.create("b")
    with pytest.raises(UserError, match="matches 2 keys.*key_abcdef000001.*key_abcdef000002"):
        store.revoke("key_abcdef")
    assert store.any_active()


@pytest.mark.parametrize("field", ["rpm", "tpm", "per_day", "per_week"])
@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_limits_must_be_positive_ints(field, bad):
    with pytest.raises(UserError, match=field):
        KeyLimits(**{field: bad})


def test_limits_describe():
    assert KeyLimits().describe() == "none" and KeyLimits().unlimited
    assert KeyLimits(rpm=3, per_week=50).describe() == "rpm=3 per_week=50"


def test_names_are_unique_among_active_keys(store):
    _, first = store.create("alice")
    with pytest.raises(UserError, match="alice"):
        store.create("alice")
    store.revoke(first.id)
    _, second = store.create("alice")  # rotation: revoke, then create under the same name
    assert {k.id for k in store.list()} == {first.id, second.id}
    assert store.find(second.id).active and not store.find(first.id).active


@pytest.mark.parametrize("bad", ["", "   ", "a\nb"])
def test_bad_names_are_refused(store, bad):
    with pytest.raises(UserError, match="name"):
        store.create(bad)


def test_keys_survive_a_reconnect(db_path):
    conn = connect(db_path)
    secret, key = KeyStore(conn).create("alice", KeyLimits(tpm=1000, per_day=10))
    conn.close()
    conn = connect(db_path)
    assert KeyStore(conn).authenticate(secret) == key
    conn.close()


def test_connection_settings(db_path):
    conn = connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert conn.isolation_level is None
    conn.close()
    plain = sqlite3.connect(db_path)  # WAL is a property of the file, so any reader sees it
    assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    plain.close()


def test_schema_is_created_once(tmp_path):
    path = tmp_path / "deep" / "er" / "serve.db"  # parent folders are made
    for _ in range(3):
        connect(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"api_keys", "rate_events", "usage", "schema_version"} <= tables
    conn.close()


def test_a_text_file_is_not_a_database(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 50)
    with pytest.raises(UserError, match=re.escape(str(path))):
        connect(path)
    assert path.read_text().startswith("these are my notes")


def test_a_folder_is_not_a_database(tmp_path):
    with pytest.raises(UserError, match="folder"):
        connect(tmp_path)


def test_a_newer_schema_is_refused(db_path):
    connect(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="newer"):
        connect(db_path)


def test_default_db_follows_ponder_home(tmp_path):
    env = {**os.environ, "PONDER_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-c", "from ponder.serve.db import DEFAULT_DB; print(DEFAULT_DB)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert out == str(tmp_path / "home" / "serve.db")
