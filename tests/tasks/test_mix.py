from collections import Counter

import pytest

from ponder.errors import UserError
from ponder.tasks import TASKS
from ponder.tasks.mix import DEFAULT_FAMILIES, HELD_OUT_BASE, held_out_set, sample_mix


def test_same_seed_same_problem():
    for seed in (0, 1, 999_999_999, HELD_OUT_BASE + 3):
        assert sample_mix(seed) == sample_mix(seed)


def test_equals_the_family_sample():
    for seed in range(50):
        p = sample_mix(seed)
        assert p == TASKS[p.task].sample(seed, p.difficulty)


def test_covers_families_and_difficulties():
    problems = [sample_mix(seed) for seed in range(600)]
    families = Counter(p.task for p in problems)
    assert set(families) == set(DEFAULT_FAMILIES) and min(families.values()) > 120
    assert {p.difficulty for p in problems} == {1, 2, 3, 4, 5}


def test_fixed_difficulty_and_families():
    problems = [sample_mix(seed, 4, families=("countdown",)) for seed in range(20)]
    assert {(p.task, p.difficulty) for p in problems} == {("countdown", 4)}


def test_bad_arguments():
    with pytest.raises(UserError, match=r"1\.\.5"):
        sample_mix(0, difficulty=9)
    with pytest.raises(UserError, match="'chess'.*arithmetic"):
        sample_mix(0, families=("chess",))
    with pytest.raises(UserError, match="at least one"):
        sample_mix(0, families=())


def test_held_out_set_is_fixed_and_disjoint_from_training_seeds():
    a, b = held_out_set(30), held_out_set(30)
    assert a == b and len(a) == 30
    assert all(p.seed >= HELD_OUT_BASE for p in a)
    assert [p.seed for p in a] == list(range(HELD_OUT_BASE, HELD_OUT_BASE + 30))
    assert {p.difficulty for p in held_out_set(10, difficulty=2)} == {2}


def test_held_out_set_refuses_training_seeds():
    with pytest.raises(UserError, match="overlap"):
        held_out_set(5, base_seed=10)
    with pytest.raises(UserError, match=">= 0"):
        held_out_set(-1)
