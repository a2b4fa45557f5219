"""The usage ledger: one row per request, cost arithmetic, reports, price tables, durability."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from ponder.errors import UserError
from ponder.serve.db import connect
from ponder.serve.keys import KeyStore
from ponder.serve.ledger import Ledger, Price, PriceTable, UsageRow

from tests.serve.fake_clock import FakeClock

MIDNIGHT = 1_700_006_400.0  # 2023-11-15 00:00:00 UTC


def Clock(t: float = MIDNIGHT + 3600) -> FakeClock:
    return FakeClock(t)

PRICES = PriceTable({"big": Price(2.0, 8.0)}, default=Price(1.0, 4.0))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def ledger(conn, clock):
    return Ledger(conn, PRICES, clock=clock)


def test_record_returns_and_stores_the_row(ledger, clock):
    row = ledger.record("req_1", "key_a", "big", "/v1/chat/completions", 1000, 500, 300, 0.25)
    assert row == UsageRow("req_1", "key_a", "big", "/v1/chat/completions", clock.t, 1000, 500, 300, 0.25,
                           pytest.approx(2000 / 1e6 + 4000 / 1e6), "completed")
    assert ledger.rows() == [row]


def test_reasoning_is_billed_as_output(ledger):
    # Same completion size, different split between reasoning and answer: same cost.
    a = ledger.record("r1", None, "small", "/v1/responses", 100, 1000, 900, 0.1)
    b = ledger.record("r2", None, "small", "/v1/responses", 100, 1000, 0, 0.1)
    assert a.cost == b.cost == pytest.approx((100 * 1.0 + 1000 * 4.0) / 1e6)


def test_cost_arithmetic():
    table = PriceTable({"m": Price(0.15, 0.6)})
    assert table.cost("m", 1_000_000, 0) == pytest.approx(0.15)
    assert table.cost("m", 0, 2_000_000) == pytest.approx(1.2)
    assert table.cost("m", 123, 456) == pytest.approx((123 * 0.15 + 456 * 0.6) / 1e6)
    assert table.cost("other", 10**6, 10**6) == 0.0  # no default given: free


def test_a_request_id_is_recorded_once(ledger):
    ledger.record("req_1", "key_a", "big", "/v1/chat/completions", 1, 1, 0, 0.1)
    with pytest.raises(ValueError, match="req_1"):
        ledger.record("req_1", "key_a", "big", "/v1/chat/completions", 999, 999, 0, 0.1)
    assert len(ledger.rows()) == 1 and ledger.rows()[0].prompt_tokens == 1


@pytest.mark.parametrize("counts", [(-1, 0, 0), (0, -1, 0), (0, 5, 6), (1.5, 0, 0), (True, 0, 0)])
def test_bad_counts_are_bugs(ledger, counts):
    with pytest.raises(ValueError):
        ledger.record("r", None, "m", "/v1/chat/completions", *counts, 0.1)
    assert ledger.rows() == []


def test_rows_by_key_id_or_name(conn, clock, ledger):
    store = KeyStore(conn, clock=clock)
    old = store.create("alice")[1]
    store.revoke(old.id)
    new = store.create("alice")[1]
    bob = store.create("bob")[1]
    for i, key in enumerate([old, new, bob, new]):
        ledger.record(f"r{i}", key.id, "m", "/v1/chat/completions", 1, 1, 0, 0.1)
    assert [r.request_id for r in ledger.rows("alice")] == ["r0", "r1", "r3"]  # a name spans rotations
    assert [r.request_id for r in ledger.rows(new.id)] == ["r1", "r3"]
    assert [r.request_id for r in ledger.rows("bob")] == ["r2"]
    with pytest.raises(UserError, match="carol"):
        ledger.rows("carol")


def test_report_by_key_model_and_day(conn, clock, ledger):
    key = KeyStore(conn, clock=clock).create("alice")[1]
    ledger.record("a", key.id, "big", "/v1/chat/completions", 100, 50, 20, 1.0)
    ledger.record("b", key.id, "small", "/v1/chat/completions", 10, 10, 5, 3.0)
    clock.t += 86_400  # next UTC day
    ledger.record("c", None, "small", "/v1/responses", 1, 2, 0, 2.0)

    by_key = ledger.report(by="key")
    assert [(r["group"], r["name"], r["requests"]) for r in by_key] == [(None, None, 1), (key.id, "alice", 2)]
    alice = by_key[1]
    assert (alice["prompt_tokens"], alice["completion_tokens"], alice["reasoning_tokens"]) == (110, 60, 25)
    assert alice["mean_latency_s"] == pytest.approx(2.0)
    assert alice["cost"] == pytest.approx((100 * 2 + 50 * 8 + 10 * 1 + 10 * 4) / 1e6)

    by_model = {r["group"]: r for r in ledger.report(by="model")}
    assert set(by_model) == {"big", "small"} and by_model["small"]["requests"] == 2
    assert "name" not in by_model["small"]

    by_day = ledger.report(by="day")
    assert [(r["group"], r["requests"]) for r in by_day] == [("2023-11-15", 2), ("2023-11-16", 1)]
    assert [(r["group"], r["requests"]) for r in ledger.report("alice", by="day")] == [("2023-11-15", 2)]


def test_report_rejects_unknown_grouping(ledger):
    with pytest.raises(UserError, match="valid: key, day, model"):
        ledger.report(by="week")


def test_rows_are_durable_without_any_commit(tmp_path, clock):
    path = tmp_path / "serve.db"
    writer = connect(path)
    Ledger(writer, PRICES, clock=clock).record("r1", None, "m", "/v1/chat/completions", 1, 1, 0, 0.1)
    reader = connect(path)  # a second connection sees it at once: autocommit
    assert [r.request_id for r in Ledger(reader).rows()] == ["r1"]
    reader.close()
    writer.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_ledger_holds_exactly_the_recorded_rows_after_sigkill(tmp_path):
    path = tmp_path / "serve.db"
    child = textwrap.dedent(f"""
        import os, signal
        from ponder.serve.db import connect
        from ponder.serve.ledger import Ledger
        ledger = Ledger(connect({str(path)!r}))
        for i in range(25):
            ledger.record(f"r{{i}}", None, "m", "/v1/chat/completions", i, i, 0, 0.01)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", child], env=os.environ.copy())
    assert proc.returncode == -signal.SIGKILL
    conn = connect(path)
    assert sorted(int(r.request_id[1:]) for r in Ledger(conn).rows()) == list(range(25))
    conn.close()


def write(tmp_path, text: str):
    path = tmp_path / "prices.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_price_table_from_toml(tmp_path):
    path = write(tmp_path, """
        [models."default"]
        input_per_million = 1.1
        output_per_million = 4.4

        [models."*"]
        input_per_million = 0.5
        output_per_million = 2
    """)
    table = PriceTable.from_toml(path)
    assert table.price("default") == Price(1.1, 4.4)
    assert table.price("anything-else") == Price(0.5, 2)
    assert table.cost("default", 10**6, 10**6) == pytest.approx(5.5)


@pytest.mark.parametrize("text, message", [
    ("[models.m\n", "not valid TOML"),
    ("", "no \\[models"),
    ("currency = 'usd'\n[models.m]\ninput_per_million = 1\noutput_per_million = 1\n",
     "unknown top-level key 'currency'"),
    ("[models.m]\ninput_per_million = 1\n", "models.'m': missing field 'output_per_million'"),
    ("[models.m]\ninput_per_million = 1\noutput_per_million = 1\ncached = 2\n", "unknown field 'cached'"),
    ("[models.m]\ninput_per_million = -1\noutput_per_million = 1\n", "input_per_million must be a number"),
    ("[models.m]\ninput_per_million = 1\noutput_per_million = 'free'\n", "output_per_million must be a number"),
    ("[models.m]\ninput_per_million = 1\noutput_per_million = inf\n", "output_per_million must be a number"),
    ("models = 3\n", "no \\[models"),
    ("[models]\nm = 3\n", "models.'m' must be a table"),
])
def test_bad_price_tables_name_the_file_and_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UserError, match=message) as info:
        PriceTable.from_toml(path)
    assert str(path) in str(info.value)


def test_missing_price_table(tmp_path):
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "nope.toml"))):
        PriceTable.from_toml(tmp_path / "nope.toml")
