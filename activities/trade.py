"""Orders between instances as FEP-0837 activities: Offer, Accept/Reject, Update(Agreement), Receipt. Pure.

The buyer's server sends `Offer{object: Agreement}` to the listing's author; the Agreement
`stipulates` a Commitment that satisfies the listing's primary Intent (`<listing>#primary`,
the quantity) and `stipulatesReciprocal` one that satisfies `<listing>#reciprocal` (the total
price). The maker's server answers `Accept{object: Offer, result: Agreement}` or
`Reject{object: Offer, content: reason}`; each later step is `Update(Agreement)` whose
`preview` names it (`Paid`, `Shipped`, `Delivered`, `Cancelled`: Mitra names "Paid", the rest
are ours), and the buyer completes with `Create(Document "Receipt", context: agreement)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from .context import AS_CONTEXT
from .listing import KRW, LISTING_CONTEXT, TOKENS, _field, _first, _id, _whole, stated_number

# `Agreement` stays a plain term: Fedify 2.3 (and so every server built on it) fails with a 500 on an Accept
# whose `result` is typed with an expanded vf:Agreement that has vf:satisfies commitments.
TRADE_CONTEXT = [AS_CONTEXT, {**LISTING_CONTEXT[1], "Commitment": "vf:Commitment", "stipulates": "vf:stipulates",
                              "stipulatesReciprocal": "vf:stipulatesReciprocal", "satisfies": "vf:satisfies"}]
# Order states an Update(Agreement) announces, by the `preview` name it carries.
PREVIEWS = {"paid": "Paid", "shipped": "Shipped", "delivered": "Delivered", "cancelled": "Cancelled"}
MAX_QUANTITY = 1000


class TradeError(ValueError):
    """An order activity we cannot use; the message says why."""


@dataclass(frozen=True)
class Terms:
    """What an Agreement asks: how many of which listing, for how much in all."""

    agreement_id: str | None
    listing_id: str
    quantity: int
    total: int | None
    currency: str = KRW  # TOKENS: the buyer pays in reward tokens (fedserver's extension)

    @property
    def in_tokens(self) -> bool:
        """True when the Agreement is paid in reward tokens."""
        return self.currency == TOKENS


def _commitment(satisfies: str, value: int) -> dict:
    return {"type": "Commitment", "satisfies": satisfies,
            "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": str(value)}}


def build_agreement(id: str, listing_id: str, quantity: int, total: int, *, currency: str = KRW,
                    attributed_to: str | None = None, state: str | None = None, content: str | None = None,
                    payto: str | None = None) -> dict:
    """An Agreement for `quantity` of a listing at `total`; `state` sets the `preview` of an update."""
    doc: dict = {"type": "Agreement", "id": id,
                 "stipulates": _commitment(f"{listing_id}#primary", quantity),
                 "stipulatesReciprocal": {**_commitment(f"{listing_id}#reciprocal", total),
                                          "resourceConformsTo": currency}}
    if attributed_to:
        doc["attributedTo"] = attributed_to
    if state:
        doc["preview"] = {"type": "Note", "name": PREVIEWS[state]}
    if content:
        doc["content"] = content
    if payto:
        doc["url"] = {"type": "Link", "href": payto, "rel": ["payment"]}
    return doc


def _activity(kind: str, id: str, actor: str, obj: object, to: str, **fields: object) -> dict:
    doc = {"@context": TRADE_CONTEXT, "id": id, "type": kind, "actor": actor, "object": obj, "to": [to]}
    doc.update({k: v for k, v in fields.items() if v is not None})
    return doc


def _bare(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "@context"}


def build_offer(buyer: str, id: str, agreement: dict, seller: str) -> dict:
    """Offer{Agreement}, from the buyer to the listing's author."""
    return _activity("Offer", id, buyer, agreement, seller)


def build_accept_offer(seller: str, id: str, offer: dict, agreement: dict, buyer: str) -> dict:
    """Accept{Offer, result: Agreement}: the order stands; the Agreement carries payment instructions."""
    return _activity("Accept", id, seller, _bare(offer), buyer, result=agreement)


def build_reject_offer(seller: str, id: str, offer: dict, reason: str, buyer: str) -> dict:
    """Reject{Offer} with the reason as its content."""
    return _activity("Reject", id, seller, _bare(offer), buyer, content=f"<p>{escape(reason)}</p>")


def build_agreement_update(actor: str, id: str, agreement: dict, counterparty: str) -> dict:
    """Update(Agreement): a new state of the order, named by the Agreement's `preview`."""
    return _activity("Update", id, actor, agreement, counterparty)


def build_receipt(buyer: str, id: str, receipt_id: str, agreement_id: str, seller: str) -> dict:
    """Create(Document "Receipt", context: agreement): the buyer confirms the order is fulfilled."""
    document = {"type": "Document", "id": receipt_id, "name": "Receipt", "context": agreement_id,
                "attributedTo": buyer, "to": [seller]}
    return _activity("Create", id, buyer, document, seller)


def _listing_of(commitment: dict, suffix: str) -> str:
    satisfies = _id(_field(commitment, "satisfies"))
    if not satisfies or not satisfies.endswith(suffix):
        raise TradeError(f"the commitment does not satisfy a listing's {suffix} intent")
    return satisfies.removesuffix(suffix)


def parse_terms(agreement: object) -> Terms:
    """The terms of an Agreement (embedded in an Offer, an Accept's result or an Update)."""
    if not isinstance(agreement, dict) or agreement.get("type") != "Agreement":
        raise TradeError("the object is not an Agreement")
    primary = _first(_field(agreement, "stipulates"))
    if not isinstance(primary, dict):
        raise TradeError("the Agreement stipulates no commitment")
    listing = _listing_of(primary, "#primary")
    quantity = _whole(stated_number(_field(primary, "resourceQuantity")))
    if quantity is None or not 1 <= quantity <= MAX_QUANTITY:
        raise TradeError(f"the quantity must be a whole number from 1 to {MAX_QUANTITY}")
    total, currency = None, KRW
    reciprocal = _first(_field(agreement, "stipulatesReciprocal"))
    if isinstance(reciprocal, dict):
        if _listing_of(reciprocal, "#reciprocal") != listing:
            raise TradeError("the two commitments are about different listings")
        total = _whole(stated_number(_field(reciprocal, "resourceQuantity")))
        if total is None:  # a price stated but unreadable is not "no price": the order would ignore it
            raise TradeError("the price (the reciprocal commitment's quantity) must be a whole number")
        currency = _id(_field(reciprocal, "resourceConformsTo")) or KRW
    agreement_id = agreement.get("id")
    if agreement_id is not None and not _id(agreement_id):
        raise TradeError("the Agreement's id is not a URL")
    if currency == TOKENS and not total:
        raise TradeError("an Agreement paid in tokens must say how many")
    return Terms(agreement_id=agreement_id, listing_id=listing, quantity=quantity, total=total, currency=currency)


def announced_state(agreement: object) -> str:
    """The order state an Update(Agreement) announces by its `preview` name."""
    preview = _first(agreement.get("preview")) if isinstance(agreement, dict) else None
    name = preview.get("name") if isinstance(preview, dict) else None
    for state, label in PREVIEWS.items():
        if isinstance(name, str) and name.strip().lower() == label.lower():
            return state
    raise TradeError("the Agreement's preview names no order state we know")


def receipt_agreement(document: object) -> str:
    """The Agreement a Receipt Document confirms (its `context`)."""
    if not isinstance(document, dict) or document.get("type") != "Document" or document.get("name") != "Receipt":
        raise TradeError("the object is not a Receipt")
    agreement = _id(document.get("context"))
    if not agreement:
        raise TradeError("the Receipt names no Agreement (context)")
    return agreement
