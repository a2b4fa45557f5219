"""Templated grade-school word problems: a short story, then "how many ...?".

Difficulty is the number of arithmetic steps (1..5). A story starts with someone holding
things or money and each sentence changes the running amount: buying more, giving some away,
packs of k, n times as many, sharing equally, selling at a price, spending. Some sentences
take two steps (4 packs of 6 is 4*6, then adding that). The answer is always a positive
integer and every division is exact and by one digit.

The reference writes one line per step, "label: longhand.", reusing the longhand format of
`ponder.tasks.longhand`, so the model learns one way to do each operation across families.

Left out: fractions, percentages, units other than dollars, and unused distractor facts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Callable, Optional

from ponder.tasks import longhand
from ponder.tasks.answers import score_number
from ponder.tasks.base import Problem, check_difficulty, rng_for
from ponder.tasks.word_vocab import (EARN, GAIN, LOSE, LOSE_EDIBLE, PEOPLE, SPEND, THINGS,
                                     Person, Thing)

CAP = 999  # no running amount above this, which keeps each longhand step to one line
_EACH_FRIEND = Person("each friend", "each friend", "them", "their")


@dataclass(frozen=True)
class _State:
    value: int
    who: Person
    thing: Thing
    money: bool = False
    named: bool = True  # False once the subject is "each friend"
    fresh: bool = True  # the subject was just introduced, so name them, not "she"
    question: Optional[str] = None  # set by a step whose sentence needs its own question


# One step of the story: its sentence, its operations (label, a, op, b), the new state.
_Op = tuple[str, int, str, int]
_Step = tuple[str, list[_Op], _State]


def _subject(rng: random.Random, st: _State) -> str:
    name = st.who.name if (st.fresh or rng.random() < 0.5) else st.who.subj
    return name[0].upper() + name[1:]


def _friend(rng: random.Random, st: _State) -> Person:
    return rng.choice([p for p in PEOPLE if p.name != st.who.name])


def _fill(template: str, st: _State, k: int, friend: Person) -> str:
    return template.format(k=k, many=st.thing.many, f=friend.name, poss=st.who.poss)


def _gain(rng: random.Random, st: _State) -> Optional[_Step]:
    k = rng.randint(2, 40 if st.money else 30)
    if st.value + k > CAP:
        return None
    verb = _fill(rng.choice(EARN if st.money else GAIN), st, k, _friend(rng, st))
    return (f"{_subject(rng, st)} {verb}.", [(f"add {k}", st.value, "+", k)],
            replace(st, value=st.value + k, fresh=False))


def _lose(rng: random.Random, st: _State) -> Optional[_Step]:
    if st.value < 3:
        return None
    k = rng.randint(1, min(st.value - 1, 40))
    pool = SPEND if st.money else LOSE + (LOSE_EDIBLE if st.thing.edible else ())
    verb = _fill(rng.choice(pool), st, k, _friend(rng, st))
    return (f"{_subject(rng, st)} {verb}.", [(f"take away {k}", st.value, "-", k)],
            replace(st, value=st.value - k, fresh=False))


def _packs(rng: random.Random, st: _State, give: bool) -> Optional[_Step]:
    """Two steps: g packs of k (or k each to g friends), then add or take away the total."""
    g, k = rng.randint(2, 9), rng.randint(2, 12)
    t = st.thing
    if give:
        if g * k >= st.value:
            return None
        text = f"{_subject(rng, st)} gives {g} friends {k} {t.many} each."
        ops = [(f"{g} friends, {k} each", k, "*", g), ("take away", st.value, "-", g * k)]
        return text, ops, replace(st, value=st.value - g * k, fresh=False)
    if st.value + g * k > CAP:
        return None
    text = f"{_subject(rng, st)} buys {g} {t.boxes} of {t.many} with {k} in each {t.box}."
    ops = [(f"{g} {t.boxes} of {k}", k, "*", g), ("add", st.value, "+", g * k)]
    return text, ops, replace(st, value=st.value + g * k, fresh=False)


def _compare(rng: random.Random, st: _State) -> Optional[_Step]:
    """A friend has m times as many, k more or k fewer; the story follows the friend."""
    friend = _friend(rng, st)
    m, k = rng.randint(2, 5), rng.randint(2, 25)
    many, who = st.thing.many, st.who.name
    choices = [(f"{friend.name} has {k} more {many} than {who}.", (f"{k} more", "+", k))]
    if st.value * m <= CAP:
        choices.append((f"{friend.name} has {m} times as many {many} as {who}.",
                        (f"{m} times as many", "*", m)))
    if st.value > k:
        choices.append((f"{friend.name} has {k} fewer {many} than {who}.",
                        (f"{k} fewer", "-", k)))
    text, (label, op, b) = rng.choice(choices)
    value = {"+": st.value + b, "*": st.value * b, "-": st.value - b}[op]
    if value > CAP:
        return None
    return text, [(label, st.value, op, b)], replace(
        st, value=value, who=friend, fresh=True,
        question=f"How many {many} does {friend.name} have?")


def _divisor(rng: random.Random, value: int) -> int | None:
    options = [d for d in range(2, 10) if value % d == 0 and value // d >= 2]
    return rng.choice(options) if options else None


def _share(rng: random.Random, st: _State) -> Optional[_Step]:
    d = _divisor(rng, st.value)
    if d is None:
        return None
    money = "the money" if st.money else f"the {st.thing.many}"
    text = f"{_subject(rng, st)} shares {money} equally among {d} friends."
    return text, [(f"split {d} ways", st.value, "/", d)], replace(
        st, value=st.value // d, who=_EACH_FRIEND, named=False, fresh=False)


def _half(rng: random.Random, st: _State) -> Optional[_Step]:
    if st.value % 2 or st.value < 4:
        return None
    what = "money" if st.money else st.thing.many
    verb = "spends" if st.money else "gives away"
    return (f"{_subject(rng, st)} {verb} half of {st.who.poss} {what}.",
            [("half", st.value, "/", 2)],
            replace(st, value=st.value // 2, fresh=False))


def _sell(rng: random.Random, st: _State) -> Optional[_Step]:
    p = rng.randint(2, 9)
    if st.value * p > CAP:
        return None
    who = _subject(rng, st)
    return (f"{who} sells each {st.thing.one} for ${p}.", [(f"${p} each", st.value, "*", p)],
            replace(st, value=st.value * p, money=True, fresh=False,
                    question=f"How many dollars does {st.who.name} get?"))


def _buy(rng: random.Random, st: _State) -> Optional[_Step]:
    """Money: buy g things at $p each (two steps: the cost, then what is left)."""
    g, p = rng.randint(2, 9), rng.randint(2, 15)
    if g * p >= st.value:
        return None
    t = st.thing
    text = f"{_subject(rng, st)} buys {g} {t.many} for ${p} each."
    ops = [(f"{g} at ${p}", p, "*", g), ("pay", st.value, "-", g * p)]
    return text, ops, replace(st, value=st.value - g * p, fresh=False)


def _final_price(rng: random.Random, st: _State) -> Optional[_Step]:
    p = rng.randint(2, 9)
    if st.value * p > CAP:
        return None
    t = st.thing
    q = f"How many dollars do all of {st.who.name}'s {t.many} cost?" if st.named else (
        f"How many dollars do each friend's {t.many} cost?")
    return (f"Each {t.one} costs ${p}.", [(f"${p} each", st.value, "*", p)],
            replace(st, value=st.value * p, money=True, question=q))


def _final_pack(rng: random.Random, st: _State) -> Optional[_Step]:
    d = _divisor(rng, st.value)
    if d is None:
        return None
    t = st.thing
    return (f"{_subject(rng, st)} packs the {t.many} into {d} {t.boxes} with the same "
            f"number in each.", [(f"split {d} ways", st.value, "/", d)],
            replace(st, value=st.value // d, question=f"How many {t.many} are in each {t.box}?"))


@dataclass(frozen=True)
class _Kind:
    make: Callable[[random.Random, _State], Optional[_Step]]
    steps: int  # how many operations its sentence takes
    unit: str  # "items", "money" or "both": what the running amount must be
    needs_name: bool = False  # the sentence names the subject ("as many as Amy")
    last_only: bool = False  # the sentence asks its own question, so it ends the story


_KINDS = (
    _Kind(_gain, 1, "both"),
    _Kind(_lose, 1, "both"),
    _Kind(lambda rng, st: _packs(rng, st, give=False), 2, "items"),
    _Kind(lambda rng, st: _packs(rng, st, give=True), 2, "items"),
    _Kind(_compare, 1, "items", needs_name=True),
    _Kind(_share, 1, "both", needs_name=True),
    _Kind(_half, 1, "both"),
    _Kind(_sell, 1, "items"),
    _Kind(_buy, 2, "money", needs_name=True),
    _Kind(_final_price, 1, "items", last_only=True),
    _Kind(_final_pack, 1, "items", needs_name=True, last_only=True),
)


def _start(rng: random.Random, steps: int) -> tuple[str, list[_Op], _State]:
    """The opening sentence: things, packs of things (one step) or an amount of money."""
    who, thing = rng.choice(PEOPLE), rng.choice(THINGS)
    roll = rng.random()
    if roll < 0.25 and steps >= 2:
        g, k = rng.randint(2, 9), rng.randint(2, 12)
        text = f"{who.name} has {g} {thing.boxes} of {thing.many} with {k} in each {thing.box}."
        return text, [(f"{g} {thing.boxes} of {k}", k, "*", g)], _State(g * k, who, thing)
    if roll < 0.45:
        n = rng.randint(20, 200)
        return f"{who.name} has ${n}.", [], _State(n, who, thing, money=True)
    n = rng.randint(5, 60)
    return f"{who.name} has {n} {thing.many}.", [], _State(n, who, thing)


def _fits(kind: _Kind, st: _State, left: int) -> bool:
    unit_ok = kind.unit == "both" or (kind.unit == "money") == st.money
    return (unit_ok and kind.steps <= left and (st.named or not kind.needs_name)
            and (kind.steps == left or not kind.last_only))


def _story(rng: random.Random, steps: int) -> tuple[list[str], list[_Op], _State]:
    """Sentences and operations of a story with exactly `steps` operations."""
    while True:  # a dead end (nothing fits) is rare; start a fresh story
        text, ops, st = _start(rng, steps)
        sentences, last = [text], None
        while len(ops) < steps:
            st = replace(st, question=None)
            kinds = [k for k in _KINDS if _fits(k, st, steps - len(ops))]
            rng.shuffle(kinds)
            # The kind just used goes last, so stories rarely say the same thing twice.
            kinds.sort(key=lambda k: k is last)
            found = next(((k, s) for k in kinds if (s := k.make(rng, st)) is not None), None)
            if found is None:
                break
            last, (sentence, new_ops, st) = found
            sentences.append(sentence)
            ops += new_ops
        if len(ops) == steps:
            return sentences, ops, st


def _question(st: _State) -> str:
    if st.question:
        return st.question
    unit = "dollars" if st.money else st.thing.many
    return f"How many {unit} does {st.who.name} have now?"


def _reference(ops: list[_Op]) -> tuple[int, str]:
    lines, value = [], 0
    for label, a, op, b in ops:
        if op == "*":
            a, b = max(a, b), min(a, b)  # the longer number on top, as written by hand
        value, text = longhand.calc(a, op, b)
        lines.append(f"{label}: {text}.")
    return value, "\n".join(lines)


@dataclass(frozen=True)
class WordProblemTask:
    name: str = "word_problems"
    max_difficulty: int = 5

    def sample(self, seed: int, difficulty: int) -> Problem:
        check_difficulty(self.name, difficulty, self.max_difficulty)
        rng = rng_for(self.name, difficulty, seed)
        sentences, ops, st = _story(rng, difficulty)
        value, reference = _reference(ops)
        # The ops chain through the story's running amount, so the two must agree.
        assert value == st.value, (value, st.value)
        return Problem(
            task=self.name,
            difficulty=difficulty,
            seed=seed,
            prompt=" ".join(sentences + [_question(st)]),
            answer=str(value),
            reference=reference,
            _verifier=score_number,
        )
