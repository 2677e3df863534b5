"""Fuzzing the inbound parsers: 100,000 generated cases, and how each parser answered them.

Run: .venv/bin/python bench/fuzz.py [--cases 100000] [--jobs N] [--only TEXT] [--seed N]
The targets and strategies are tests/support/fuzzing.py's (tests/unit/test_fuzz_parsers.py runs
them a few hundred times each): inbox bodies, ActivityPub documents, ids, draft-cavage and
RFC 9421 signatures, digests, structured fields and HTTP dates, each fed fully random input and
near-valid input with mutations. --cases is split evenly over the parsers; each parser runs in its
own process (--jobs at once) with Hypothesis's generate phase only (no shrinking, no example
database), and Hypothesis never repeats a case, so parsers with a small input space may stop short.
Prints per parser: cases run, accepted, refused with the documented exception, any other exception
(must be 0) and cases per second (generation included); then the totals and, for any unexpected
exception, its first cases. Exits 1 if any parser raised something undocumented.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from tests.support import fuzzing

SHOWN_PER_PARSER = 3  # unexpected cases printed for each parser


@dataclass
class Result:
    """How one parser answered its cases."""

    name: str
    counts: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    unexpected: list[str] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return sum(self.counts.values())


def run_target(index: int, cases: int, seed_value: int | None) -> Result:
    """Run `cases` generated cases through target `index`; count the answers, keep the first surprises."""
    target = fuzzing.TARGETS[index]
    result = Result(target.name)
    fuzzing.cavage_requests(), fuzzing.rfc9421_requests()  # the RSA key is made outside the timing

    @settings(max_examples=cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def run(case: object) -> None:
        try:
            result.counts[fuzzing.outcome(target, case)] += 1
        except Exception as exc:  # noqa: BLE001 - counted and shown; the run goes on, so one bug hides no other
            result.counts["unexpected"] += 1
            if len(result.unexpected) < SHOWN_PER_PARSER:
                result.unexpected.append(f"{type(exc).__name__}: {str(exc)[:160]}\n      case: {repr(case)[:400]}")

    if seed_value is not None:
        run = seed(seed_value)(run)
    start = time.perf_counter()
    run()
    result.seconds = time.perf_counter() - start
    return result


def main() -> int:
    """Fuzz every selected parser and print the table; 1 if anything undocumented was raised."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000, help="generated cases in all, split over the parsers")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parsers fuzzed at once (processes)")
    parser.add_argument("--only", default="", help="fuzz only the parsers whose name contains this text")
    parser.add_argument("--seed", type=int, help="Hypothesis seed, to repeat a run")
    args = parser.parse_args()
    chosen = [i for i, target in enumerate(fuzzing.TARGETS) if args.only.lower() in target.name.lower()]
    if not chosen:
        parser.error(f"no parser name contains {args.only!r}")
    each = math.ceil(args.cases / len(chosen))
    print(f"fuzzing {len(chosen)} parsers, {each:,} cases each ({each * len(chosen):,} in all), "
          f"{min(args.jobs, len(chosen))} processes, seed {args.seed if args.seed is not None else 'random'}")
    print(f"  {'parser':<38} {'cases':>8} {'accepted':>9} {'refused':>9} {'unexpected':>10} {'cases/s':>8}")
    start = time.perf_counter()
    results = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for result in pool.map(run_target, chosen, [each] * len(chosen), [args.seed] * len(chosen)):
            results.append(result)
            print(f"  {result.name:<38} {result.cases:>8,} {result.counts['accepted']:>9,} "
                  f"{result.counts['refused']:>9,} {result.counts['unexpected']:>10,} "
                  f"{result.cases / result.seconds:>8,.0f}", flush=True)
    wall = time.perf_counter() - start
    total, unexpected = sum(r.cases for r in results), sum(r.counts["unexpected"] for r in results)
    accepted, refused = sum(r.counts["accepted"] for r in results), sum(r.counts["refused"] for r in results)
    busy = sum(r.seconds for r in results)
    print(f"  {'total':<38} {total:>8,} {accepted:>9,} {refused:>9,} {unexpected:>10,} {total / busy:>8,.0f}")
    print(f"time: {wall:.1f} s wall, {busy:.1f} s in the parsers' processes; {total / wall:,.0f} cases/s overall")
    for result in results:
        for line in result.unexpected:
            print(f"UNEXPECTED in {result.name}: {line}")
    if total < args.cases:
        print(f"note: {args.cases - total:,} fewer cases than asked (Hypothesis ran out of new inputs for a parser)")
    print("result: " + ("no exception other than the documented refusals" if not unexpected
                        else f"{unexpected:,} unexpected exceptions"))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
