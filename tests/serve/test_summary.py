"""Reasoning summaries: right facts at each style, and nothing of the hidden text ever copied."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.errors import UserError
from ponder.serve.summary import (
    EMPTY,
    LAST_RESORT,
    STYLES,
    leaks,
    reasoning_features,
    summarize_reasoning,
)

TRACE = """347 * 29: split 29 = 20 + 9.
347 * 9: 7 * 9 = 63, write 3 carry 6. 4 * 9 = 36, 36 + 6 = 42, write 2 carry 4. 3 * 9 = 27, 27 + 4 = 31. So 347 * 9 = 3123.
347 * 20 = 6940.
3123 + 6940 = 10063.
Check: 10063 / 29 = 347. Yes.
"""
PROSE = """Okay, the user asks whether 91 is prime. Let me think it through.
It is odd, so 2 does not divide it. 91 divided by 7 gives 13, so it is the product of 7 and 13.
Wait, let me redo that: 7 times 13 is 70 plus 21, which is 91. Actually that confirms it.
Therefore 91 is not prime."""


def digit_runs(text: str) -> set[str]:
    return set(re.findall(r"\d+", text))


def allowed_numbers(reasoning: str, tokens: int) -> set[str]:
    f = reasoning_features(reasoning)
    return {str(tokens), str(f.steps), str(f.checks), str(f.revisions)}


def test_features_of_the_reference_trace():
    f = reasoning_features(TRACE)
    assert f.steps == 5
    assert f.operations == ("multiplication", "addition", "division")  # order of first appearance
    assert (f.checks, f.revisions, f.concluded) == (1, 0, True)


def test_features_of_free_form_prose():
    f = reasoning_features(PROSE)
    assert f.steps == 4
    assert f.operations == ("division", "multiplication", "addition")
    assert f.checks == 1  # "confirms"
    assert f.revisions == 3  # "Wait", "let me redo", "Actually"
    assert f.concluded


def test_concise_is_one_sentence_of_counted_facts():
    s = summarize_reasoning(TRACE, "concise", 133)
    assert s == "Thought for 133 tokens: multiplied, added and divided in 5 steps, then checked the result."
    assert s.count(".") == 1


def test_detailed_spells_the_facts_out():
    s = summarize_reasoning(TRACE, "detailed", 133)
    assert s == (
        "Thought for 133 tokens over 5 steps. It multiplied, then added, then divided. "
        "It checked its work once. It reached a conclusion."
    )
    assert 2 <= len(re.findall(r"\.(?:\s|$)", s)) <= 4


def test_auto_is_concise_when_short_and_detailed_when_long():
    assert summarize_reasoning(TRACE, "auto", 199) == summarize_reasoning(TRACE, "concise", 199)
    assert summarize_reasoning(TRACE, "auto", 200) == summarize_reasoning(TRACE, "detailed", 200)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("text", [TRACE, PROSE])
def test_real_traces_leak_nothing(style, text):
    s = summarize_reasoning(text, style, 321)
    assert not leaks(s, text)
    assert digit_runs(s) <= allowed_numbers(text, 321)
    assert not digit_runs(s) & {"347", "3123", "6940", "10063", "63", "91", "13", "70", "21"}


def test_prose_counts_checks_and_revisions():
    s = summarize_reasoning(PROSE, "detailed", 400)
    assert "checked its work once and revised its approach 3 times" in s


def test_unfinished_reasoning_says_so():
    cut = "12 * 4 = 48\n48 + 7 ="
    assert summarize_reasoning(cut, "concise", 9) == (
        "Thought for 9 tokens: multiplied and added in 2 steps, stopping before a conclusion."
    )
    assert summarize_reasoning(cut, "detailed", 9).endswith("It stopped before reaching a conclusion.")
    assert "did not check or revise" in summarize_reasoning(cut, "detailed", 9)


def test_plain_words_and_singulars():
    assert summarize_reasoning("hmm", "concise", 1) == (
        "Thought for 1 token: reasoned in 1 step, stopping before a conclusion."
    )
    assert "without explicit arithmetic" in summarize_reasoning("the well-known and/or *emphasis*", "detailed", 7)


@pytest.mark.parametrize("text", ["", " ", "\n\n\t "])
@pytest.mark.parametrize("style", STYLES)
def test_empty_reasoning(text, style):
    assert summarize_reasoning(text, style, 0) == EMPTY


def test_bad_style_and_token_count():
    with pytest.raises(UserError, match="auto, concise, detailed"):
        summarize_reasoning(TRACE, "verbose", 10)
    with pytest.raises(ValueError):
        summarize_reasoning(TRACE, "auto", -1)


def test_reasoning_that_quotes_a_summary_gets_a_safe_fallback():
    quoted = summarize_reasoning(TRACE, "detailed", 50).split(". ", 1)[1]  # all but the first sentence
    assert summarize_reasoning(TRACE + quoted, "detailed", 50) == "Thought for 50 tokens."
    s = summarize_reasoning(TRACE + "Thought for 50 tokens.", "concise", 50)
    assert s == LAST_RESORT and not leaks(s, TRACE + "Thought for 50 tokens.")


def test_leaks_finds_copied_text():
    assert leaks("It said: 36 + 6 = 42, write 2 carry 4!", TRACE)
    assert leaks("so 347   *  9\n= 3123", TRACE)  # whitespace collapsed
    assert leaks("SO 347 * 9 = 3123", TRACE)  # case ignored
    assert not leaks("347 * 9", TRACE)  # shorter than the window
    assert leaks("347 * 9", TRACE, min_chars=5)
    assert not leaks("", TRACE) and not leaks("anything at all here", "")


reasoning_text = st.text(
    alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789+-*/=<>()., \n")), max_size=400
)
words = st.lists(
    st.sampled_from(["check", "wait", "actually", "times", "plus", "minus", "so", "Therefore", "=", "17", "x"]),
    max_size=30,
).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(reasoning_text, words), st.sampled_from(STYLES), st.integers(0, 100_000))
def test_no_summary_ever_copies_the_reasoning(reasoning, style, tokens):
    s = summarize_reasoning(reasoning, style, tokens)
    assert s and len(s) < 400
    assert not leaks(s, reasoning)
    # Only counts, never an intermediate result: every number shown is one that was counted.
    assert digit_runs(s) <= allowed_numbers(reasoning, tokens)
