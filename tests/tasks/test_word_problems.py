import re
from collections import Counter

import pytest

from ponder.tasks.word_problems import WordProblemTask
from ponder.tasks.word_vocab import PEOPLE, THINGS

TASK = WordProblemTask()

# Phrases that mark each kind of step a story can take.
STEP_MARKERS = {
    "gain": r"(buys|finds|picks up|gets|is given) \d+ more",
    "lose": r"(gives|loses|sells|eats|uses) \d+ ",
    "gives away": r"gives away \d+",
    "packs": r"buys \d+ \w+ of .* with \d+ in each",
    "packs given": r"gives \d+ friends \d+ .* each",
    "times as many": r"\d+ times as many",
    "more than": r"\d+ more .* than",
    "fewer than": r"\d+ fewer .* than",
    "share": r"shares the .* equally among \d+ friends",
    "half": r"half of",
    "sell": r"sells each .* for \$\d+",
    "buy at a price": r"buys \d+ .* for \$\d+ each",
    "price": r"Each .* costs \$\d+",
    "pack into": r"packs the .* into \d+",
    "earn": r"(earns|is paid) \$\d+",
    "spend": r"(spends|pays) \$\d+",
    "money start": r"^\w+ has \$\d+\.",
    "packs start": r"^\w+ has \d+ \w+ of \w+",
}


@pytest.fixture(scope="module")
def problems():
    return [TASK.sample(seed, d) for d in range(1, 6) for seed in range(150)]


def test_every_kind_of_step_appears(problems):
    seen = {kind for kind, marker in STEP_MARKERS.items()
            if any(re.search(marker, p.prompt) for p in problems)}
    assert seen == set(STEP_MARKERS)


def test_names_and_things_vary(problems):
    names = Counter(p.prompt.split()[0] for p in problems)
    assert len(names) >= 30 and max(names.values()) < len(problems) / 10
    things = {t.many for t in THINGS if any(t.many in p.prompt for p in problems)}
    assert len(things) >= 12
    assert {person.name for person in PEOPLE} >= set(names)


def test_one_reference_line_per_step(problems):
    for p in problems:
        assert len(p.reference.splitlines()) == p.difficulty, p.reference


def test_answers_are_positive_integers(problems):
    for p in problems:
        assert p.answer.isdigit() and int(p.answer) > 0


def test_prompt_is_a_story_with_one_question(problems):
    for p in problems:
        assert p.prompt.endswith("?") and p.prompt.count("?") == 1
        assert p.prompt.startswith(p.prompt.split()[0] + " has ")
        # one sentence per step plus the opening and the question; packs take two steps
        sentences = p.prompt.count(". ") + 1
        assert 2 <= sentences <= p.difficulty + 2


def test_example():
    p = TASK.sample(0, 2)
    assert p.prompt == ("Sara has 20 cards. Sara is given 13 more cards. She sells 6 of the "
                        "cards. How many cards does Sara have now?")
    assert p.reference == ("add 13: 20+13: 0+3=3, 2+1=3 => 33.\n"
                           "take away 6: 33-6: 3-6+10=7 b1, 3-1-0=2 => 27.")
    assert p.answer == "27" and p.verify("Sara has 27 cards.") == 1.0
