import functools
import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.tasks import expressions
from ponder.tasks.base import Problem
from ponder.tasks.countdown import CountdownTask, score_countdown

TASK = CountdownTask()


def make(numbers, target) -> Problem:
    verifier = functools.partial(score_countdown, numbers=tuple(numbers), target=target)
    return Problem("countdown", 1, 0, "", "", "", verifier)


GAME = make([25, 5, 4, 3], 83)


def given_numbers(problem) -> list[int]:
    """The numbers a prompt offers (everything but the target)."""
    target = int(expressions.evaluate(expressions.parse(problem.answer)))
    found = [int(x) for x in re.findall(r"\d+", problem.prompt)]
    found.remove(target)
    return found


@pytest.mark.parametrize("answer, score", [
    ("(25-5)*4+3", 1.0),
    ("Answer: (25-5)*4+3", 1.0),
    ("(25-5)*4+3 = 83", 1.0),
    ("4*(25-5)+3", 1.0),  # any correct expression counts, not only the reference's
    ("(25-5)*4+3+0", 0.0),  # 0 was not given
    ("(25-5)*4+3-3+3", 0.0),  # 3 used three times
    ("(25-5)*4", 0.0),  # 80, wrong value
    ("25/(5-5)+83", 0.0),  # division by zero, and 5 twice
    ("83", 0.0),
    ("", 0.0),
    ("__import__('os').system('echo hi')", 0.0),
    ("(25-5)*4+3)))", 1.0),  # stray closing brackets from prose are forgiven
    ("(25-5)*(4+3", 0.0),
    ("-(3-25)*4-5", 0.0),
])
def test_verify(answer, score):
    assert GAME.verify(answer) == score


def test_exact_rational_arithmetic():
    # 7/2*2 passes through 3.5: fine in exact arithmetic, and it does not need to be whole.
    assert make([7, 2, 2], 7).verify("7/2*2") == 1.0
    assert make([1, 3, 3], 1).verify("1/3*3") == 1.0


def test_repeated_given_numbers_can_each_be_used():
    assert make([5, 5, 2], 50).verify("5*5*2") == 1.0
    assert make([5, 2], 50).verify("5*5*2") == 0.0


@given(st.text(max_size=120))
def test_verify_never_raises(text):
    assert GAME.verify(text) in (0.0, 1.0)


@given(st.text(alphabet="0123456789()+-*/ =", max_size=60))
def test_verify_never_raises_on_expression_like_text(text):
    assert GAME.verify(text) in (0.0, 1.0)


@pytest.mark.parametrize("difficulty, count", [(1, 3), (2, 4), (3, 4), (4, 5), (5, 6)])
def test_instances_are_solvable_and_sized(difficulty, count):
    for seed in range(60):
        p = TASK.sample(seed, difficulty)
        numbers = given_numbers(p)
        assert len(numbers) == count
        leaves = list(expressions.leaves(expressions.parse(p.answer)))
        assert not Counter(leaves) - Counter(numbers)
        target = int(expressions.evaluate(expressions.parse(p.answer)))
        assert target not in numbers and target > 0


def test_solution_steps_are_whole_and_positive():
    def walk(tree):
        if isinstance(tree, int):
            return
        value = expressions.evaluate(tree)
        assert value.denominator == 1 and value > 0, tree
        walk(tree[1])
        walk(tree[2])

    for d in range(1, 6):
        for seed in range(60):
            walk(expressions.parse(TASK.sample(seed, d).answer))


def test_reference_splits_the_target_and_checks_the_split():
    found = Counter()
    for seed in range(200):
        p = TASK.sample(seed, 4)
        lines = p.reference.splitlines()
        tries = [line for line in lines if line.startswith("try ")]
        assert tries[-1].endswith("yes.") and p.verify(p.answer) == 1.0  # the split that worked, checked
        if len(tries) == 2:  # first the slip: the same split with + and - swapped, judged against the target
            found["slip"] += 1
            slipped, right = (expressions.parse(line.split(":")[0][len("try "):]) for line in tries)
            assert {slipped[0], right[0]} == {"+", "-"} and slipped[1:] == right[1:]
            value = expressions.evaluate(slipped)
            target = expressions.evaluate(expressions.parse(p.answer))
            assert tries[0].endswith("too big." if value > target else "too small.")
            # The slip's expression is shown, not trained: the model learns to catch it, not to make it.
            (start, end), = p.untrained
            assert p.reference[start:end] == tries[0].split(":")[0]
        else:
            assert len(tries) == 1 and p.untrained == ()
        found["fallback" if "no split works" in p.reference else "split"] += 1
        for line in lines:  # every "V from POOL: ..." draws on numbers the prompt gives
            if " from " in line and ":" in line:
                pool = Counter(int(x) for x in line.split(" from ")[1].split(":")[0].split())
                assert not pool - Counter(given_numbers(p)), line
    assert found["split"] > 0.7 * 200  # measured: 74% at difficulty 4
    assert 0.1 * 200 < found["slip"] < 0.35 * 200  # a third of the splits, where the context has room


def test_reference_ends_with_the_answer_expression():
    for seed in range(30):
        p = TASK.sample(seed, 3)
        last_try = [line for line in p.reference.splitlines() if line.startswith("try ")][-1]
        assert last_try.startswith(f"try {p.answer}: ")


def test_example():
    p = TASK.sample(7, 2)
    assert "at most once" in p.prompt and str(22) in p.prompt
    assert p.answer == "6*4-(9-7)" and p.verify("9+6+7 = 22") == 1.0  # the split found, or any other


def test_every_trace_fits_the_bundled_models_context():
    # Training never cuts off a trace's answer: with the longest developer prompt, the whole
    # example stays within the bundled model's 512 tokens. The d5 seeds below once made traces
    # of up to 516 characters (a long split plus its final try).
    from ponder.engine.spec import resolve_checkpoint
    from ponder.model.chat import Message
    from ponder.model.tokenizer import Tokenizer
    from ponder.rl.traces import DEVELOPER_PROMPTS, encode_example

    problems = [TASK.sample(seed, d) for d in range(1, 6) for seed in range(300)]
    problems += [TASK.sample(seed, 5) for seed in (2362, 3579, 8059, 19158, 19338)]
    assert max(len(p.reference) for p in problems) <= 450
    tok = Tokenizer.load(resolve_checkpoint("default") / "tokenizer.json")
    developer = Message("developer", max(DEVELOPER_PROMPTS, key=len))
    longest = sorted(problems, key=lambda p: len(p.reference))[-20:]
    assert max(len(encode_example(tok, [developer, Message("user", p.prompt)], p)[0]) for p in longest) <= 512


def test_every_try_checks_its_value_against_the_target():
    # "=> 418; 418-382: ... => 36; too big.": the verdict reads off the check's result, 0 or not.
    checked = 0
    for seed in range(100):
        for d in (2, 5):
            p = TASK.sample(seed, d)
            target = int(expressions.evaluate(expressions.parse(p.answer)))
            for line in p.reference.splitlines():
                if not line.startswith("try "):
                    continue
                value = int(expressions.evaluate(expressions.parse(line[4:].split(":")[0])))
                *_, check, verdict = line.split("; ")
                assert check.startswith(f"{max(value, target)}-{min(value, target)}")
                assert check.endswith(f"={abs(value - target)}") or check.endswith(f"=> {abs(value - target)}")
                assert verdict == ("yes." if value == target else "too big." if value > target else "too small.")
                checked += 1
    assert checked > 200
