"""Orders paid in reward tokens: what a listing costs in tokens, the spend at placement, and whether the
maker's instance holds the countersigned spend. The order's moves stay in `orders`; this module
speaks to the rewards package (rewards/spending.py), which knows nothing of orders.

The buyer's instance debits the buyer and issues the spend in the transaction that creates the
order, so a token order the buyer cannot cover is refused at once, with nothing stored. The
maker's instance marks the order paid only once it holds the countersigned spend (the order was
accepted and the spend is in its log, whichever came first); a cancelled or rejected token order
gives the tokens back by an undo-spend.
"""

from __future__ import annotations

import logging

import asyncpg

from fedserver.config import Settings
from rewards import spend_store
from rewards.spending import NotEnoughTokens, SpendNotPossible, issue_spend, issue_undo

from .store import ListingRow

log = logging.getLogger("storefront.tokens")

PAYMENT_METHODS = ("krw", "tokens")


class TokenPaymentRefused(Exception):
    """A token payment that cannot be made; the message says why."""


def token_cost(listing: ListingRow, quantity: int) -> int:
    """What `quantity` of the listing costs in tokens (shipping included); refused when it takes no tokens."""
    if listing.token_price is None:
        raise TokenPaymentRefused("this product has no token price: it is paid in won only")
    return listing.token_price * quantity


async def pay(conn: asyncpg.Connection, settings: Settings, *, buyer_uri: str, order_uri: str, listing: ListingRow,
              quantity: int, cost: int) -> None:
    """Debit the buyer and issue the spend, in the transaction that creates the order."""
    try:
        await issue_spend(conn, settings, account=buyer_uri, order=order_uri, listing=listing.uri,
                          seller=listing.seller_uri, quantity=quantity, tokens=cost)
    except NotEnoughTokens as exc:
        raise TokenPaymentRefused(f"not enough tokens: this order costs {exc.needed}, you have {exc.available}") \
            from None
    except SpendNotPossible as exc:
        raise TokenPaymentRefused(str(exc)) from None


async def spend_is_in(conn: asyncpg.Connection, order_uri: str) -> bool:
    """True when our log holds the order's countersigned spend (and no undo of it)."""
    spend = await spend_store.get_spend(conn, order_uri)
    return spend is not None and spend.idx is not None \
        and await spend_store.get_spend(conn, order_uri, "undo-spend") is None


async def give_back(conn: asyncpg.Connection, settings: Settings, order_uri: str) -> None:
    """Return the tokens of a buyer's order that ended cancelled or rejected (once; nothing if never spent).

    When the maker's instance has left our reward federation since, nobody can countersign the return:
    the order still ends, the tokens stay spent, and the log says so for an administrator to settle.
    """
    try:
        await issue_undo(conn, settings, order_uri)
    except SpendNotPossible as exc:
        log.error("the tokens of a cancelled order cannot be returned", extra={"order": order_uri, "error": str(exc)})
