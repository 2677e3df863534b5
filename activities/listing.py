"""Product listings as federated Notes carrying the FEP-0837 fields. Pure: no I/O.

A listing is one `Note` (so Mastodon shows it, and likes, boosts and replies land on the very
object machine peers trade against) with `purpose`, a `publishes` Intent (the product and how
many are available) and a `reciprocal` Intent (the price, its currency a Wikidata URI). Title,
price and stock are also in the HTML `content`, because Mastodon shows only that.

`parse_listing` reads such a Note from any server (fedserver, Mitra- or Epicyon-style peers,
compacted JSON-LD as Mastodon reads it); anything missing or malformed makes it a plain Note
(None), never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from html import escape

from .actor import Actor
from .build import NOTE_CONTEXT, NoteExtras, build_note
from .context import AS_CONTEXT, PUBLIC

KRW = "https://www.wikidata.org/wiki/Q202040"
MAX_PRICE_KRW = 100_000_000
# fedserver's own terms: a listing's price in reward tokens, and tokens as the currency an Agreement is paid in.
FEDSERVER_NS = "https://w3id.org/fedserver/ns#"
TOKENS = f"{FEDSERVER_NS}Token"
MAX_TOKEN_PRICE = 1_000_000_000
VF = "https://w3id.org/valueflows/ont/vf#"
OM2 = "http://www.ontology-of-units-of-measure.org/resource/om-2/"
LISTING_CONTEXT = [
    AS_CONTEXT,
    {"vf": VF, "om2": OM2, "purpose": "vf:purpose", "publishes": "vf:publishes", "reciprocal": "vf:reciprocal",
     "unitBased": "vf:unitBased", "Intent": "vf:Intent", "action": "vf:action",
     "resourceConformsTo": "vf:resourceConformsTo", "resourceQuantity": "vf:resourceQuantity",
     "availableQuantity": "vf:availableQuantity", "minimumQuantity": "vf:minimumQuantity",
     "hasUnit": "om2:hasUnit", "hasNumericalValue": "om2:hasNumericalValue", "Hashtag": "as:Hashtag",
     "sensitive": "as:sensitive", "fedserver": FEDSERVER_NS, "tokenPrice": "fedserver:tokenPrice"},
]
PURPOSES = ("offer", "request")


@dataclass(frozen=True)
class Listing:
    """A listing as a machine peer reads it: what is offered, for how much, and how many."""

    id: str
    attributed_to: str
    title: str
    price: int  # whole units of `currency` (won for KRW)
    currency: str
    available: int | None  # None: made to order, or not said
    purpose: str = "offer"
    product: str | None = None  # the primary Intent's resourceConformsTo
    token_price: int | None = None  # whole reward tokens for one, when the maker takes tokens


@dataclass(frozen=True)
class ListingText:
    """What the Note's HTML says about a local listing (the parts Mastodon users see)."""

    title: str
    price: int
    available: int | None
    shipping: int = 0
    free_shipping_over: int | None = None
    description_html: str = ""
    hashtags: tuple[tuple[str, str], ...] = ()  # (name, href)
    token_price: int | None = None


def won(amount: int) -> str:
    """`₩38,000`: how Korean shops write a price in won."""
    return f"₩{amount:,}"


def stock_text(available: int | None) -> str:
    """`3개 남음`, `품절` or `주문 제작` (made to order)."""
    if available is None:
        return "주문 제작"
    return f"{available}개 남음" if available > 0 else "품절"


def shipping_text(shipping: int, free_over: int | None) -> str:
    """The shipping fee as a Korean shop states it."""
    if shipping == 0:
        return "배송비 포함"
    return f"배송비 {won(shipping)}" + (f" ({won(free_over)} 이상 무료)" if free_over else "")


def listing_content(text: ListingText, url: str) -> str:
    """The Note's HTML: title, price, stock and shipping first, then the description, the order link, tags."""
    tags = " ".join(f'<a href="{escape(href)}" class="mention hashtag" rel="tag">#<span>{escape(name)}</span></a>'
                    for name, href in text.hashtags)
    return (f"<p><strong>{escape(text.title)}</strong> · {won(text.price)} · {stock_text(text.available)}</p>"
            f"<p>{shipping_text(text.shipping, text.free_shipping_over)}</p>{text.description_html}"
            f'<p><a href="{escape(url)}">주문하기</a>{(" " + tags) if tags else ""}</p>')


def _quantity(value: int) -> dict:
    return {"hasUnit": "one", "hasNumericalValue": str(value)}


def listing_fields(id: str, price: int, available: int | None, currency: str = KRW) -> dict:
    """The FEP-0837 fields a listing Note carries (one primary and one reciprocal Intent)."""
    primary = {"type": "Intent", "id": f"{id}#primary", "action": "transfer", "resourceConformsTo": id,
               "resourceQuantity": _quantity(1)}
    if available is not None:
        primary["availableQuantity"] = _quantity(available)
    reciprocal = {"type": "Intent", "id": f"{id}#reciprocal", "action": "transfer", "resourceConformsTo": currency,
                  "resourceQuantity": _quantity(price)}
    return {"purpose": "offer", "unitBased": True, "publishes": primary, "reciprocal": reciprocal}


def build_listing(actor: Actor, *, id: str, text: ListingText, published: datetime,
                  attachments: tuple[dict, ...] = ()) -> dict:
    """A public listing Note: the HTML Mastodon shows, the FEP-0837 fields machine peers trade on."""
    note = build_note(actor, id=id, content_html=listing_content(text, id), published=published, to=[PUBLIC],
                      cc=[actor.followers_uri] if actor.followers_uri else [],
                      extras=NoteExtras(hashtags=text.hashtags, attachments=attachments))
    note.update(listing_fields(id, text.price, text.available))
    if text.token_price is not None:
        note["tokenPrice"] = text.token_price
    note.update({"@context": [*NOTE_CONTEXT, LISTING_CONTEXT[1]], "name": text.title, "url": id})
    return note


def with_available(note: dict, available: int | None) -> dict:
    """The Note with the current stock in `availableQuantity` (stock changes are not sent as Updates)."""
    publishes = dict(note.get("publishes") or {})
    if available is None:
        publishes.pop("availableQuantity", None)
    else:
        publishes["availableQuantity"] = _quantity(available)
    return {**note, "publishes": publishes}


def _first(value: object) -> object:
    return value[0] if isinstance(value, list) and value else value


def _id(value: object) -> str | None:
    value = _first(value)
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


def _field(obj: dict, name: str) -> object:
    """A field by its compacted name, or under a prefix peers use (`vf:`, `om2:`)."""
    for key in (name, f"vf:{name}", f"om2:{name}"):
        if key in obj:
            return obj[key]
    return None


_WIKIDATA = re.compile(r"https?://(?:www\.)?wikidata\.org/(?:wiki|entity)/(Q[0-9]+)")


def same_currency(a: str, b: str) -> bool:
    """Two currency ids name one currency: equal, or one Wikidata item however its URL is written."""
    if a == b:
        return True
    first, second = _WIKIDATA.fullmatch(a or ""), _WIKIDATA.fullmatch(b or "")
    return bool(first and second and first.group(1) == second.group(1))


MAX_NUMBER_CHARS = 40  # a stated number's text, at most
MAX_EXPONENT = 15  # numbers from 10^16 up are no price or count: refused before anything converts them


def stated_number(quantity: object) -> Decimal | None:
    """The number an FEP-0837 quantity states (`hasNumericalValue`), if it is one a price or count can be."""
    quantity = _first(quantity)
    if not isinstance(quantity, dict):
        return None
    raw = _first(_field(quantity, "hasNumericalValue"))
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        return None
    if isinstance(raw, int) and abs(raw) >= 10 ** (MAX_EXPONENT + 1):  # str() of a huge int may raise
        return None
    text = str(raw).strip()
    if len(text) > MAX_NUMBER_CHARS:
        return None
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    # Above 10^15 no price or count is meant; and int() of "1e400000" would hold the worker for seconds
    # (its cost grows with the square of the exponent), so a hostile peer's 20 bytes are refused here.
    return number if number.is_finite() and number >= 0 and number.adjusted() <= MAX_EXPONENT else None


def _whole(number: Decimal | None) -> int | None:
    return int(number) if number is not None and number == number.to_integral_value() else None


def _title(doc: dict) -> str | None:
    for key in ("name", "summary"):
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return None


def parse_listing(doc: dict) -> Listing | None:
    """The listing a Note (or Proposal) carries, or None when it carries none we can use."""
    if not isinstance(doc, dict) or _field(doc, "purpose") not in PURPOSES:
        return None
    note_id, author = _id(doc.get("id")), _id(doc.get("attributedTo"))
    primary, reciprocal = _first(_field(doc, "publishes")), _first(_field(doc, "reciprocal"))
    if not note_id or not author or not isinstance(primary, dict) or not isinstance(reciprocal, dict):
        return None
    currency = _id(_field(reciprocal, "resourceConformsTo"))
    price = _whole(stated_number(_field(reciprocal, "resourceQuantity")))
    title = _title(doc)
    if not currency or not price or price <= 0 or price > 10**15 or not title:
        return None
    available = _whole(stated_number(_field(primary, "availableQuantity")))
    return Listing(id=note_id, attributed_to=author, title=title, price=price, currency=currency,
                   available=available if available is not None and available <= 10**9 else None,
                   purpose=str(_field(doc, "purpose")), product=_id(_field(primary, "resourceConformsTo")),
                   token_price=_token_price(doc))


def _token_price(doc: dict) -> int | None:
    """fedserver's `tokenPrice` (a whole number of tokens); anything else is no token price, never an error."""
    value = _first(doc.get("tokenPrice", doc.get("fedserver:tokenPrice")))
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 1 <= number <= MAX_TOKEN_PRICE else None
