"""Answer voting: which samples said the same thing, and which answer won.

Samples must vote by what they answered, not by how they wrote it, so each answer is reduced
to a key with the same readers the task verifiers use (`ponder.tasks.answers`,
`ponder.tasks.expressions`):

- an arithmetic expression (Countdown) -> a canonical form: spaces dropped, the operands of
  + and * flattened and sorted, so "7+(5+1)", "1 + 5 + 7" and "Answer: 5+1+7 = 13" agree.
  Only + - * / over integers counts as an expression (a lone "-5" is a number).
- otherwise the LAST number in the text as an exact fraction, so "10063", " 10063.",
  "10,063", "$10,063" and "10063 apples" agree, as do "2.50", "2.5" and "5/2" (key "5/2").
- otherwise the text lowercased with whitespace collapsed and trailing punctuation dropped.
- an empty answer (the sample ran out of tokens while thinking) abstains: it has no key.

Keys are plain strings so vote counts can go into JSON. Ties go to the answer whose first
sample came earliest, which makes the result independent of dict or set ordering.
Left out: semantic equivalence (two different correct Countdown expressions still split).
"""

from __future__ import annotations

import re
from typing import Sequence

from ponder.engine.base import Completion
from ponder.tasks import expressions
from ponder.tasks.answers import extract_number
from ponder.tasks.expressions import Tree

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_SPACES = re.compile(r"\s+")


def _operands(tree: Tree, op: str) -> list[Tree]:
    """The operands of a chain of one associative op: (a+b)+(c+d) -> [a, b, c, d]."""
    if isinstance(tree, tuple) and tree[0] == op:
        return _operands(tree[1], op) + _operands(tree[2], op)
    return [tree]


def _wrapped(tree: Tree, parent: str) -> str:
    text = canonical_expression(tree)
    # Every operator child that does not bind tighter is parenthesised, so no two different
    # trees share a key (the flattened chains are the only merges, and they are exact).
    if isinstance(tree, tuple) and _PRECEDENCE[tree[0]] <= _PRECEDENCE[parent]:
        return f"({text})"
    return text


def canonical_expression(tree: Tree) -> str:
    if isinstance(tree, int):
        return str(tree)
    op, left, right = tree
    if op in "+*":
        return op.join(sorted(_wrapped(t, op) for t in _operands(tree, op)))
    return f"{_wrapped(left, op)}{op}{_wrapped(right, op)}"


def answer_key(answer: str) -> str | None:
    """The string a sample votes with, or None when it gave no answer."""
    if not isinstance(answer, str) or not answer.strip():
        return None
    found = expressions.find_expression(answer)
    tree = expressions.parse(found) if found is not None else None
    if isinstance(tree, tuple):
        return canonical_expression(tree)
    number = extract_number(answer)
    if number is not None:
        return str(number)
    return _SPACES.sub(" ", answer.strip().lower()).rstrip(".!?,;: ") or None


def tally(samples: Sequence[Completion]) -> dict[str, list[int]]:
    """Key -> indices of the samples that voted for it, keys in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, sample in enumerate(samples):
        key = answer_key(sample.answer)
        if key is not None:
            groups.setdefault(key, []).append(i)
    return groups


def majority_vote(samples: Sequence[Completion]) -> tuple[int, dict[str, int]]:
    """(index of the winning answer's first sample, votes per key).

    Ties go to the answer seen first; when every sample abstained the first sample stands.
    """
    groups = tally(samples)
    votes = {key: len(members) for key, members in groups.items()}
    if not groups:
        return 0, votes
    # max() keeps the first of equal maxima, and groups are in order of first appearance.
    winner = max(groups, key=lambda key: len(groups[key]))
    return groups[winner][0], votes


def leading_share(samples: Sequence[Completion]) -> float:
    """The winning answer's share of ALL samples: abstentions count as disagreement."""
    if not samples:
        return 0.0
    votes = majority_vote(samples)[1]
    return max(votes.values(), default=0) / len(samples)
