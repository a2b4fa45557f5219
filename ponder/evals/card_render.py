"""A card as a list of plain blocks (headings, paragraphs, tables, images, examples), rendered
to Markdown and to one self-contained HTML page (inline CSS, images as base64 data URIs, no
external resource of any kind, so the file can be mailed or archived as it is).

Keeping the document neutral means card.py decides WHAT is in a card once and both formats
show the same thing. Left out: any styling beyond a readable page.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Sequence, Union


@dataclass(frozen=True)
class Heading:
    level: int  # 1..3
    text: str


@dataclass(frozen=True)
class Para:
    text: str
    kind: str = "p"  # p | note | warning | verdict-pass | verdict-fail


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    file: str  # relative path the Markdown links (plots/NAME.png)
    alt: str
    png: bytes


@dataclass(frozen=True)
class Example:
    title: str
    fields: tuple[tuple[str, str], ...]  # (label, text) shown verbatim in a preformatted box


Block = Union[Heading, Para, Table, Image, Example]


# ---- Markdown -----------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_fence(text: str) -> str:
    fence = "```"
    while fence in text:  # a sample may hold a fence of its own
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def to_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            out.append(f"> {b.text}" if b.kind != "p" else b.text)
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in b.header) + " |",
                     "|" + "|".join("---" for _ in b.header) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, Image):
            out.append(f"![{b.alt}]({b.file})")
        elif isinstance(b, Example):
            parts = [f"**{b.title}**"]
            for label, text in b.fields:
                parts.append(f"*{label}:*\n\n{_md_fence(text)}")
            out.append("\n\n".join(parts))
    return "\n\n".join(out) + "\n"


# ---- HTML ---------------------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #1d1d1f; line-height: 1.45; }
h1 { border-bottom: 2px solid #333; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .88em; }
th, td { border: 1px solid #d0d0d0; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
.note { color: #555; font-size: .9em; border-left: 3px solid #bbb; padding-left: .7em; }
.warning { background: #fff4e5; border-left: 4px solid #e65100; padding: .5em .9em; }
.verdict-pass { background: #e7f6e7; border-left: 4px solid #2e7d32; padding: .6em .9em; }
.verdict-fail { background: #fdecea; border-left: 4px solid #c62828; padding: .6em .9em; }
.example { border: 1px solid #ddd; border-radius: 4px; padding: .5em .9em; margin: .8em 0; }
pre { white-space: pre-wrap; word-break: break-word; background: #f6f8fa; padding: .5em; font-size: .85em; }
img { max-width: 100%; }
"""


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def to_html(blocks: Sequence[Block], title: str) -> str:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{_e(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            cls = "" if b.kind == "p" else f' class="{_e(b.kind)}"'
            body.append(f"<p{cls}>{_e(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{_e(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Image):
            data = base64.b64encode(b.png).decode("ascii")
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{_e(b.alt)}"></figure>')
        elif isinstance(b, Example):
            fields = "".join(f"<div><b>{_e(label)}</b><pre>{_e(text)}</pre></div>" for label, text in b.fields)
            body.append(f'<div class="example"><h4>{_e(b.title)}</h4>{fields}</div>')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")
