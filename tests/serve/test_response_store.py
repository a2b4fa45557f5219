"""Stored responses: round trip, owner isolation, delete, and survival across a reconnect."""

import sqlite3
import threading

import pytest

from ponder.serve import db
from ponder.serve.response_store import ResponseStore, StoredResponse


def open_conn(path):
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


def item(rid="resp_1", key_id="key_a", **kw) -> StoredResponse:
    base = dict(
        id=rid,
        created_at=1_700_000_000.25,
        model="ponder-tiny",
        conversation=[
            {"role": "user", "content": "What is 347 * 29?"},
            {"role": "assistant", "content": "10063", "reasoning": "347 * 9 = 3123 ..."},
        ],
        response={"id": rid, "object": "response", "output_text": "10063", "usage": {"output_tokens": 40}},
        key_id=key_id,
    )
    return StoredResponse(**{**base, **kw})


@pytest.fixture
def store(tmp_path):
    conn = open_conn(tmp_path / "serve.db")
    yield ResponseStore(conn)
    conn.close()


def test_round_trip(store):
    store.put(item())
    assert store.get("resp_1", "key_a") == item()
    assert store.get("resp_missing", "key_a") is None


def test_another_key_cannot_read_or_delete(store):
    store.put(item())
    assert store.get("resp_1", "key_b") is None
    assert store.get("resp_1", None) is None  # no key is not a master key
    assert store.delete("resp_1", "key_b") is False
    assert store.get("resp_1", "key_a") == item()


def test_keyless_responses_belong_to_no_key(store):
    store.put(item("resp_open", key_id=None))
    assert store.get("resp_open", None) == item("resp_open", key_id=None)
    assert store.get("resp_open", "key_a") is None


def test_delete(store):
    store.put(item())
    assert store.delete("resp_1", "key_a") is True
    assert store.get("resp_1", "key_a") is None
    assert store.delete("resp_1", "key_a") is False


def test_a_duplicate_id_is_refused_not_overwritten(store):
    store.put(item())
    with pytest.raises(sqlite3.IntegrityError):
        store.put(item(model="other"))
    assert store.get("resp_1", "key_a").model == "ponder-tiny"


def test_persists_across_reconnect(tmp_path):
    path = tmp_path / "serve.db"
    conn = open_conn(path)
    ResponseStore(conn).put(item())
    conn.close()
    conn = open_conn(path)
    assert ResponseStore(conn).get("resp_1", "key_a") == item()  # table made again IF NOT EXISTS
    conn.close()


def test_json_with_unicode_and_nesting(tmp_path):
    path = tmp_path / "serve.db"
    odd = item(
        conversation=[{"role": "user", "content": "Ünïcødé ✓ 日本語 🤔 \"quotes\" \\ \n\u2028"}],
        response={"output": [{"content": [{"text": "ça va — 🙂", "n": None, "ok": True, "x": 1.5}]}]},
    )
    conn = open_conn(path)
    ResponseStore(conn).put(odd)
    conn.close()
    conn = open_conn(path)
    assert ResponseStore(conn).get("resp_1", "key_a") == odd
    conn.close()


def test_the_public_response_is_stored_apart_from_hidden_reasoning(store):
    store.put(item())
    got = store.get("resp_1", "key_a")
    assert "reasoning" not in str(got.response)
    assert got.conversation[-1]["reasoning"] == "347 * 9 = 3123 ..."


def test_refuses_a_connection_that_would_not_commit(tmp_path):
    conn = sqlite3.connect(tmp_path / "serve.db")  # legacy implicit transactions
    with pytest.raises(ValueError, match="autocommit"):
        ResponseStore(conn)
    conn.close()


def test_shares_the_serve_database_and_its_lock(tmp_path):
    conn = db.connect(tmp_path / "serve.db")
    store = ResponseStore(conn)
    assert store._lock is conn.lock
    store.put(item())
    assert store.get("resp_1", "key_a") == item()
    conn.close()


def test_concurrent_puts_from_threads(tmp_path):
    conn = open_conn(tmp_path / "serve.db")
    store = ResponseStore(conn)

    def worker(t):
        for i in range(25):
            store.put(item(f"resp_{t}_{i}", key_id=f"key_{t}"))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 100
    assert store.get("resp_3_24", "key_3") == item("resp_3_24", key_id="key_3")
    conn.close()
