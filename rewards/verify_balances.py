"""`rewards verify URL --balances`: every balance an instance serves, against a recomputation from its verified log.

After `verify_log` has checked the log at its witnessed checkpoint, each account of that
instance the log credits (receipt beneficiaries and minted accounts whose home is the log's
instance) is fetched from `<base>/rewards/balance/<name>` (through the guarded rewards client,
a few at a time) and refolded with the pure `fold_balance` over exactly the verified entries
below the `log_size` it was served at, at the `as_of` it was served at, with the published
token policy. The recomputable fields (rewards.balance.RECOMPUTABLE) must be equal. A document
that cannot be fetched, or that was served at a checkpoint newer than the one just verified, is
reported as not checked, never as a mismatch: only a served figure the log contradicts is one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rewards.balance import TokenPolicy, balance_differences, fold_balance, home_accounts, parse_entry
from rewards.client import FetchError, fetch_balance
from rewards.context import RewardsHttp
from rewards.verify import VerifyReport, log_home

PARALLEL_BALANCES = 8
OK, DIFFERS, UNCHECKED = "ok", "differs", "not checked"


@dataclass
class BalanceCheck:
    """One account's served balance against its recomputation."""

    account: str  # the actor id, as in the log
    name: str  # what /rewards/balance/<name> was asked for
    status: str  # OK, DIFFERS, or UNCHECKED (unreachable, or served at a checkpoint newer than the one verified)
    log_size: int | None = None
    as_of: int | None = None
    differences: list[tuple[str, object, object]] = field(default_factory=list)  # (field, served, recomputed)

    def as_dict(self) -> dict:
        return {"account": self.account, "name": self.name, "status": self.status, "log_size": self.log_size,
                "as_of": self.as_of, "differences": [{"field": f, "served": s, "recomputed": r}
                                                     for f, s, r in self.differences],
                **({"reason": self.reason} if self.reason else {})}

    reason: str = ""  # why UNCHECKED

    def describe(self) -> str:
        """The differences in one phrase: `points served 5, recomputed 4; ...`."""
        return "; ".join(f"{f} served {s}, recomputed {r}" for f, s, r in self.differences)


def account_name(actor: str) -> str:
    """The local name in an actor id (its last path segment): what /rewards/balance/<name> takes."""
    return urlsplit(actor).path.rstrip("/").rpartition("/")[2]


def check_served(actor: str, name: str, served: dict, entries: list, verified_size: int,
                 tokens: TokenPolicy) -> BalanceCheck:
    """Compare one served balance document with the fold over the verified entries (pure)."""
    size, as_of = served.get("log_size"), served.get("as_of")
    if served.get("actor") != actor:
        return BalanceCheck(actor, name, DIFFERS, size, as_of, [("actor", served.get("actor"), actor)])
    if not isinstance(size, int) or not isinstance(as_of, int) or isinstance(size, bool) or isinstance(as_of, bool):
        return BalanceCheck(actor, name, DIFFERS, None, None, [("log_size/as_of", f"{size}/{as_of}", "integers")])
    if size < 0:
        return BalanceCheck(actor, name, DIFFERS, size, as_of, [("log_size", size, "at least 0")])
    if size > verified_size:  # the instance published a newer checkpoint meanwhile: nothing to compare it with
        return BalanceCheck(actor, name, UNCHECKED, size, as_of,
                            reason=f"served at log size {size}, past the verified checkpoint ({verified_size}); "
                                   "verify again")
    recomputed = fold_balance(entries[:size], actor, as_of, tokens)
    differences = balance_differences(served, recomputed)
    return BalanceCheck(actor, name, DIFFERS if differences else OK, size, as_of, differences)


async def check_balances(session: RewardsHttp, base_url: str, report: VerifyReport,
                         tokens: TokenPolicy) -> list[BalanceCheck]:
    """Every account of the instance its verified log credits, fetched and recomputed (sorted by account)."""
    entries = [parse_entry(leaf) for leaf in report.entries]  # signatures already checked by verify_log
    limit = asyncio.Semaphore(PARALLEL_BALANCES)

    async def one(actor: str) -> BalanceCheck:
        name = account_name(actor)
        async with limit:
            try:
                served = await fetch_balance(session, base_url, name)
            except FetchError as exc:  # unreachable now says nothing about the log: not a mismatch
                return BalanceCheck(actor, name, UNCHECKED, reason=f"could not be fetched: {exc}")
        return check_served(actor, name, served, entries, report.size, tokens)

    return list(await asyncio.gather(*(one(a) for a in home_accounts(entries, log_home(report.origin)))))
