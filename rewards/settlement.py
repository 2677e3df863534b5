"""What makers received, per pair of member instances and month: the co-operative network's settlement (pure).

Tokens spent on a maker's products count as `redeemed` for that maker. A spend between two
instances is in both logs (the buyer's instance issued it, the maker's countersigned it), so the
same entry is counted once, by its id. An undo-spend takes its tokens back in the month it was
made. The figures come from the logs' entries alone: anyone with the logs computes the same table,
and the network settles in won outside fedserver (tokens are never money inside it).
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rewards.spend import Spend

_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


class SettlementError(ValueError):
    """A month that is not YYYY-MM; the message says so."""


def month_bounds(month: str) -> tuple[int, int]:
    """[start, end) of a UTC calendar month, in Unix seconds."""
    match = _MONTH.fullmatch(month.strip())
    if not match:
        raise SettlementError(f"--month {month!r} must be YYYY-MM, such as 2026-11")
    year, number = int(match.group(1)), int(match.group(2))
    start = calendar.timegm((year, number, 1, 0, 0, 0))
    end = calendar.timegm((year + number // 12, number % 12 + 1, 1, 0, 0, 0))
    return start, end


@dataclass(frozen=True)
class PairTotal:
    """Tokens the buyers of one instance redeemed with the makers of another in one month."""

    buyer_instance: str
    maker_instance: str
    tokens_redeemed: int
    spends: int
    undone: int

    def as_dict(self) -> dict:
        return {"buyer_instance": self.buyer_instance, "maker_instance": self.maker_instance,
                "tokens_redeemed": self.tokens_redeemed, "spends": self.spends, "undone": self.undone}


def settle(spends: Iterable[Spend], month: str) -> list[PairTotal]:
    """Per (buyer's instance, maker's instance): tokens spent less tokens returned in `month`, each entry once."""
    start, end = month_bounds(month)
    unique = {s.id: s for s in spends}
    tokens: dict[tuple[str, str], int] = defaultdict(int)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for s in unique.values():
        if not start <= s.time < end:
            continue
        pair = (s.home, s.maker_home)
        tokens[pair] += s.signed_tokens
        counts[pair][0 if s.kind == "spend" else 1] += 1
    return [PairTotal(buyer, maker, tokens[(buyer, maker)], *counts[(buyer, maker)])
            for buyer, maker in sorted(tokens)]
