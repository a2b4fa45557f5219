"""Rate limits and quotas: rolling windows on a fake clock, headers, persistence, concurrency."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.serve.db import connect
from ponder.serve.keys import KeyLimits, KeyStore
from ponder.serve.limits import DAY, MINUTE, WEEK, RateLimiter, format_reset

from tests.serve.fake_clock import FakeClock

T0 = 1_700_000_000.0


def Clock(t: float = T0) -> FakeClock:
    return FakeClock(t)

@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def limiter(conn, clock):
    return RateLimiter(conn, clock=clock)


def make_key(conn, clock, **limits):
    return KeyStore(conn, clock=clock).create("k", KeyLimits(**limits))[1]


def admitted(limiter, key, n, tokens=0):
    return sum(limiter.admit(key, tokens).allowed for _ in range(n))


def test_rpm_refuses_the_extra_request_and_resets_after_a_minute(conn, clock, limiter):
    key = make_key(conn, clock, rpm=3)
    assert admitted(limiter, key, 3) == 3
    refused = limiter.admit(key)
    assert not refused.allowed
    assert refused.reason == "rate limit reached for requests: 3 per minute; try again in 1m0s"
    assert refused.headers["retry-after"] == "60"
    clock.advance(59.5)
    last = limiter.admit(key)
    assert not last.allowed and last.headers["retry-after"] == "1" and "try again in 500ms" in last.reason
    clock.advance(0.5)
    assert admitted(limiter, key, 4) == 3


def test_refusals_do_not_count(conn, clock, limiter):
    key = make_key(conn, clock, rpm=2, per_day=5)
    assert admitted(limiter, key, 2) == 2
    for _ in range(30):  # hammering while refused must not use up the daily quota
        clock.advance(1)
        assert not limiter.admit(key).allowed
    clock.advance(30)
    assert admitted(limiter, key, 3) == 2


def test_rpm_window_rolls(conn, clock, limiter):
    key = make_key(conn, clock, rpm=3)
    for _ in range(3):
        assert limiter.admit(key).allowed
        clock.advance(10)
    decision = limiter.admit(key)  # t=30: the t=0 request leaves the window at t=60
    assert not decision.allowed and decision.headers["retry-after"] == "30"
    clock.advance(30)
    assert limiter.admit(key).allowed  # t=60
    clock.advance(1)
    decision = limiter.admit(key)  # t=61: now the t=10 one must leave, at t=70
    assert not decision.allowed and decision.headers["retry-after"] == "9"


def test_daily_quota_rolls_after_24_hours(conn, clock, limiter):
    key = make_key(conn, clock, per_day=2)
    assert admitted(limiter, key, 2) == 2
    clock.advance(DAY - 60)
    decision = limiter.admit(key)
    assert not decision.allowed
    assert decision.reason.startswith("daily quota of 2 requests used up")
    # No per-minute limits, so no x-ratelimit trios; the exhausted limit is named.
    assert decision.headers == {"retry-after": "60", "x-ratelimit-exhausted": "requests_per_day",
                                "x-ratelimit-limit-requests-day": "2", "x-ratelimit-remaining-requests-day": "0"}
    assert decision.limit == "requests_per_day"
    clock.advance(60)
    assert admitted(limiter, key, 3) == 2


def test_weekly_quota_is_a_rolling_seven_days(conn, clock, limiter):
    key = make_key(conn, clock, per_week=3)
    for _ in range(3):  # days 0, 2, 4
        assert limiter.admit(key).allowed
        clock.advance(2 * DAY)
    decision = limiter.admit(key)  # day 6: the day-0 request frees its slot on day 7
    assert not decision.allowed
    assert decision.reason == "weekly quota of 3 requests used up (rolling 7 days); try again in 24h0m0s"
    assert decision.headers["retry-after"] == str(int(DAY))
    clock.advance(DAY)
    assert limiter.admit(key).allowed  # day 7
    clock.advance(DAY)
    decision = limiter.admit(key)  # day 8: full again until the day-2 request turns a week old
    assert not decision.allowed and decision.headers["retry-after"] == str(int(DAY))


def test_tpm_counts_reservations_then_what_was_spent(conn, clock, limiter):
    key = make_key(conn, clock, tpm=100)
    first = limiter.admit(key, 100)  # the reservation alone may use the whole minute
    assert first.allowed and first.headers["x-ratelimit-remaining-tokens"] == "0"
    assert not limiter.admit(key, 1).allowed  # reserved, though nothing is spent yet
    limiter.settle(first.reservation, 60)
    clock.advance(10)
    ok = limiter.admit(key, 40)
    assert ok.allowed and ok.headers["x-ratelimit-remaining-tokens"] == "0"  # 60 spent, 40 reserved
    assert ok.headers["x-ratelimit-reset-tokens"] == "50s"
    refused = limiter.admit(key, 1)
    assert not refused.allowed and "rate limit reached for tokens: 100 per minute, 100 used or reserved" in refused.reason
    assert refused.headers["retry-after"] == "50" and refused.limit == "tokens"
    assert refused.headers["x-ratelimit-exhausted"] == "tokens"
    clock.advance(50)  # the first request's 60 leave the window; the second's 40 are still reserved
    assert not limiter.admit(key, 61).allowed and limiter.admit(key, 60).allowed


def test_tpm_waits_only_as_long_as_needed(conn, clock, limiter):
    key = make_key(conn, clock, tpm=100)
    for _ in range(4):  # 25 tokens at t = 0, 10, 20, 30
        limiter.settle(limiter.admit(key, 25).reservation, 25)
        clock.advance(10)
    decision = limiter.admit(key, 50)  # t=40: 100 used, 50 more needs the first two gone (t=70)
    assert not decision.allowed and decision.headers["retry-after"] == "30"


def test_a_request_larger_than_tpm_is_refused_as_too_large(conn, clock, limiter):
    key = make_key(conn, clock, tpm=100)
    decision = limiter.admit(key, 101)
    assert not decision.allowed and decision.reason.startswith("request too large: up to 101 tokens")
    assert decision.headers["retry-after"] == "60"


def test_headers_on_an_allowed_request(conn, clock, limiter):
    key = make_key(conn, clock, rpm=5, tpm=1000)
    limiter.settle(limiter.admit(key, 1000).reservation, 300)
    clock.advance(12)
    headers = limiter.admit(key).headers
    assert headers == {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "3",
        "x-ratelimit-reset-requests": "48s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "700",
        "x-ratelimit-reset-tokens": "48s",
    }


def test_trios_are_left_out_for_unset_limits(conn, clock, limiter):
    only_rpm = limiter.admit(make_key(conn, clock, rpm=5)).headers
    assert set(only_rpm) == {"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                             "x-ratelimit-reset-requests"}
    unlimited = KeyStore(conn, clock=clock).create("free")[1]
    assert all(limiter.admit(unlimited).allowed for _ in range(100))
    assert limiter.admit(unlimited).headers == {} and limiter.admit(unlimited).reason is None


def test_keys_have_separate_allowances(conn, clock, limiter):
    store = KeyStore(conn, clock=clock)
    a = store.create("a", KeyLimits(rpm=1))[1]
    b = store.create("b", KeyLimits(rpm=1))[1]
    assert limiter.admit(a).allowed and limiter.admit(b).allowed
    assert not limiter.admit(a).allowed and not limiter.admit(b).allowed


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (0.02, "20ms"), (0.0004, "1ms"), (0.9999, "1s"), (1, "1s"), (12.0000001, "12s"),
    (12.3, "13s"), (59.9, "1m0s"), (360, "6m0s"), (3723, "1h2m3s"), (WEEK, "168h0m0s"),
])
def test_format_reset_like_openai(seconds, text):
    assert format_reset(seconds) == text


def test_quota_survives_a_restart(tmp_path, clock):
    path = tmp_path / "serve.db"
    conn = connect(path)
    key = make_key(conn, clock, per_week=2)
    assert admitted(RateLimiter(conn, clock=clock), key, 2) == 2
    conn.close()
    clock.advance(3 * DAY)
    conn = connect(path)
    decision = RateLimiter(conn, clock=clock).admit(key)
    assert not decision.allowed and "weekly quota" in decision.reason
    conn.close()


def test_old_events_are_pruned(conn, clock, limiter):
    key = make_key(conn, clock, rpm=10)
    limiter.settle(limiter.admit(key, 7).reservation, 5)
    clock.advance(WEEK + 1)
    limiter.admit(key)
    assert conn.execute("SELECT COUNT(*) FROM rate_events").fetchone()[0] == 1


def test_bad_token_counts_are_bugs(conn, clock, limiter):
    key = make_key(conn, clock, tpm=10)
    with pytest.raises(ValueError):
        limiter.settle(limiter.admit(key, 1).reservation, -1)
    with pytest.raises(ValueError):
        limiter.admit(key, -5)


def run_threads(n: int, work) -> None:
    barrier = threading.Barrier(n)
    threads = [threading.Thread(target=lambda i=i: (barrier.wait(), work(i))) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_admits_on_one_connection_never_exceed_rpm(conn, clock, limiter):
    key = make_key(conn, clock, rpm=5)
    results: list[bool] = []
    run_threads(8, lambda i: results.extend(limiter.admit(key).allowed for _ in range(10)))
    assert len(results) == 80 and sum(results) == 5


def test_concurrent_admits_on_separate_connections_never_exceed_rpm(tmp_path, clock):
    # Separate connections stand in for separate server processes: only SQLite's lock is shared.
    path = tmp_path / "serve.db"
    setup = connect(path)
    key = make_key(setup, clock, rpm=7)
    conns = [connect(path) for _ in range(8)]
    results: list[bool] = []
    run_threads(8, lambda i: results.extend(RateLimiter(conns[i], clock=clock).admit(key).allowed for _ in range(5)))
    assert len(results) == 40 and sum(results) == 7
    for c in conns + [setup]:
        c.close()


@settings(max_examples=100, deadline=None)
@given(
    rpm=st.integers(1, 4),
    gaps=st.lists(st.floats(0, 40, allow_nan=False), min_size=1, max_size=25),
)
def test_no_minute_ever_admits_more_than_rpm(rpm, gaps):
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        conn = connect(Path(tmp) / "serve.db")
        key = make_key(conn, clock, rpm=rpm)
        limiter = RateLimiter(conn, clock=clock)
        admitted_at, refused_at = [], []
        for gap in gaps:
            clock.advance(gap)
            (admitted_at if limiter.admit(key).allowed else refused_at).append(clock.t)
        conn.close()

    def in_window(t: float) -> int:
        return sum(t - MINUTE < s <= t for s in admitted_at)

    assert all(in_window(t) <= rpm for t in admitted_at)  # never too many...
    assert all(in_window(t) == rpm for t in refused_at)  # ...and never refused while there was room
