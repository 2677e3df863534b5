"""`fedserver doctor [--json]`: one line per check, with the fix for each warning and problem."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os

from .doctor import OK, PROBLEM, WARNING, Check, exit_code, run_checks


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `doctor` to the top-level parser."""
    doctor = commands.add_parser(
        "doctor", help="check the configuration, data directory, database, public address (WebFinger) and clock")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")


def main(args: argparse.Namespace) -> int:
    """Run the checks (the configuration is one of them, so it is loaded here); exit 1 if any is a problem."""
    # The checks report what goes wrong; the database's "does not answer yet" lines would only repeat it.
    logging.getLogger().setLevel(logging.ERROR)
    checks = asyncio.run(run_checks(args.config, dict(os.environ)))
    if args.json:
        print(json.dumps({"ok": exit_code(checks) == 0, "checks": [c.as_dict() for c in checks]},
                         ensure_ascii=False, indent=2))
    else:
        for check in checks:
            print(_line(check))
        print(_summary(checks))
    return exit_code(checks)


def _line(check: Check) -> str:
    fix = f"; fix: {check.fix}" if check.fix and check.status != OK else ""
    return f"{check.status:<8} {check.name:<11} {check.message}{fix}"


def _summary(checks: list[Check]) -> str:
    problems = sum(c.status == PROBLEM for c in checks)
    warnings = sum(c.status == WARNING for c in checks)
    if not problems and not warnings:
        return "everything checked is ok"
    counts = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((problems, "problem"), (warnings, "warning")) if n]
    return f"{' and '.join(counts)}: each line says what to do"
