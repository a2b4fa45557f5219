"""The words word problems are made of: people, things to count, containers, money errands.

Kept apart from the generator so the story logic reads without a wall of nouns, and so more
vocabulary can be added without touching it. All plain ASCII.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    name: str
    subj: str  # "she"
    obj: str  # "her"
    poss: str  # "her"


def _people(names: str, subj: str, obj: str, poss: str) -> tuple[Person, ...]:
    return tuple(Person(n, subj, obj, poss) for n in names.split())


PEOPLE = _people(
    "Amy Bella Chloe Dana Emma Fatima Grace Hana Ines Julia Keiko Lena Maya Nora Olivia "
    "Priya Rosa Sara Tara Zoe", "she", "her", "her"
) + _people(
    "Ben Carlos David Eli Felix George Hugo Ivan Jack Kofi Liam Marco Noah Omar Pedro "
    "Raj Sam Tom Victor Wei", "he", "him", "his"
)


@dataclass(frozen=True)
class Thing:
    one: str  # "apple"
    many: str  # "apples"
    box: str  # what they come packed in: "bag"
    boxes: str
    edible: bool = False


THINGS = (
    Thing("apple", "apples", "bag", "bags", edible=True),
    Thing("cookie", "cookies", "tray", "trays", edible=True),
    Thing("egg", "eggs", "carton", "cartons", edible=True),
    Thing("orange", "oranges", "crate", "crates", edible=True),
    Thing("muffin", "muffins", "box", "boxes", edible=True),
    Thing("strawberry", "strawberries", "basket", "baskets", edible=True),
    Thing("marble", "marbles", "jar", "jars"),
    Thing("sticker", "stickers", "sheet", "sheets"),
    Thing("pencil", "pencils", "box", "boxes"),
    Thing("card", "cards", "pack", "packs"),
    Thing("book", "books", "shelf", "shelves"),
    Thing("shell", "shells", "bucket", "buckets"),
    Thing("stamp", "stamps", "album", "albums"),
    Thing("balloon", "balloons", "bag", "bags"),
    Thing("toy car", "toy cars", "box", "boxes"),
    Thing("flower", "flowers", "bunch", "bunches"),
)

# "{p} buys/finds ... more {many}": verbs that add to what someone has.
GAIN = ("buys {k} more {many}", "finds {k} more {many}", "gets {k} more {many} from {f}",
        "is given {k} more {many}", "picks up {k} more {many}")
# "{p} ... {k} ...": verbs that take away; the edible ones only for food.
LOSE = ("gives {k} {many} to {f}", "loses {k} of {poss} {many}", "sells {k} of the {many}",
        "gives away {k} {many}")
LOSE_EDIBLE = ("eats {k} of the {many}", "uses {k} {many} for a recipe")

SPEND = ("spends ${k} on lunch", "spends ${k} on a book", "pays ${k} for a movie ticket",
         "spends ${k} on a gift for {f}", "pays ${k} for bus fare", "spends ${k} on snacks")
EARN = ("earns ${k} walking dogs", "earns ${k} mowing lawns", "gets ${k} from {f}",
        "earns ${k} washing cars", "is paid ${k} for babysitting")
