"""Frozen config dataclasses filled from a TOML recipe and CLI flags, validated in one place.

Each entry point has one dataclass; its fields carry help text in `metadata["help"]`. A recipe
file and `--field value` flags both go through `build_config`, so a wrong name, type or choice
gets the same one-line error wherever it came from.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from ponder.errors import UserError


def field(default: Any, help: str, **kwargs) -> Any:
    """A dataclass field with help text (shown by --help and in error messages)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults so configs stay immutable")
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def _coerce(name: str, value: Any, typ: Any) -> Any:
    """Check or convert one value against a field's annotation; raise UserError naming it."""
    origin = get_origin(typ)
    if origin is Literal:
        choices = get_args(typ)
        if value not in choices:
            raise UserError(f"{name}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(typ) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            if type(None) in get_args(typ):
                return None
        return _coerce(name, value, options[0])
    if origin is tuple:
        (item, *_rest) = get_args(typ)
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise UserError(f"{name}: expected a list, got {value!r}")
        return tuple(_coerce(name, v.strip() if isinstance(v, str) else v, item) for v in items)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise UserError(f"{name}: expected true or false, got {value!r}")
    if typ in (int, float, str):
        if isinstance(value, bool) or (typ is str and not isinstance(value, str)):
            raise UserError(f"{name}: expected {typ.__name__}, got {value!r}")
        try:
            out = typ(value)
        except (TypeError, ValueError):
            raise UserError(f"{name}: expected {typ.__name__}, got {value!r}") from None
        if typ is int and isinstance(value, float) and value != out:
            raise UserError(f"{name}: expected an integer, got {value!r}")
        return out
    return value


def build_config(cls: type, recipe: Path | None = None, overrides: dict[str, Any] | None = None):
    """cls(**defaults <- recipe TOML <- overrides); unknown or invalid fields raise UserError."""
    values: dict[str, Any] = {}
    if recipe is not None:
        values.update(load_toml(recipe))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise UserError(f"unknown config field(s) {unknown} for {cls.__name__}; valid: {', '.join(sorted(fields))}")
    coerced = {k: _coerce(k, v, hints[k]) for k, v in values.items()}
    try:
        return cls(**coerced)
    except (TypeError, ValueError) as exc:
        raise UserError(f"invalid {cls.__name__}: {exc}") from None


def load_toml(path: Path) -> dict[str, Any]:
    """A recipe: flat keys, or keys grouped in [tables] whose names are only for the reader."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"recipe file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read recipe {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"recipe {path} is not valid TOML: {exc}") from None
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(value if isinstance(value, dict) else {key: value})
    return flat


_TYPE_LABELS = {int: "whole number", float: "number", str: "text", bool: "true or false"}


def type_label(typ: Any) -> str:
    """A field's type as help text says it: "whole number", "text or none", "list of text"."""
    origin = get_origin(typ)
    if origin is Literal:
        return "one of " + ", ".join(map(str, get_args(typ)))
    if origin in (typing.Union, types.UnionType):
        options = [type_label(a) for a in get_args(typ) if a is not type(None)]
        return " or ".join(options) + (" or none" if type(None) in get_args(typ) else "")
    if origin is tuple:
        return f"comma-separated list of {type_label(get_args(typ)[0])}"
    return _TYPE_LABELS.get(typ, getattr(typ, "__name__", str(typ)))


def add_field_flag(parser, f: dataclasses.Field, typ: Any, metavar: str | None = None, argparse_choices: bool = True,
                   **extra) -> None:
    """`--field` for one config field, defaulting to None (= keep the recipe's or the default).
    A boolean is `--field` / `--no-field`; a Literal lists its choices (checked by argparse, or
    with `argparse_choices=False` only named, left to the config's own one-line error); other
    help says the type."""
    flag, help_text = f"--{f.name.replace('_', '-')}", f.metadata.get("help", "")
    if typ is bool:
        parser.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction,
                            help=f"{help_text} (default: {'on' if f.default else 'off'})")
        return
    choices = get_args(typ) if get_origin(typ) is Literal and argparse_choices else None
    if extra.get("nargs") == "+" and get_origin(typ) is tuple:  # space-separated values, not one string
        label = f"one or more {type_label(get_args(typ)[0])}, "
    else:
        label = "" if choices else f"{type_label(typ)}, "
    parser.add_argument(flag, dest=f.name, default=None, choices=choices,
                        metavar=None if choices else (metavar or f.name.upper()),
                        help=f"{help_text} ({label}default: {_shown(f.default)})", **extra)


def _shown(default: Any) -> str:
    if isinstance(default, tuple):
        return ",".join(map(str, default)) or "none"
    return '""' if default == "" else str(default)


def add_config_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One `--field` flag per dataclass field, all defaulting to None (= keep recipe/default)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        add_field_flag(parser, f, hints[f.name])


def config_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    return {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}


def config_to_dict(cfg) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def config_defaults(cls: type) -> dict[str, Any]:
    """A config class's default values, as `config_to_dict` writes them."""
    return config_to_dict(cls())


def add_stage_flags(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    """One `--field` flag per field of a second config sharing a parser (`ponder train --stage`),
    skipping flags the parser already has: a shared flag (--steps, --lr) then carries the value
    for whichever stage runs. Help shows this stage's defaults."""
    fields = dataclasses.fields(cls)
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(title, "shared flags (--name, --steps, --lr, ...) take these defaults: "
                                      + ", ".join(f"{f.name}={_shown(f.default)}" for f in fields))
    for f in fields:
        try:
            # A shared parser parses every stage's flags before one stage's config checks them.
            add_field_flag(group, f, hints[f.name], argparse_choices=False)
        except argparse.ArgumentError:  # the parser has it already
            continue


def stray_flags(args: argparse.Namespace, cls: type, others: tuple[type, ...]) -> list[str]:
    """Flags that were set but belong only to other configs than `cls` (they would be ignored)."""
    own = {f.name for f in dataclasses.fields(cls)}
    theirs = {f.name for other in others for f in dataclasses.fields(other)} - own
    return sorted(f"--{name.replace('_', '-')}" for name in theirs if getattr(args, name, None) is not None)
