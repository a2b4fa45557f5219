"""Countdown's split search: what it finds is always a valid solution, its verdicts follow from
the values it writes, and it stays inside its character budget."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.tasks import expressions
from ponder.tasks.countdown_search import make, nearest_miss, search

numbers = st.lists(st.integers(1, 100), min_size=2, max_size=6)


@settings(max_examples=300, deadline=None)
@given(numbers, st.integers(1, 999), st.integers(60, 600))
def test_a_found_split_reaches_the_target_with_the_given_numbers(nums, target, budget):
    lines, tree = search(nums, target, budget)
    assert sum(len(line) + 1 for line in lines) <= budget
    if tree is not None:
        assert expressions.evaluate(tree) == target
        assert not Counter(expressions.leaves(tree)) - Counter(nums)


@given(st.integers(0, 120), st.lists(st.integers(1, 100), max_size=5))
def test_make_uses_at_most_two_numbers_and_says_none_only_when_none_works(value, pool):
    # A pair makes no zero (a - b only for a > b): a gap of 0 never reaches make, the base was exact.
    made = make(value, tuple(pool))
    pairs = set(pool)
    for i, a in enumerate(pool):
        for j, b in enumerate(pool):
            if i != j and a >= b:
                pairs |= {a + b} | ({a - b} if a > b else set()) | ({a * b} if 1 < b <= 9 else set()) | ({a // b} if 1 < b <= 9 and a % b == 0 else set())
    if made is None:
        assert value not in pairs
    else:
        assert expressions.evaluate(made.tree) == value
        used = Counter(expressions.leaves(made.tree))
        assert sum(used.values()) <= 2 and Counter(made.rest) + used == Counter(pool)


def test_the_closest_base_is_tried_first():
    lines, tree = search([9, 75, 1, 25, 1, 4], 301, 400)
    assert lines[0].startswith("75*4: ") and lines[0].endswith("=> 300; 301-300: 1-0=1, 0-0=0, 3-3=0 => 1 short.")
    assert lines[1] == "1 from 9 1 25 1: 1." and expressions.render(tree) == "75*4+1"


def test_a_dead_end_names_its_nearest_miss():
    # "none" comes after the closest value the pool makes, compared with the gap it wanted.
    lines, tree = search([7, 3, 10], 15, 400, tries=1)
    assert lines == ["10+7=17; 17-15=2 over.", "2 from 3: 3, not 2; none."] and tree is None
    assert nearest_miss(5, (7, 3)) == "7-3=4" and nearest_miss(5, ()) is None
