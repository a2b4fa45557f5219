"""`ponder keys ...` and `ponder usage`, driven through argparse as the main CLI drives them."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from ponder.errors import UserError
from ponder.serve.accounts_cli import register
from ponder.serve.db import connect
from ponder.serve.keys import KeyLimits, KeyStore
from ponder.serve.ledger import Ledger


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "serve.db")


@pytest.fixture
def run(capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())

    def run(*argv: str) -> str:
        args = parser.parse_args(list(argv))
        assert args.func(args) == 0
        return capsys.readouterr().out

    return run


def call(*argv: str):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_create_prints_the_secret_once(run, db):
    out = run("keys", "create", "alice", "--rpm", "3", "--per-week", "50", "--db", db)
    secret = re.search(r"^(pk-\S+)$", out, re.M).group(1)
    assert "will not be shown again" in out and "rpm=3 per_week=50" in out
    conn = connect(db)
    key = KeyStore(conn).authenticate(secret)
    conn.close()
    assert key.name == "alice" and key.limits == KeyLimits(rpm=3, per_week=50)
    assert secret not in run("keys", "list", "--db", db)


def test_list_shows_every_key_as_a_table(run, db):
    assert "no keys yet" in run("keys", "list", "--db", db)
    run("keys", "create", "alice", "--tpm", "1000", "--db", db)
    run("keys", "create", "bob", "--db", db)
    lines = run("keys", "list", "--db", db).splitlines()
    assert lines[0].split() == ["id", "name", "prefix", "created", "(UTC)", "revoked", "(UTC)", "limits"]
    assert len(lines) == 3
    assert re.match(r"key_[0-9a-f]{12}\s+alice\s+pk-\S{7}\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+-\s+tpm=1000$", lines[1])
    assert lines[2].split()[1] == "bob" and lines[2].endswith("none")


def test_revoke_by_prefix_then_again(run, db):
    out = run("keys", "create", "alice", "--db", db)
    prefix = re.search(r"^(pk-\S+)$", out, re.M).group(1)[:10]
    out = run("keys", "revoke", prefix, "--db", db)
    assert out.startswith("revoked key_") and "alice" in out
    assert "already revoked" in run("keys", "revoke", prefix, "--db", db)
    row = run("keys", "list", "--db", db).splitlines()[1]
    assert re.search(r"\d\d:\d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+none$", row)  # revoked: a date
    conn = connect(db)
    assert not KeyStore(conn).any_active()
    conn.close()


def test_usage_report(run, db):
    assert "no usage recorded yet" in run("usage", "--db", db)
    conn = connect(db)
    key = KeyStore(conn).create("alice")[1]
    ledger = Ledger(conn)
    ledger.record("r1", key.id, "default", "/v1/chat/completions", 10, 20, 15, 0.5)
    ledger.record("r2", key.id, "other", "/v1/chat/completions", 1, 2, 0, 1.5)
    ledger.record("r3", None, "default", "/v1/responses", 3, 4, 1, 1.0)
    conn.close()

    lines = run("usage", "--db", db).splitlines()
    head = ["key", "name", "requests", "prompt", "completion", "reasoning", "cost", "mean", "latency"]
    assert lines[0].split() == head
    assert lines[1].split()[:3] == ["(no", "key)", "-"]
    assert lines[2].split()[:6] == [key.id, "alice", "2", "11", "22", "15"]
    assert lines[2].split()[-1] == "1.000s"

    by_model = json.loads(run("usage", "--by", "model", "--json", "--db", db))
    summary = [(r["group"], r["requests"], r["reasoning_tokens"]) for r in by_model]
    assert summary == [("default", 2, 16), ("other", 1, 0)]
    only_alice = json.loads(run("usage", "--key", "alice", "--by", "model", "--json", "--db", db))
    assert [(r["group"], r["requests"]) for r in only_alice] == [("default", 1), ("other", 1)]
    assert run("usage", "--by", "day", "--db", db).startswith("day (UTC)")


def test_revoking_an_unknown_key_names_it(run, db):
    run("keys", "create", "alice", "--db", db)
    with pytest.raises(UserError, match="key_000000000000"):
        call("keys", "revoke", "key_000000000000", "--db", db)


@pytest.mark.parametrize("flag, field", [("--rpm", "rpm"), ("--tpm", "tpm"), ("--per-day", "per_day"),
                                         ("--per-week", "per_week")])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_non_positive_limits_are_refused(db, flag, field, value):
    with pytest.raises(UserError, match=field):
        call("keys", "create", "alice", flag, value, "--db", db)
    conn = connect(db)
    assert KeyStore(conn).list() == []
    conn.close()


def test_unknown_usage_key_is_refused(db):
    with pytest.raises(UserError, match="carol"):
        call("usage", "--key", "carol", "--db", db)


@pytest.mark.parametrize("argv", [["keys", "list"], ["keys", "create", "x"], ["keys", "revoke", "key_x"], ["usage"]])
def test_a_text_file_as_db_is_refused(tmp_path, argv):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    with pytest.raises(UserError, match=re.escape(str(path))):
        call(*argv, "--db", str(path))
    assert path.read_text() == "not a database\n" * 100
