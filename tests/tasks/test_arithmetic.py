import re
from collections import Counter

import pytest

from ponder.tasks.arithmetic import ArithmeticTask

TASK = ArithmeticTask()
# Every phrasing holds "a op b" with op one of + - * x and the Unicode times sign.
OPERATION = re.compile(r"(\d+) ([-+*x\u00d7]) (\d+)")


def operation(prompt: str) -> tuple[int, str, int]:
    a, op, b = OPERATION.search(prompt).groups()
    return int(a), "*" if op in "x\u00d7" else op, int(b)


def digits(n: int) -> int:
    return len(str(n))


@pytest.mark.parametrize("difficulty", range(1, 6))
def test_prompt_states_the_problem_the_answer_solves(difficulty):
    for seed in range(150):
        p = TASK.sample(seed, difficulty)
        a, op, b = operation(p.prompt)
        assert int(p.answer) == {"+": a + b, "-": a - b, "*": a * b}[op]


def test_digit_counts_scale_with_difficulty():
    for seed in range(150):
        a, op, b = operation(TASK.sample(seed, 1).prompt)
        assert op in "+-" and a < 100 and b < 100
        a, op, b = operation(TASK.sample(seed, 5).prompt)
        assert op == "*" and digits(a) in (3, 4) and digits(b) in (2, 3)


def test_no_negative_results_at_the_easy_levels():
    for d in (1, 2):
        assert all(int(TASK.sample(s, d).answer) >= 0 for s in range(200))
    assert any(int(TASK.sample(s, 3).answer) < 0 for s in range(200))


def test_phrasings():
    prompts = [TASK.sample(s, 5).prompt for s in range(300)]
    canonical = [p for p in prompts if re.fullmatch(r"What is \d+ \* \d+\?", p)]
    assert len(canonical) > len(prompts) / 4
    starts = Counter(p.split()[0] for p in prompts)
    assert len(starts) >= 4
    # The x and Unicode times signs appear, but only in a minority.
    others = [p for p in prompts if " x " in p or "\u00d7" in p]
    assert 0 < len(others) < len(prompts) / 3


def test_examples():
    assert TASK.sample(0, 5).prompt == "What is 906 * 89?"
    p = TASK.sample(0, 5)
    assert p.answer == "80634" and p.reference.endswith("=> 80634")
    assert p.verify("906 * 89 = 80,634") == 1.0
