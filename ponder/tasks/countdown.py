"""Countdown: reach a target from a handful of numbers with + - * /, each used at most once.

Instances are solvable by construction: the target is the value of a random expression over
some of the numbers, with every intermediate result a positive integer (no remainders, no
negatives, no zero). Any correct expression scores 1.0, not only the generator's.

The reference trace is a search (countdown_search.py): a base near the target, the gap made
from the numbers left, and a try: the whole expression in longhand, then its check, the target
taken from the value ("=> 418; 418-382: ... => 36; too big."), so the verdict reads off one
number. Sometimes the first try flips the sign of the last operation, its check catches it, and
the right try follows: the "catch a mistake and try again" habit RL should strengthen. The
flipped expression is shown but not trained (Problem.untrained): the model learns to catch a
wrong sign, not to write one.

Difficulty:  1: 3 numbers in 1..10        2: 4 numbers in 1..10
             3: 4 numbers in 1..20        4: 5 numbers, one large (25/50/75/100)
             5: 6 numbers, two large
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from dataclasses import dataclass

from ponder.tasks import expressions, longhand
from ponder.tasks.base import Problem, check_difficulty, rng_for
from ponder.tasks.countdown_search import difference_line, search, trace_chars
from ponder.tasks.expressions import Tree

_LARGE = (25, 50, 75, 100)
MAX_VALUE = 1000  # no intermediate result above this, which keeps longhand steps short


@dataclass(frozen=True)
class _Level:
    small: int  # how many numbers come from 1..small_max
    small_max: int
    large: int  # how many come from _LARGE
    use: tuple[int, int]  # how many numbers the generated solution uses
    min_target: int
    max_target: int


_LEVELS = {
    1: _Level(3, 10, 0, (2, 2), 5, 100),
    2: _Level(4, 10, 0, (3, 3), 10, 200),
    3: _Level(4, 20, 0, (3, 3), 10, 500),
    4: _Level(4, 10, 1, (3, 4), 20, 999),
    5: _Level(4, 10, 2, (4, 5), 100, 999),
}
# Earlier traces showed 0-2 guessed tries, drawn with these weights. They are still drawn (and
# thrown away) so that a seed's later draws, and so its prompt text, stay what they were.
_TRIES = {1: ([0, 1], [3, 2]), 2: ([0, 1, 2], [3, 4, 2])}
_TRIES_DEFAULT = ([0, 1, 2], [2, 4, 3])
# Characters of search before the trace stops splitting (about one token each): the whole trace
# must leave room for the prompt and the answer in the bundled model's 512-token context.
_BUDGET = {1: 150, 2: 250, 3: 300, 4: 330, 5: 350}
# Characters of a whole trace, final try included (about 0.9 tokens each): with the prompt and
# the answer, under the bundled model's 512 tokens.
_MAX_TRACE = 450
# A third of the traces whose split works try the wrong sign first (see _slipped_try), when the
# search lines leave room for it.
_SLIP_RATE = 1 / 3
_SLIP_MAX_CHARS = 300

_PHRASINGS = [
    "Using the numbers {listed}, make {target}. You may use + - * / and each number at "
    "most once.",
    "Reach {target} using {listed} with +, -, * and /. Each number can be used at most once.",
    "Countdown: numbers {spaced}, target {target}. Use + - * / and each number at most once.",
    "Make {target} from {listed}. Combine them with + - * /, using each number at most once.",
]


_APPLY = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__, "/": int.__floordiv__}


def _combine(rng: random.Random, a: int, b: int) -> tuple[str, int, int] | None:
    """A random legal operation on a and b as (op, left, right), or None if none is."""
    a, b = max(a, b), min(a, b)
    ops = ["+"]
    if a > b:
        ops.append("-")
    if 1 < b <= 9 and a * b <= MAX_VALUE:  # a one-digit factor keeps it to one line
        ops.append("*")
    if 2 <= b <= 9 and a % b == 0 and a > b:  # one-digit divisors keep division longhand
        ops.append("/")
    op = rng.choice(ops)
    if op == "+" and a + b > MAX_VALUE:
        return None
    return op, a, b


def _random_tree(rng: random.Random, numbers: list[int]) -> tuple[Tree, int] | None:
    """Combine all of `numbers` pairwise at random; None if a step had no legal move."""
    pool: list[tuple[Tree, int]] = [(n, n) for n in numbers]
    while len(pool) > 1:
        i, j = rng.sample(range(len(pool)), 2)
        (ta, va), (tb, vb) = pool[i], pool[j]
        step = _combine(rng, va, vb)
        if step is None:
            return None
        op, left, right = step
        if left != va:  # _combine put the larger value first
            ta, tb = tb, ta
        value = _APPLY[op](left, right)
        pool = [p for k, p in enumerate(pool) if k not in (i, j)] + [((op, ta, tb), value)]
    return pool[0]


def _steps(tree: Tree) -> list[str]:
    """Longhand for each operation of `tree`, in evaluation order."""
    if isinstance(tree, int):
        return []
    op, left, right = tree
    out = _steps(left) + _steps(right)
    a, b = expressions.evaluate(left), expressions.evaluate(right)
    out.append(longhand.calc(int(a), op, int(b))[1])
    return out


def _try_line(tree: Tree, value: int, target: int) -> str:
    """A try: the expression, its longhand, then the check: the target taken from the value
    (or the value from the target), so the verdict reads off one number, 0 or not."""
    verdict = "yes" if value == target else ("too big" if value > target else "too small")
    check = difference_line(value, target)
    return f"try {expressions.render(tree)}: {'; '.join(_steps(tree))}; {check}; {verdict}."


def _slipped_try(split: Tree, target: int, rng: random.Random, lines: list[str]) -> list[str]:
    """Sometimes, a failed try before the right one: the found expression with its last + turned
    into - or the reverse (for a split: the gap added where it should be taken away, the slip
    greedy models make when a base overshoots). Its verdict ("too big" / "too small") compares the
    value with the target, so the verdict after the first try is not always "yes" and cannot be
    learned from its position."""
    if rng.random() >= _SLIP_RATE or isinstance(split, int) or split[0] not in "+-":
        return []
    op, base, gap = split
    slipped = ("-" if op == "+" else "+", base, gap)
    value = expressions.evaluate(slipped)
    if value <= 0:
        return []
    line = _try_line(slipped, int(value), target)
    if trace_chars(lines) + len(line) > _SLIP_MAX_CHARS:
        return []  # the context is needed for the search itself
    return [line]


def _numbers(rng: random.Random, level: _Level) -> list[int]:
    large = rng.sample(_LARGE, level.large)
    return [rng.randint(1, level.small_max) for _ in range(level.small)] + large


def _instance(rng: random.Random, level: _Level) -> tuple[list[int], Tree, int]:
    """Numbers, a solution tree and its target value, retried until the target is fair."""
    while True:  # each round has a good chance, so this ends after a few rounds
        numbers = _numbers(rng, level)
        used = rng.sample(numbers, rng.randint(*level.use))
        built = _random_tree(rng, used)
        if built is None:
            continue
        tree, target = built
        if level.min_target <= target <= level.max_target and target not in numbers:
            rng.shuffle(numbers)
            return numbers, tree, target


def _failed_tries(rng: random.Random, numbers: list[int], target: int, n: int) -> list[str]:
    lines: list[str] = []
    for _ in range(20 * n):  # a few rounds per try; giving up early only shortens the trace
        if len(lines) == n:
            break
        built = _random_tree(rng, rng.sample(numbers, rng.randint(2, min(3, len(numbers)))))
        if built is not None and built[1] != target:
            line = _try_line(built[0], built[1], target)
            if line not in lines:
                lines.append(line)
    return lines


def score_countdown(problem: Problem, answer_text: str, *, numbers: tuple[int, ...],
                    target: int) -> float:
    """1.0 if the answer's expression uses only the given numbers, each at most once, and
    equals the target exactly; 0.0 otherwise, including for anything unparseable."""
    text = expressions.find_expression(answer_text)
    tree = expressions.parse(text) if text is not None else None
    if tree is None:
        return 0.0
    if Counter(expressions.leaves(tree)) - Counter(numbers):
        return 0.0  # a number not given, or one used more often than given
    try:
        return 1.0 if expressions.evaluate(tree) == target else 0.0
    except ZeroDivisionError:
        return 0.0


def _reasoning(numbers: list[int], target: int, tree: Tree, difficulty: int,
               seed: int) -> tuple[list[str], Tree, tuple[tuple[int, int], ...]]:
    """The reference trace's lines (the search, then the final try), the expression it ends
    on and the span of its slipped try, in at most _MAX_TRACE characters: a trace that runs over
    is searched again with that much less budget, so SFT never cuts a trace off before its answer."""
    budget = _BUDGET[difficulty]
    while True:
        lines, found = search(numbers, target, budget)
        if found is None:  # no split worked: say so, then the instance's own solution
            fallback = ["no split works; the numbers make it another way.", _try_line(tree, target, target)]
            # Searched again with the fallback's length taken off, so the whole trace fits the context.
            lines, found = search(numbers, target, min(budget, _MAX_TRACE - trace_chars(fallback)))
        slip: list[str] = []
        if found is None:
            lines, found = lines + fallback[:1], tree
        else:
            slip = _slipped_try(found, target, rng_for("countdown-slip", difficulty, seed), lines)
        lines += [*slip, _try_line(found, target, target)]
        over = trace_chars(lines) - 1 - _MAX_TRACE
        if over <= 0 or budget <= 0:
            return lines, found, _mistake_span(lines, slip)
        budget -= over


def _mistake_span(lines: list[str], slip: list[str]) -> tuple[tuple[int, int], ...]:
    """The slipped try's expression, as a character span of the joined trace: shown, not
    trained (Problem.untrained). Trained, it taught the wrong sign first a third of the time;
    untrained, the model learns what follows a wrong sign (the longhand, the check that catches
    it, the try that fixes it) without learning to write one."""
    if not slip:
        return ()
    start = trace_chars(lines[: lines.index(slip[0])])
    return ((start, start + slip[0].index(":")),)


@dataclass(frozen=True)
class CountdownTask:
    name: str = "countdown"
    max_difficulty: int = 5

    def sample(self, seed: int, difficulty: int) -> Problem:
        check_difficulty(self.name, difficulty, self.max_difficulty)
        rng = rng_for(self.name, difficulty, seed)
        numbers, tree, target = _instance(rng, _LEVELS[difficulty])
        # The draws of the guessed tries earlier traces showed: kept, so a seed still gives the
        # same prompt text (held-out sets stay comparable across versions).
        options, weights = _TRIES.get(difficulty, _TRIES_DEFAULT)
        _failed_tries(rng, numbers, target, rng.choices(options, weights)[0])
        lines, found, mistake = _reasoning(numbers, target, tree, difficulty, seed)
        reference = "\n".join(lines)
        listed = ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"
        prompt = rng.choice(_PHRASINGS).format(
            listed=listed if rng.random() < 0.5 else ", ".join(map(str, numbers)),
            spaced=" ".join(map(str, numbers)),
            target=target,
        )
        return Problem(
            task=self.name,
            difficulty=difficulty,
            seed=seed,
            prompt=prompt,
            answer=expressions.render(found),
            reference=reference,
            _verifier=functools.partial(score_countdown, numbers=tuple(numbers), target=target),
            untrained=mistake,
        )
