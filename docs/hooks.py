"""The docs' reference pages, generated from the code at build time so they never drift.

MkDocs runs this as a hook (mkdocs.yml: `hooks:`): `on_files` adds three pages that exist only in
the build, never in docs/:

- reference/configs.md: every field of the config dataclasses (name, flag, type, default, help);
- reference/cli.md: the `--help` text of `ponder` and of every subcommand, from `build_parser()`;
- reference/strategies.md: the test-time strategies and their parameters, from the registry.

Run it as a script to see the pages without MkDocs: `python docs/hooks.py [OUT_DIR]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import os
import re
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the checkout's ponder, even where it is not installed
    sys.path.insert(0, str(ROOT))

# (dataclass, the `ponder` subcommand whose flags set it, where its values also come from)
CONFIGS = (
    ("ponder.rl.sft_config:SFTConfig", "train",
     "The supervised warm start (`ponder train --stage sft`, and the first stage of plain `ponder train`). "
     "A TOML recipe (`--recipe`, e.g. `recipes/default.toml`) takes the same names; flags win."),
    ("ponder.rl.rl_config:RLConfig", "train",
     "RL on verifiable rewards (`ponder train --stage rl`, and the second stage of plain `ponder train`). "
     "A TOML recipe (`--recipe`, or `--rl-recipe` with both stages, e.g. `recipes/rl.toml`) takes the same "
     "names; flags win."),
    ("ponder.prm.config:PRMConfig", "train",
     "The process reward model (`ponder train --stage prm`). A TOML recipe takes the same names; flags win."),
    ("ponder.serve.settings:ServeConfig", "serve",
     "`ponder serve`. A TOML file (`--config FILE`) takes the same names; flags win."),
    ("ponder.evals.card_config:CardConfig", "card",
     "`ponder card`. Defaults come from `ponder/evals/card.toml`; `--config FILE` and flags override them."),
)
HELP_WIDTH = "100"  # argparse wraps help to $COLUMNS; fixed, so the page does not depend on the terminal


def _load(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _cell(text: object) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else "(empty)"
    if value == "":
        return '""'
    return str(value)


def _groups(cls: type) -> dict[str, str]:
    """Field name -> the group comment above it in the class body (`# --- data ---`, `# Where`).

    A one-line comment (or a `# --- name ---` line) heads a group; a longer comment block is a
    note about the next field, not a group name, and is skipped."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    groups: dict[str, str] = {}
    current, block = "", []
    for line in lines[1:]:
        comment = re.match(r"^    #\s?(.*)$", line)
        if comment:
            block.append(comment.group(1).strip())
            continue
        field = re.match(r"^    (\w+)\s*:", line)
        if field and block:
            dashed = [b for b in block if re.fullmatch(r"-+\s*.+?\s*-+", b)]
            if dashed:
                current = dashed[0].strip("- ").strip()
            elif len(block) == 1:
                current = block[0]
        if field:
            groups[field.group(1)] = current
        block = []
    return groups


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def configs_page() -> str:
    from ponder.cli import build_parser
    from ponder.config import type_label

    commands = _subparsers(build_parser())
    out = ["# Configuration reference", "",
           "Generated at build time from the config dataclasses (`docs/hooks.py`), so it always matches the "
           "code. Each entry point has one frozen dataclass; its fields are validated the same way whether they "
           "come from a TOML file or a flag, and a wrong name, type or choice is one line naming the field and "
           "what is valid (exit 2). A boolean flag is `--name` / `--no-name`.", ""]
    for path, command, where in CONFIGS:
        cls = _load(path)
        hints = typing.get_type_hints(cls)
        flags = _flags(commands[command])
        groups = _groups(cls)
        module = path.partition(":")[0]
        out += [f"## {cls.__name__}", "", f"`{module}.{cls.__name__}`. {where}", ""]
        doc = inspect.getdoc(cls) or ""
        if doc and not doc.startswith(f"{cls.__name__}("):  # a real docstring, not dataclass's signature
            out += [doc, ""]
        group = None
        for f in dataclasses.fields(cls):
            if groups.get(f.name, "") != group:
                group = groups.get(f.name, "")
                if group:
                    out += ["", f"**{_cell(group)}**", ""]
                out += ["| field | flag | type | default | what it does |", "|---|---|---|---|---|"]
            flag = f"--{f.name.replace('_', '-')}"
            flag_cell = f"`{flag}`" if flag in flags else "(file only)"
            default = f.default if f.default is not dataclasses.MISSING else "(required)"
            out.append(f"| `{f.name}` | {flag_cell} | {_cell(type_label(hints[f.name]))} | "
                       f"`{_cell(_default(default))}` | {_cell(f.metadata.get('help', ''))} |")
        out.append("")
    return "\n".join(out) + "\n"


def _walk(parser: argparse.ArgumentParser, name: str):
    yield name, parser
    for sub_name, sub in _subparsers(parser).items():
        yield from _walk(sub, f"{name} {sub_name}")


def cli_page() -> str:
    from ponder.cli import build_parser

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    try:
        commands = list(_walk(build_parser(), "ponder"))
        out = ["# CLI reference", "",
               "Generated at build time from `ponder.cli.build_parser()` (`docs/hooks.py`): each block is "
               "exactly what `--help` prints. Every command exits 2 on a user error, with one line naming "
               "the problem.", ""]
        out += [f"- [`{name}`](#{name.replace(' ', '-')})" for name, _ in commands[1:]]
        out.append("")
        for name, parser in commands:
            out += [f"## `{name}` {{#{name.replace(' ', '-')}}}", "", "```text", parser.format_help().rstrip(),
                    "```", ""]
        return "\n".join(out)
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved


def strategies_page() -> str:
    from ponder.think.strategy import DEFAULT_STRATEGY, STRATEGIES, describe_params

    out = ["# Strategy reference", "",
           "Generated at build time from the strategy registry (`ponder.think.strategy.STRATEGIES`). "
           "Parameters are given with `--param KEY=VALUE` on `ponder ask`, `strategy_params` in a server "
           "request, or a dict in `make_strategy(name, params)`. A value out of range, or a parameter the "
           "strategy lacks, is one line listing what is valid. What each strategy does: "
           "[the think guide](../guides/think.md#strategies).", ""]
    for name, factory in STRATEGIES.items():
        title = f"## `{name}`" + (" (the default)" if name == DEFAULT_STRATEGY else "")
        out += [title, ""]
        doc = (inspect.getdoc(factory) or "").split("\n\n")[0]
        if doc and not doc.startswith(f"{factory.__name__}("):
            out += [doc, ""]
        lines = describe_params(name)
        if not lines:
            out += ["No parameters.", ""]
            continue
        out += ["| parameter | type and default | what it does |", "|---|---|---|"]
        for line in lines:
            param, _, rest = line.partition(": ")
            kind, _, help_text = rest.partition(" - ")
            out.append(f"| `{param}` | {_cell(kind)} | {_cell(help_text)} |")
        out.append("")
    return "\n".join(out)


PAGES = {
    "reference/configs.md": configs_page,
    "reference/cli.md": cli_page,
    "reference/strategies.md": strategies_page,
}


def on_files(files, config):
    from mkdocs.structure.files import File

    for uri, render in PAGES.items():
        files.append(File.generated(config, uri, content=render()))
    return files


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    for uri, render in PAGES.items():
        text = render()
        if target is None:
            print(text)
        else:
            (target / uri).parent.mkdir(parents=True, exist_ok=True)
            (target / uri).write_text(text)
