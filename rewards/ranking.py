"""The open ranking (formula v1): a pure function of verified receipts, published so anyone can recompute it.

Input: the receipts read from verified log entries up to given checkpoints; nothing else
(no clock, no local counters, no follower counts), so two machines holding the same
checkpoints print byte-identical JSON.

Formula v1, in order:
1. The same receipt sits in two logs (issuer and counterparty): receipts are taken once.
   Two different receipts with the same id contradict each other and both are dropped.
2. Only the author-earning kinds count: like, announce, reply and their undo-* reversals,
   with the points the receipt carries (so self-interaction, zero by policy, counts nothing;
   a same-instance receipt of policy 2 counts with its weighted points). The curation
   shares (curate-share, curate-reply) credit the sharer or replier, not the object's
   author: they do not count, so a share adds to an object once, through its announce.
3. The window ends at `as_of`, the time of the newest counted receipt (never the reader's
   clock); a receipt counts when `as_of - window < time <= as_of` (`all`: every receipt).
4. An actor's contribution to one object is the sum of its receipts' points there, clamped
   to [0, actor_cap]: an undo cannot push below zero, one person cannot carry an object.
5. posts and products score per object (an object whose URL path is `/listings/<digits>` is a
   product, anything else a post); makers score per beneficiary, the sum over their objects.
6. Order: score descending, then distinct actors descending, then the URL ascending; the
   first `limit` entries with a positive score are listed.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rewards.receipt import Receipt

FORMULA_NAME = "fedserver/open-ranking"
FORMULA_VERSION = 1
RANK_KINDS = ("posts", "products", "makers")
WINDOWS = {"1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "all": None}
DEFAULT_WINDOW = "7d"
COUNTED_KINDS = ("like", "announce", "reply", "undo-like", "undo-announce", "undo-reply")
ACTOR_CAP = 6
LIMIT = 100
_LISTING = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#]+/listings/[0-9]{1,18}")
_COUNTED = frozenset(COUNTED_KINDS)


class RankingError(ValueError):
    """A ranking request names an unknown kind or window."""


@dataclass(frozen=True)
class LogHead:
    """One log a ranking used: its checkpoint's origin, size and root (base64), and its tlog-tiles URL."""

    origin: str
    size: int
    root: str
    url: str

    def as_dict(self) -> dict:
        """As listed in a ranking."""
        return {"origin": self.origin, "size": self.size, "root": self.root, "url": self.url}


def formula() -> dict:
    """The formula's name, version and parameters, as published at /rewards/policy."""
    return {
        "name": FORMULA_NAME,
        "version": FORMULA_VERSION,
        "kinds": list(RANK_KINDS),
        "windows": {name: seconds for name, seconds in WINDOWS.items()},
        "default_window": DEFAULT_WINDOW,
        "counted_receipts": list(COUNTED_KINDS),
        "actor_cap": ACTOR_CAP,
        "limit": LIMIT,
        "window_end": "as_of: the time of the newest counted receipt in the logs used",
        "score": "sum over actors of min(actor_cap, max(0, the actor's points on the object in the window))",
        "order": ["score descending", "actors descending", "url ascending"],
        "products": "objects whose URL path is /listings/<digits>; every other object is a post",
        "duplicates": "a receipt in two logs counts once; different receipts sharing an id are dropped",
    }


def check_request(kind: str, window: str) -> tuple[str, int | None]:
    """The kind and the window in seconds (None for `all`); RankingError names what is accepted."""
    if kind not in RANK_KINDS:
        raise RankingError(f"unknown ranking kind {kind!r}; expected one of {', '.join(RANK_KINDS)}")
    if window not in WINDOWS:
        raise RankingError(f"unknown ranking window {window!r}; expected one of {', '.join(WINDOWS)}")
    return kind, WINDOWS[window]


def is_product(object_url: str) -> bool:
    """True when the receipt's object is a storefront listing (`<base>/listings/<id>`)."""
    return _LISTING.fullmatch(object_url) is not None


def unique_receipts(receipts: Iterable[Receipt]) -> list[Receipt]:
    """Each receipt once; ids claimed by two different receipts are dropped (order-independent)."""
    by_id: dict[str, Receipt | None] = {}
    for r in receipts:
        seen = by_id.get(r.id, r)
        by_id[r.id] = r if seen is r or seen == r else None
    return [r for r in by_id.values() if r is not None]


def counted(receipts: Iterable[Receipt]) -> list[Receipt]:
    """The receipts formula v1 counts (unique, author-earning kinds and their reversals)."""
    return [r for r in unique_receipts(receipts) if r.kind in _COUNTED]


def as_of(receipts: Iterable[Receipt]) -> int:
    """The window's end: the newest counted receipt's time (0 when there is none)."""
    return max((r.time for r in receipts), default=0)


def _contributions(receipts: list[Receipt], start: int | None, end: int, products: bool | None
                   ) -> dict[tuple[str, str, str], int]:
    """Points per (object, beneficiary, actor) in the window, before clamping."""
    sums: dict[tuple[str, str, str], int] = defaultdict(int)
    low = -1 if start is None else start
    product: dict[str, bool] = {}  # objects repeat: classify each once
    for r in receipts:
        if not low < r.time <= end:
            continue
        if products is not None:
            found = product.get(r.object)
            if found is None:
                found = product[r.object] = is_product(r.object)
            if found is not products:
                continue
        sums[(r.object, r.beneficiary, r.actor)] += r.points
    return sums


def _scores(sums: dict[tuple[str, str, str], int], makers: bool) -> dict[str, list]:
    """[score, actors, the other URL or the set of objects] per ranked URL."""
    table: dict[str, list] = {}
    actors: dict[str, set[str]] = defaultdict(set)
    for (obj, beneficiary, actor), points in sums.items():
        if points <= 0:
            continue
        share = min(points, ACTOR_CAP)
        key = beneficiary if makers else obj
        row = table.get(key)
        if row is None:
            row = table[key] = [0, 0, set() if makers else beneficiary]
        row[0] += share
        actors[key].add(actor)
        if makers:
            row[2].add(obj)
    for key, row in table.items():
        row[1] = len(actors[key])
    return table


def rank(receipts: Iterable[Receipt], kind: str, window: str) -> tuple[int, list[dict]]:
    """(as_of, ranked entries) for `kind` over `window`; see the module docstring for the formula."""
    _, seconds = check_request(kind, window)
    chosen = counted(receipts)
    end = as_of(chosen)
    start = None if seconds is None else end - seconds
    products = None if kind == "makers" else kind == "products"
    table = _scores(_contributions(chosen, start, end, products), kind == "makers")
    order = sorted(table.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))[:LIMIT]
    if kind == "makers":
        entries = [{"rank": n, "maker": url, "score": row[0], "actors": row[1], "objects": len(row[2])}
                   for n, (url, row) in enumerate(order, 1)]
    else:
        entries = [{"rank": n, "object": url, "maker": row[2], "score": row[0], "actors": row[1]}
                   for n, (url, row) in enumerate(order, 1)]
    return end, entries


def build_ranking(receipts: Iterable[Receipt], kind: str, window: str, logs: Iterable[LogHead]) -> dict:
    """The whole ranking document: formula, request, the checkpoints used and the entries."""
    heads = sorted(logs, key=lambda h: h.origin)
    end, entries = rank(receipts, kind, window)
    return {"formula": {"name": FORMULA_NAME, "version": FORMULA_VERSION}, "kind": kind, "window": window,
            "as_of": end, "logs": [h.as_dict() for h in heads], "ranking": entries}


def encode_ranking(document: dict) -> bytes:
    """Canonical JSON (sorted keys, fixed separators, UTF-8, one final newline): byte-identical everywhere."""
    return (json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def parse_saved_ranking(data: bytes | str) -> tuple[str, str, list[LogHead]]:
    """(kind, window, logs) of a saved /rewards/ranking answer; ValueError says what is wrong."""
    try:
        doc = json.loads(data)
        kind, window = doc["kind"], doc["window"]
        logs = [LogHead(str(h["origin"]), h["size"], str(h["root"]), str(h["url"])) for h in doc["logs"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a saved ranking: {type(exc).__name__}: {exc}") from None
    if not isinstance(kind, str) or not isinstance(window, str):
        raise ValueError("not a saved ranking: kind and window must be strings")  # noqa: TRY004 (one error type)
    check_request(kind, window)
    for h in logs:
        if type(h.size) is not int or h.size < 0:
            raise ValueError(f"not a saved ranking: bad size for log {h.origin}")
    if len({h.origin for h in logs}) != len(logs):
        raise ValueError("not a saved ranking: a log is listed twice")
    return kind, window, logs
