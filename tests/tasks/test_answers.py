from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.tasks.answers import extract_number, numbers_equal, score_number
from ponder.tasks.arithmetic import ArithmeticTask

integers = st.integers(min_value=-(10**12), max_value=10**12)
naturals = st.integers(min_value=0, max_value=10**12)
# Decimals as (whole part, digits after the point), e.g. (2, "50") for 2.50.
decimals = st.tuples(naturals, st.text("0123456789", min_size=1, max_size=4))
words = st.sampled_from(["apples", "dollars", "dollars.", "cm", "kg of flour", "in total."])


def commas(n: int) -> str:
    return f"{n:,}"


@given(integers)
def test_plain_integer(n):
    assert extract_number(str(n)) == n


@given(integers)
def test_thousands_separators(n):
    assert extract_number(commas(n)) == n


@given(naturals)
def test_currency(n):
    assert extract_number(f"${n}") == n
    assert extract_number(f"${commas(n)}") == n
    assert extract_number(f"-${commas(n)}") == -n
    assert extract_number(f"$-{n}") == -n


@given(integers, words)
def test_units_and_trailing_words(n, unit):
    assert extract_number(f"{commas(n)} {unit}") == n
    assert extract_number(f"The answer is {n}.") == n
    assert extract_number(f"So she has {commas(n)} {unit}") == n


@given(decimals, st.booleans())
def test_decimals(d, negative):
    whole, frac = d
    text = f"{'-' if negative else ''}{whole}.{frac}"
    expected = Fraction(f"{whole}.{frac}") * (-1 if negative else 1)
    assert extract_number(text) == expected
    assert extract_number(f"Total: ${commas(whole)}.{frac}.") == Fraction(f"{whole}.{frac}")


@given(integers, st.integers(min_value=1, max_value=10**6))
def test_simple_fractions(num, den):
    assert extract_number(f"{num}/{den}") == Fraction(num, den)


@given(st.lists(integers, min_size=1, max_size=5), integers)
def test_last_number_wins(earlier, final):
    working = ", ".join(f"step {i}: {commas(x)}" for i, x in enumerate(earlier))
    assert extract_number(f"{working}, so the answer is {commas(final)}.") == final


@given(naturals, naturals)
def test_minus_between_terms_is_an_operator(a, b):
    # "10-5" ends in the number 5, not -5; a spaced "- 5" is not a sign either.
    assert extract_number(f"{a}-{b}") == b
    assert extract_number(f"{a} - {b}") == b


@given(st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=40))
def test_no_digits_no_number(text):
    assert extract_number(text) is None


@given(st.text(max_size=80))
def test_never_raises(text):
    value = extract_number(text)
    assert value is None or isinstance(value, Fraction)


@pytest.mark.parametrize("text, expected", [
    ("18", 18), ("$18", 18), ("18 apples", 18), ("18 dollars.", 18),
    ("The answer is 18.", 18), ("1,234", 1234), ("-7", -7), ("2.50", Fraction(5, 2)),
    ("3/4", Fraction(3, 4)), ("x = \u22123", -3), ("1,2345", 2345), ("50%", 50),
    ("He had 3 bags, so 3 * 6 = 18 eggs", 18),
])
def test_examples(text, expected):
    assert extract_number(text) == expected


@pytest.mark.parametrize("a, b, equal", [
    ("18", 18, True), ("$1,234.50", Fraction(2469, 2), True), ("2.5", "5/2", True),
    ("18.0", "18", True), (0.1, "0.1", True), ("17", "18", False), (None, None, False),
    ("no idea", "no idea", False), ("18", None, False),
])
def test_numbers_equal(a, b, equal):
    assert numbers_equal(a, b) is equal


def test_numbers_equal_rejects_other_types():
    with pytest.raises(TypeError):
        numbers_equal([1], 1)


def test_score_number_reads_the_last_number():
    problem = ArithmeticTask().sample(0, 1)
    assert score_number(problem, f"so the answer is {problem.answer}.") == 1.0
    assert score_number(problem, f"{problem.answer}, no wait, {int(problem.answer) + 1}") == 0.0
    assert score_number(problem, "") == 0.0
