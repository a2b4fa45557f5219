"""Invariants every generated family keeps, checked over many seeds at every difficulty."""

from fractions import Fraction
from statistics import mean

import pytest

from ponder.errors import UserError
from ponder.tasks import TASKS, expressions
from ponder.tasks.answers import extract_number
from ponder.think.scorers import countdown_instance
from tests.tasks.equations import check_equations

FAMILIES = sorted(TASKS)
DIFFICULTIES = range(1, 6)
SEEDS = range(120)


@pytest.fixture(scope="module")
def samples():
    """{(family, difficulty): [Problem, ...]}, made once for the module."""
    return {(name, d): [TASKS[name].sample(s, d) for s in SEEDS]
            for name in FAMILIES for d in DIFFICULTIES}


def target_of(problem) -> Fraction:
    """The number the reference must end on: the answer, or for countdown 0, the check of its
    last try (the target taken from the answer's value; test_countdown checks the rest)."""
    if problem.task == "countdown":
        assert expressions.evaluate(expressions.parse(problem.answer)) == countdown_instance(problem.prompt)[1]
        return Fraction(0)
    return Fraction(problem.answer)


def wrong_answer(problem) -> str:
    if problem.task == "countdown":
        return f"{problem.answer}+1"  # value off by one, whether or not 1 was given
    return str(int(problem.answer) + 1)


def test_registry_has_the_generated_families():
    assert FAMILIES == ["arithmetic", "countdown", "word_problems"]
    for name, task in TASKS.items():
        assert task.name == name and task.max_difficulty == 5


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_same_seed_same_problem(name, difficulty):
    task = TASKS[name]
    for seed in (0, 1, 12345, 10**9 + 7):
        a, b = task.sample(seed, difficulty), task.sample(seed, difficulty)
        assert a == b and a.reference == b.reference
        assert (a.task, a.difficulty, a.seed) == (name, difficulty, seed)


@pytest.mark.parametrize("name", FAMILIES)
def test_seeds_give_varied_problems(name, samples):
    prompts = {p.prompt for p in samples[(name, 3)]}
    assert len(prompts) > 0.9 * len(SEEDS)


@pytest.mark.parametrize("name", FAMILIES)
def test_reference_is_correct_and_verifies(name, samples):
    for d in DIFFICULTIES:
        for p in samples[(name, d)]:
            assert extract_number(p.reference) == target_of(p), p
            assert check_equations(p.reference) > 0, p.reference
            assert p.verify(p.answer) == 1.0, p
            assert p.verify(wrong_answer(p)) == 0.0, p
            assert p.verify("") == 0.0


@pytest.mark.parametrize("name", FAMILIES)
def test_free_form_answers_verify(name, samples):
    for p in samples[(name, 2)][:30]:
        if name == "countdown":
            target = target_of(p)
            texts = [f"Answer: {p.answer}", f"{p.answer} = {target}", f"{target} = {p.answer}"]
        else:
            texts = [f"The answer is {p.answer}.", f"{int(p.answer):,} in total", f"${p.answer}"]
        for text in texts:
            assert p.verify(text) == 1.0, text


@pytest.mark.parametrize("name", FAMILIES)
def test_text_is_ascii(name, samples):
    for d in DIFFICULTIES:
        for p in samples[(name, d)]:
            assert p.reference.isascii() and p.answer.isascii()
            # Arithmetic alone may show a Unicode times sign, in a minority of prompts.
            assert p.prompt.replace("\u00d7", "*").isascii() if name == "arithmetic" \
                else p.prompt.isascii()


@pytest.mark.parametrize("name", FAMILIES)
def test_thinking_grows_with_difficulty_within_budget(name, samples):
    lengths = {d: [len(p.reference) for p in samples[(name, d)]] for d in DIFFICULTIES}
    assert max(lengths[1]) <= 120
    assert max(lengths[5]) <= 600
    means = [mean(lengths[d]) for d in DIFFICULTIES]
    assert means == sorted(means) and means[0] < means[-1], means


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("bad", [0, 6, -1, "3", 2.0, True, None])
def test_bad_difficulty_names_the_range(name, bad):
    with pytest.raises(UserError, match=r"1\.\.5"):
        TASKS[name].sample(0, bad)
