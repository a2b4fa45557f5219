from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.tasks import expressions

leaf = st.integers(min_value=0, max_value=999)
trees = st.recursive(
    leaf, lambda sub: st.tuples(st.sampled_from("+-*/"), sub, sub), max_leaves=8
)


@given(trees)
def test_render_parses_back_to_the_same_tree(tree):
    assert expressions.parse(expressions.render(tree)) == tree


@given(trees)
def test_value_matches_python(tree):
    text = expressions.render(tree)
    try:
        value = expressions.evaluate(tree)
    except ZeroDivisionError:
        return
    # Python's own arithmetic on the same text, in exact rationals.
    assert value == eval(text.replace("/", "*Fraction(1)/"), {"Fraction": Fraction})


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "2**10", "-3+4", "3.5+1", "abs(3)", "x+1", "3+",
    "(1", "", "   ", "1;2", "True+1", "1e3", "1_000+1", "9999999+1", "(" * 500 + "1" + ")" * 500,
    "1 if 1 else 2", "[1]", "3 // 2", "3 % 2",
])
def test_parse_rejects_anything_else(text):
    assert expressions.parse(text) is None


def test_render_minimal_parentheses():
    assert expressions.render(("+", ("*", ("-", 25, 5), 4), 3)) == "(25-5)*4+3"
    assert expressions.render(("-", 10, ("+", 2, 3))) == "10-(2+3)"
    assert expressions.render(("*", 2, ("*", 3, 4))) == "2*(3*4)"


@pytest.mark.parametrize("text, expected", [
    ("(25-5)*4+3", "(25-5)*4+3"),
    ("Answer: (25-5)*4+3", "(25-5)*4+3"),
    ("(25-5)*4+3 = 83", "(25-5)*4+3"),
    ("83 = (25-5)*4+3.", "(25-5)*4+3"),
    ("thinking...\n\nSo: (25 - 5) x 4 + 3 = 83\n", "(25 - 5)*4 + 3"),
    ("(25\u22125)\u00d74+3", "(25-5)*4+3"),
    ("(so (25-5)*4+3)", "(25-5)*4+3"),
    ("42", "42"),
    ("no idea", None),
    ("", None),
])
def test_find_expression(text, expected):
    assert expressions.find_expression(text) == expected
