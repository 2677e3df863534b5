"""The open ranking over 10^6 receipts: the pure formula (rewards/ranking.py), target under 3 s.

Run: .venv/bin/python bench/ranking.py [receipts]
Builds the receipts in memory first (not timed): 30 days of likes, shares, replies and some undos
by 50,000 actors on 100,000 objects (a fifth of them listings) of 5,000 makers. Then times
`build_ranking` + `encode_ranking` (what /rewards/ranking and `rewards rank` run once the logs are
verified) for each kind over 7d and all, and the same with every receipt given twice, as it is read
from the issuer's and the counterparty's logs. Prints seconds and the ratio to the 3 s target (< 1
meets it). Fetching and verifying the logs (two Ed25519 signatures per receipt) is not part of the
formula; see bench/rewards_append.py for verification rates.
"""

from __future__ import annotations

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from rewards.ranking import LogHead, build_ranking, encode_ranking
from rewards.receipt import Receipt

TARGET_SECONDS = 3.0
T0 = 1767225600
DAY = 86400
HOSTS = [f"shop{n}.example" for n in range(20)]
HEADS = [LogHead(f"{host}/rewards/v1", 50_000, "A" * 43 + "=", f"https://{host}/rewards/log") for host in HOSTS]


def make_receipts(count: int, seed: int = 7) -> list[Receipt]:
    """`count` distinct receipts with a long-tailed popularity, as a busy federation would log."""
    rng = random.Random(seed)
    makers = [f"https://{HOSTS[m % 20]}/users/maker{m}" for m in range(5_000)]
    objects = []
    for n in range(100_000):
        maker = makers[int(rng.paretovariate(1.2)) % len(makers)]
        host = maker.split("/")[2]
        path = f"listings/{n}" if n % 5 == 0 else f"users/{maker.rsplit('/', 1)[1]}/statuses/{n}"
        objects.append((f"https://{host}/{path}", maker))
    actors = [f"https://{HOSTS[a % 20]}/users/reader{a}" for a in range(50_000)]
    kinds = [("like", 1)] * 6 + [("announce", 2)] * 2 + [("reply", 3)] + [("undo-like", -1)]
    out = []
    for n in range(count):
        obj, maker = objects[int(rng.paretovariate(1.1)) % len(objects)]
        kind, points = kinds[rng.randrange(len(kinds))]
        out.append(Receipt(f"{HOSTS[n % 20]}/r/{n}", kind, actors[rng.randrange(len(actors))], obj, maker, points,
                           T0 - rng.randrange(30 * DAY)))
    return out


def timed(receipts: list[Receipt], kind: str, window: str) -> tuple[float, int]:
    started = time.perf_counter()
    body = encode_ranking(build_ranking(receipts, kind, window, HEADS))
    return time.perf_counter() - started, len(body)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    started = time.perf_counter()
    receipts = make_receipts(count)
    print(f"built {count:,} receipts in {time.perf_counter() - started:.1f} s (not timed)")
    worst = 0.0
    for label, data in (("distinct", receipts), ("each in two logs", receipts + receipts)):
        for kind in ("posts", "products", "makers"):
            for window in ("7d", "all"):
                seconds, size = timed(data, kind, window)
                if label == "distinct":
                    worst = max(worst, seconds)
                print(f"{label:<17} {kind:<9} {window:<4} {seconds:6.2f} s  {len(data) / seconds:>10,.0f} receipts/s"
                      f"  ({size:,} bytes of JSON)")
    print(f"ranking over {count:,} receipts: worst {worst:.2f} s, target < {TARGET_SECONDS:.0f} s, "
          f"ratio {worst / TARGET_SECONDS:.2f} ({'meets' if worst < TARGET_SECONDS else 'misses'} the target)")


if __name__ == "__main__":
    main()
