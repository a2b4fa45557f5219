"""Reasoning summaries (`reasoning.summary`) that cannot leak the hidden chain of thought.

The summary is written from counted features only: how many steps, which kinds of operation
appear, how often the model checked or revised itself, whether it concluded, and the token
count. No word, number or sentence of the reasoning is ever copied, so the only numbers a
summary can show are those counts -- never an intermediate result. This works on any text:
ponder's terse arithmetic traces and a large model's free-form English alike.

Left out: model-written summaries (a second model pass that could paraphrase, and so leak).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from ponder.errors import UserError

SummaryStyle = Literal["auto", "concise", "detailed"]
STYLES: tuple[str, ...] = get_args(SummaryStyle)
AUTO_DETAILED_FROM = 200  # reasoning tokens at which `auto` switches from concise to detailed
EMPTY = "Answered without reasoning."
# Under any `leaks` window, so it is safe whatever the reasoning says (see summarize_reasoning).
LAST_RESORT = "Reasoned."

_NUM = r"(?:\d|\))"  # an operand that is clearly numeric: a digit or a closing bracket
_OPEN = r"(?:\d|\()"
# Symbols need a numeric operand on one side so prose (markdown *emphasis*, and/or, well-known)
# does not count as arithmetic; words are whole words so "address" is not "add".
OPERATIONS: dict[str, tuple[str, re.Pattern[str]]] = {
    name: (verb, re.compile(pattern, re.IGNORECASE))
    for name, verb, pattern in (
        ("multiplication", "multiplied",
         rf"{_NUM}\s*[*×·]\s*[\w(]|[\w)]\s*[*×·]\s*{_OPEN}|\d\s+x\s+\d"
         r"|\btimes\b|\bmultipl(?:y|ies|ied|ying|ication)\b|\bproducts?\b"),
        ("division", "divided",
         rf"{_NUM}\s*[/÷]\s*[\w(]|[\w)]\s*[/÷]\s*{_OPEN}|\bdivid(?:e|es|ed|ing)\b|\bdivision\b"
         r"|\bquotients?\b"),
        ("addition", "added",
         r"[\w)]\s*\+\s*[\w(]|\bplus\b|\badd(?:s|ed|ing|ition)?\b|\bsum(?:s|med)?\b"),
        ("subtraction", "subtracted",
         rf"{_NUM}\s*[-−–]\s*{_OPEN}|\bminus\b|\bsubtract(?:s|ed|ing|ion)?\b|\bdifference\b"),
        ("comparison", "compared",
         r"[\w)]\s*(?:<=?|>=?|≤|≥|!=|≠)\s*[\w(]|\b(?:greater|less|larger|smaller|bigger)\s+than\b"
         r"|\bcompar(?:e|es|ed|ing|ison)\b"),
    )
}
CHECK = re.compile(
    r"\b(?:re-?|double[- ]?)?check(?:s|ed|ing)?\b|\bverif(?:y|ies|ied|ying|ication)\b"
    r"|\bconfirm(?:s|ed|ing)?\b|\bsanity\b",
    re.IGNORECASE,
)
REVISION = re.compile(
    r"\bwait\b|\bactually\b|\bmistakes?\b|\boops\b|\bwrong\b|\bcorrection\b|\bscratch that\b"
    r"|\bon second thought\b|\blet me re(?!-?check)\w*",
    re.IGNORECASE,
)
# A conclusion is a result stated in the last step, or an explicit answer anywhere.
CONCLUDES_LAST = re.compile(
    r"=\s*\S|\b(?:so|therefore|thus|hence|answer|final(?:ly)?|yes|correct|done)\b", re.IGNORECASE
)
CONCLUDES_ANYWHERE = re.compile(
    r"\b(?:the answer is|final answer|in conclusion|to conclude)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class ReasoningFeatures:
    """What a summary may say about a chain of thought: counts and kinds, never content."""

    steps: int  # non-empty lines
    operations: tuple[str, ...]  # keys of OPERATIONS, in order of first appearance
    checks: int  # times it checked or verified its work
    revisions: int  # times it caught itself ("wait", "actually", "let me redo")
    concluded: bool


def reasoning_features(reasoning: str) -> ReasoningFeatures:
    lines = [line for line in reasoning.splitlines() if line.strip()]
    first_seen = {
        name: m.start() for name, (_, pattern) in OPERATIONS.items() if (m := pattern.search(reasoning))
    }
    concluded = bool(lines) and (
        bool(CONCLUDES_LAST.search(lines[-1])) or bool(CONCLUDES_ANYWHERE.search(reasoning))
    )
    return ReasoningFeatures(
        steps=len(lines),
        operations=tuple(sorted(first_seen, key=first_seen.__getitem__)),
        checks=len(CHECK.findall(reasoning)),
        revisions=len(REVISION.findall(reasoning)),
        concluded=concluded,
    )


def summarize_reasoning(reasoning: str, style: SummaryStyle, reasoning_tokens: int) -> str:
    """A short summary of hidden reasoning for `reasoning.summary`; see the module docstring."""
    if style not in STYLES:
        raise UserError(f"reasoning.summary must be one of {', '.join(STYLES)}; got {style!r}")
    if reasoning_tokens < 0:
        raise ValueError(f"reasoning_tokens must be >= 0, got {reasoning_tokens}")
    if not reasoning.strip():
        return EMPTY
    if style == "auto":
        style = "concise" if reasoning_tokens < AUTO_DETAILED_FROM else "detailed"
    features = reasoning_features(reasoning)
    write = _concise if style == "concise" else _detailed
    # The templates copy nothing, but a reasoning that happens to quote them (a model
    # discussing its own summaries) would still match `leaks`; fall back rather than argue.
    for summary in (write(features, reasoning_tokens), f"Thought for {_count(reasoning_tokens, 'token')}."):
        if not leaks(summary, reasoning):
            return summary
    return LAST_RESORT


def _concise(f: ReasoningFeatures, tokens: int) -> str:
    doing = _join([OPERATIONS[op][0] for op in f.operations], "and") or "reasoned"
    after = (["revised its approach"] if f.revisions else []) + (["checked the result"] if f.checks else [])
    tail = f", then {' and '.join(after)}" if after else ""
    if not f.concluded:
        tail += " but stopped before a conclusion" if after else ", stopping before a conclusion"
    return f"Thought for {_count(tokens, 'token')}: {doing} in {_count(f.steps, 'step')}{tail}."


def _detailed(f: ReasoningFeatures, tokens: int) -> str:
    sentences = [f"Thought for {_count(tokens, 'token')} over {_count(f.steps, 'step')}."]
    if f.operations:
        sentences.append(f"It {_join([OPERATIONS[op][0] for op in f.operations], 'then')}.")
    else:
        sentences.append("It reasoned without explicit arithmetic.")
    done = []
    if f.checks:
        done.append(f"checked its work {_times(f.checks)}")
    if f.revisions:
        done.append(f"revised its approach {_times(f.revisions)}")
    sentences.append(f"It {' and '.join(done)}." if done else "It did not check or revise its work.")
    sentences.append("It reached a conclusion." if f.concluded else "It stopped before reaching a conclusion.")
    return " ".join(sentences)


def _join(words: list[str], conjunction: str) -> str:
    """["a", "b", "c"] -> "a, b and c" (or "a, then b, then c" for "then")."""
    if conjunction == "then" or len(words) < 2:
        return ", then ".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def leaks(summary: str, reasoning: str, min_chars: int = 12) -> bool:
    """True if any stretch of `reasoning` of `min_chars` or more characters (whitespace collapsed,
    case ignored) appears in `summary`: the test that a summary copied nothing."""
    if min_chars < 1:
        raise ValueError(f"min_chars must be >= 1, got {min_chars}")
    said, hidden = _collapse(summary), _collapse(reasoning)
    # Any longer shared stretch contains a shared one of exactly min_chars, so windows suffice.
    windows = {said[i : i + min_chars] for i in range(len(said) - min_chars + 1)}
    return any(hidden[i : i + min_chars] in windows for i in range(len(hidden) - min_chars + 1))


def _collapse(text: str) -> str:
    return " ".join(text.split()).casefold()
