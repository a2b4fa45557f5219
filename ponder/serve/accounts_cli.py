"""`ponder keys ...` and `ponder usage`: manage API keys and read the ledger from a shell.

Thin, like the rest of the CLI: parse flags, call KeyStore / Ledger, print. Each handler opens
the database, does one thing and closes it, so it is safe to run while the server is up.
"""

from __future__ import annotations

import argparse
import json
from contextlib import closing
from datetime import datetime, timezone

from ponder.serve.db import DEFAULT_DB, connect
from ponder.serve.keys import KeyLimits, KeyStore
from ponder.serve.ledger import Ledger


def register(subparsers) -> None:
    """Add `keys` (create / list / revoke) and `usage` to an argparse subparsers object."""
    keys = subparsers.add_parser("keys", help="create, list and revoke API keys for `ponder serve`")
    actions = keys.add_subparsers(dest="keys_action", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="make a key and print its secret (once)")
    create.add_argument("name", metavar="NAME", help="who or what the key is for")
    for flag, what in (("--rpm", "requests per minute"), ("--tpm", "tokens per minute (reasoning included)"),
                       ("--per-day", "requests in any 24 hours"), ("--per-week", "requests in any 7 days")):
        create.add_argument(flag, type=int, default=None, metavar="N", help=f"limit: {what} (default: none)")
    _add_db_flag(create)
    create.set_defaults(func=cmd_keys_create)

    listing = actions.add_parser("list", help="show every key, revoked ones too")
    _add_db_flag(listing)
    listing.set_defaults(func=cmd_keys_list)

    revoke = actions.add_parser("revoke", help="stop a key from working, at once")
    revoke.add_argument("key", metavar="ID_OR_PREFIX", help="key id (key_...) or displayed prefix (pk-...)")
    _add_db_flag(revoke)
    revoke.set_defaults(func=cmd_keys_revoke)

    usage = subparsers.add_parser("usage", help="requests, tokens and cost from the server's ledger")
    usage.add_argument("--key", default=None, metavar="K", help="only this key (id or name)")
    usage.add_argument("--by", choices=["key", "day", "model"], default="key", help="group rows by (default: key)")
    usage.add_argument("--json", action="store_true", help="print a JSON list")
    _add_db_flag(usage)
    usage.set_defaults(func=cmd_usage)


def _add_db_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=str(DEFAULT_DB), metavar="PATH",
                        help=f"the serve database (default: {DEFAULT_DB})")


def cmd_keys_create(args: argparse.Namespace) -> int:
    limits = KeyLimits(rpm=args.rpm, tpm=args.tpm, per_day=args.per_day, per_week=args.per_week)
    with closing(connect(args.db)) as conn:
        secret, key = KeyStore(conn).create(args.name, limits)
    print(f"created {key.id} ({key.name}), limits: {key.limits.describe()}")
    print(secret)
    print("This secret will not be shown again: store it now. Only its hash is kept.")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    with closing(connect(args.db)) as conn:
        keys = KeyStore(conn).list()
    if not keys:
        print("no keys yet; make one with `ponder keys create NAME`")
        return 0
    rows = [[k.id, k.name, k.prefix, _when(k.created_at), _when(k.revoked_at), k.limits.describe()] for k in keys]
    print(_table(["id", "name", "prefix", "created (UTC)", "revoked (UTC)", "limits"], rows))
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    with closing(connect(args.db)) as conn:
        store = KeyStore(conn)
        key = store.find(args.key)
        if key.revoked_at is not None:
            print(f"{key.id} ({key.name}) was already revoked at {_when(key.revoked_at)} UTC")
            return 0
        key = store.revoke(key.id)
    print(f"revoked {key.id} ({key.name}, {key.prefix}...); requests with it are refused from now on")
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    with closing(connect(args.db)) as conn:
        report = Ledger(conn).report(key=args.key, by=args.by)
    if args.json:
        print(json.dumps(report))
        return 0
    if not report:
        print("no usage recorded yet")
        return 0
    head = [args.by + (" (UTC)" if args.by == "day" else "")] + (["name"] if args.by == "key" else [])
    head += ["requests", "prompt", "completion", "reasoning", "cost", "mean latency"]
    rows = []
    for r in report:
        group = r["group"] if r["group"] is not None else "(no key)"
        rows.append([group] + ([r["name"] or "-"] if args.by == "key" else []) + [
            r["requests"], r["prompt_tokens"], r["completion_tokens"], r["reasoning_tokens"],
            f"{r['cost']:.6f}", f"{r['mean_latency_s']:.3f}s",
        ])
    print(_table(head, rows))
    return 0


def _when(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _table(head: list[str], rows: list[list]) -> str:
    cells = [head] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)
