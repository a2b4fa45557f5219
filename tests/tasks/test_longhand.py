import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.tasks import longhand
from ponder.tasks.answers import extract_number
from tests.tasks.equations import check_equations

n = st.integers(min_value=0, max_value=10**6)


def final_number(trace: str) -> int:
    return int(extract_number(trace))


@given(n, n)
def test_add(a, b):
    trace = longhand.add(a, b)
    assert final_number(trace) == a + b
    check_equations(trace)


@given(n, n)
def test_sub_including_below_zero(a, b):
    trace = longhand.sub(a, b)
    assert final_number(trace) == a - b
    check_equations(trace)


@given(n, st.integers(min_value=0, max_value=10**4))
def test_mul(a, b):
    trace = longhand.mul(a, b)
    assert final_number(trace) == a * b
    check_equations(trace)


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=1, max_value=9))
def test_div(q, d):
    trace = longhand.div(q * d, d)
    assert final_number(trace) == q
    check_equations(trace)


@pytest.mark.parametrize("op, a, b, trace", [
    ("*", 347, 9, "347*9: 7*9=63 c6, 4*9+6=42 c4, 3*9+4=31 => 3123"),
    ("+", 3123, 6940, "3123+6940: 3+0=3, 2+4=6, 1+9=10 c1, 3+6+1=10 => 10063"),
    ("-", 503, 178, "503-178: 3-8+10=5 b1, 0-1-7+10=2 b1, 5-1-1=3 => 325"),
    ("/", 156, 4, "156/4: 1/4=0 r1, 15/4=3 r3, 36/4=9 => 39"),
    ("+", 12, 15, "12+15=27"),
    ("*", 7, 8, "7*8=56"),
    ("/", 56, 7, "56/7=8"),
    ("-", 45, 78, "45-78 = -(78-45)\n78-45: 8-5=3, 7-4=3 => 33\n=> -33"),
])
def test_format(op, a, b, trace):
    assert longhand.calc(a, op, b)[1] == trace


def test_long_multiplication_layout():
    # One line per nonzero digit of the multiplier (zeros skipped), then the running sum.
    assert longhand.mul(347, 209).splitlines() == [
        "347*9: 7*9=63 c6, 4*9+6=42 c4, 3*9+4=31 => 3123",
        "347*200: 7*2=14 c1, 4*2+1=9, 3*2=6 => 69400",
        "3123+69400: 3+0=3, 2+0=2, 1+4=5, 3+9=12 c1, 0+6+1=7 => 72523",
    ]
    assert longhand.mul(29, 347).startswith("29*347 = 347*29\n")


def test_refuses_what_the_format_cannot_write():
    with pytest.raises(ValueError, match="one-digit divisor"):
        longhand.div(120, 12)
    with pytest.raises(ValueError, match="exact"):
        longhand.div(10, 3)
    with pytest.raises(ValueError, match=">= 0"):
        longhand.add(-1, 2)
    with pytest.raises(ValueError, match="unknown operator"):
        longhand.calc(1, "%", 2)
