"""Attacks on `ponder serve`, one class per line: does the server resist them?

Each class of the security issue is replayed against a real server (the bundled model, uvicorn,
the app `ponder serve` builds) started in this process on a free loopback port with a throwaway
database. Nothing leaves 127.0.0.1; every loop is bounded in count and time.

One line per class:

    class | cases tried | failures (the attack succeeded) | what was checked

then `N passed, M failed` (a class with 0 failures passes). Measurements follow in [brackets],
the cases that failed after FAILED:, and errors the server logged meanwhile (an unhandled
exception) are noted in the class's line. /health is polled from a separate process, since a
stall that holds this process's GIL would stop an in-process poller's clock too. Class 7 adds
one case beyond the issue: the same megabyte as 30k tiny messages. The deploy gate (class 10) and
card honesty (class 12) are replayed on the card store, the gate and the card's own functions with
hand-made results in a throwaway $PONDER_CARD_DIR (class 12's cot case also through the main
server). This is a measurement, not a test: the script exits 0 whatever it finds, and 1 only if a
server cannot start.

Servers started (lazily, only those the chosen classes need):
  main      keys on, --max-body-bytes 3000000: classes 1 2 4 5 6 7 9 11 12
  renamed   the same database and sealing key, another --served-model-name: class 2
  locked    its own database, every key revoked: class 3
  edge      its own database, no keys (loopback quick start), --header-timeout 2: class 8

The classes live in bench/attacks/, grouped by theme, with the harness they share; this script
picks, runs and prints them.

    python bench/attack.py [--only 1,client-code,...] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

# bench/ is not a package: make bench/attacks importable whether this file runs as a script (whose
# directory Python puts first on sys.path, unless -P or PYTHONSAFEPATH) or is loaded some other way.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from attacks.api import openai_params  # noqa: E402
from attacks.card_honesty import card_honesty  # noqa: E402
from attacks.code_and_secrets import client_code, revoked_keys, sealed_replay  # noqa: E402
from attacks.gate import deploy_gate  # noqa: E402
from attacks.harness import SERVER_LOG, Result, ServerError, Servers  # noqa: E402
from attacks.limits import amplification, rejected_quota, tpm_burst  # noqa: E402
from attacks.load import abandoned_streams, event_loop_stalls, slow_connections  # noqa: E402


# ---- main ------------------------------------------------------------------------------------

CLASSES: list[tuple[str, str, Callable]] = [
    ("1", "client-code", client_code),
    ("2", "sealed-replay", sealed_replay),
    ("3", "revoked-keys", revoked_keys),
    ("4", "rejected-quota", rejected_quota),
    ("5", "tpm-burst", tpm_burst),
    ("6", "abandoned-streams", abandoned_streams),
    ("7", "event-loop", event_loop_stalls),
    ("8", "slow-connections", slow_connections),
    ("9", "amplification", amplification),
    ("10", "deploy-gate", deploy_gate),
    ("11", "openai-params", openai_params),
    ("12", "card-honesty", card_honesty),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="classes: " + ", ".join(f"{n}={slug}" for n, slug, _ in CLASSES))
    parser.add_argument("--only", default="",
                        help="comma-separated classes to run, by number or name (e.g. 1,tpm-burst)")
    parser.add_argument("--quick", action="store_true", help="fewer cases per class (smaller bursts, fewer scorers)")
    args = parser.parse_args(argv)
    wanted = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = wanted - {n for n, _, _ in CLASSES} - {s for _, s, _ in CLASSES}
    if unknown:
        parser.error(f"unknown class {', '.join(sorted(unknown))}; choose from "
                     + ", ".join(f"{n}={s}" for n, s, _ in CLASSES))
    for name in ("ponder", "uvicorn"):  # the servers' log lines would interleave with the table
        logging.getLogger(name).addHandler(SERVER_LOG)
        logging.getLogger(name).propagate = False
    passed = failed = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ponder-attack-") as root:
        servers = Servers(Path(root))
        try:
            for number, slug, run in CLASSES:
                if wanted and number not in wanted and slug not in wanted:
                    continue
                logged = len(SERVER_LOG.records)
                try:
                    result = run(servers, args.quick)
                except ServerError:
                    raise
                except Exception as error:  # a broken harness is reported, not hidden
                    result = Result(slug.replace("-", " "), "harness error")
                    result.case(False, f"{type(error).__name__}: {str(error)[:160]}")
                if (errors := SERVER_LOG.describe(logged)) is not None:
                    result.notes.append(errors)
                print(result.line(), flush=True)
                passed += not result.failed
                failed += bool(result.failed)
        except ServerError as error:
            print(f"attack: {error}", file=sys.stderr)
            return 1
        finally:
            servers.close()
    print(f"{passed} passed, {failed} failed ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
