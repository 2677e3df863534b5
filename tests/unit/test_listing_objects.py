"""Listings as Notes with FEP-0837 fields, and the order activities: build, parse, round trip, malformed."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from activities.actor import Actor
from activities.listing import (
    KRW, ListingText, build_listing, listing_content, parse_listing, same_currency, stated_number, with_available,
)
from activities.trade import (
    TradeError, announced_state, build_accept_offer, build_agreement, build_agreement_update, build_offer,
    build_receipt, parse_terms, receipt_agreement,
)

ACTOR = Actor(id=1, uri="https://coop-a.example/users/pottery", username="pottery", domain="coop-a.example",
              actor_type="Person", display_name="도자기 공방", summary="", url=None,
              inbox_uri="https://coop-a.example/users/pottery/inbox", outbox_uri=None, shared_inbox_uri=None,
              followers_uri="https://coop-a.example/users/pottery/followers", following_uri=None, featured_uri=None,
              key_id="k", public_key_pem="p", manually_approves_followers=False, discoverable=True, indexable=True,
              icon_url=None, image_url=None, is_local=True, deleted_at=None, created_at=None,
              icon_media_type=None, image_media_type=None, updated_at=None)
URL = "https://coop-a.example/listings/42"

# The listing representation of the reference (marketplace-and-rewards.md §1), as a peer would send it.
REFERENCE_LISTING = {
    "@context": ["https://www.w3.org/ns/activitystreams", {"vf": "https://w3id.org/valueflows/ont/vf#"}],
    "type": "Note", "id": URL, "url": URL, "attributedTo": "https://coop-a.example/actors/pottery",
    "name": "Celadon tea cup",
    "content": "<p><strong>Celadon tea cup</strong> · ₩38,000 · 3 left</p>",
    "to": ["https://www.w3.org/ns/activitystreams#Public"], "purpose": "offer", "unitBased": True,
    "publishes": {"type": "Intent", "id": f"{URL}#primary", "action": "transfer",
                  "resourceConformsTo": "https://coop-a.example/products/celadon-cup",
                  "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "1"},
                  "availableQuantity": {"hasUnit": "one", "hasNumericalValue": "3"}},
    "reciprocal": {"type": "Intent", "id": f"{URL}#reciprocal", "action": "transfer",
                   "resourceConformsTo": "https://www.wikidata.org/wiki/Q202040",
                   "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "38000"}},
}
# The FEP's own minimal example: a Proposal priced in USD (Q4917), no name.
FEP_PROPOSAL = {
    "type": "Proposal", "id": "https://market.example/proposals/ddde", "purpose": "offer",
    "attributedTo": "https://market.example/users/alice", "summary": "Used bicycle",
    "publishes": {"type": "Intent", "id": "https://market.example/proposals/ddde#primary", "action": "transfer",
                  "resourceConformsTo": "https://www.wikidata.org/wiki/Q11442",
                  "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "1"}},
    "reciprocal": {"type": "Intent", "id": "https://market.example/proposals/ddde#reciprocal", "action": "transfer",
                   "resourceConformsTo": "https://www.wikidata.org/wiki/Q4917",
                   "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "30"}},
    "to": "https://www.w3.org/ns/activitystreams#Public",
}


def test_the_reference_listing_parses():
    listing = parse_listing(REFERENCE_LISTING)
    assert listing is not None
    assert (listing.title, listing.price, listing.currency, listing.available, listing.purpose) == (
        "Celadon tea cup", 38_000, KRW, 3, "offer")
    assert listing.product == "https://coop-a.example/products/celadon-cup"


def test_the_fep_example_parses_with_its_currency_and_no_stock():
    listing = parse_listing(FEP_PROPOSAL)
    assert listing is not None and (listing.price, listing.currency, listing.available, listing.title) == (
        30, "https://www.wikidata.org/wiki/Q4917", None, "Used bicycle")


def test_a_built_listing_round_trips_and_shows_title_price_and_stock_to_mastodon():
    text = ListingText(title="청자 찻잔 <b>", price=38_000, available=3, shipping=3_000, free_shipping_over=50_000,
                       hashtags=(("수공예", "https://coop-a.example/tags/수공예"),))
    note = build_listing(ACTOR, id=URL, text=text, published=datetime(2026, 12, 4, tzinfo=timezone.utc))
    assert note["type"] == "Note" and note["url"] == URL and note["summary"] is None  # never a content warning
    assert "청자 찻잔 &lt;b&gt;" in note["content"] and "₩38,000" in note["content"] and "3개 남음" in note["content"]
    assert "배송비 ₩3,000 (₩50,000 이상 무료)" in note["content"] and "#<span>수공예</span>" in note["content"]
    assert note["tag"] == [{"type": "Hashtag", "href": "https://coop-a.example/tags/수공예", "name": "#수공예"}]
    parsed = parse_listing(note)
    assert parsed is not None and (parsed.id, parsed.attributed_to, parsed.title, parsed.price, parsed.available) == (
        URL, ACTOR.uri, "청자 찻잔 <b>", 38_000, 3)
    assert parse_listing(with_available(note, 0)).available == 0  # type: ignore[union-attr]
    assert parse_listing(with_available(note, None)).available is None  # type: ignore[union-attr]
    assert "주문 제작" in listing_content(ListingText("x", 1, None), URL)


@pytest.mark.parametrize("breakage", [
    lambda d: d.pop("purpose"), lambda d: d.update(purpose="gift"), lambda d: d.pop("reciprocal"),
    lambda d: d["reciprocal"].update(resourceQuantity={"hasNumericalValue": "thirty"}),
    lambda d: d["reciprocal"].update(resourceQuantity={"hasNumericalValue": "12.5"}),
    lambda d: d["reciprocal"].update(resourceQuantity={"hasNumericalValue": "-3"}),
    lambda d: d["reciprocal"].update(resourceQuantity={"hasNumericalValue": "NaN"}),
    lambda d: d["reciprocal"].update(resourceConformsTo="not a url"), lambda d: d.update(name="", summary=None),
    lambda d: d.update(attributedTo=None), lambda d: d.update(publishes="nonsense"),
    lambda d: d["reciprocal"].update(resourceQuantity=[True]),
])
def test_malformed_listings_degrade_to_plain_notes(breakage):
    doc = copy.deepcopy(REFERENCE_LISTING)
    breakage(doc)
    assert parse_listing(doc) is None


def test_prefixed_and_array_valued_fields_are_read():
    doc = copy.deepcopy(REFERENCE_LISTING)
    doc["vf:purpose"] = doc.pop("purpose")
    doc["reciprocal"] = [doc["reciprocal"]]
    doc["publishes"]["availableQuantity"] = {"om2:hasNumericalValue": 5}
    listing = parse_listing(doc)
    assert listing is not None and listing.available == 5 and listing.price == 38_000


def test_an_offer_accept_and_updates_carry_the_agreement_terms():
    agreement = build_agreement("https://b.example/orders/7", URL, 2, 76_000)
    offer = build_offer("https://b.example/users/buyer", "https://b.example/users/buyer/activities/offer/1",
                        agreement, ACTOR.uri)
    terms = parse_terms(offer["object"])
    assert (terms.agreement_id, terms.listing_id, terms.quantity, terms.total) == (
        "https://b.example/orders/7", URL, 2, 76_000)
    accepted = build_accept_offer(ACTOR.uri, f"{ACTOR.uri}#accepts/1", offer,
                                  build_agreement(terms.agreement_id, URL, 2, 76_000, attributed_to=ACTOR.uri,
                                                  payto="payto://iban/DE75512108001245126199"), offer["actor"])
    assert accepted["object"]["type"] == "Offer" and "@context" not in accepted["object"]
    assert accepted["result"]["url"]["href"].startswith("payto:")
    for state, name in (("paid", "Paid"), ("shipped", "Shipped"), ("delivered", "Delivered"),
                        ("cancelled", "Cancelled")):
        update = build_agreement_update(ACTOR.uri, "u", build_agreement(terms.agreement_id, URL, 2, 76_000,
                                                                        state=state), offer["actor"])
        assert update["object"]["preview"] == {"type": "Note", "name": name}
        assert announced_state(update["object"]) == state
    receipt = build_receipt(offer["actor"], "c", "https://b.example/orders/7/receipt", terms.agreement_id, ACTOR.uri)
    assert receipt_agreement(receipt["object"]) == terms.agreement_id


@pytest.mark.parametrize("agreement, message", [
    ({"type": "Note"}, "not an Agreement"), ({"type": "Agreement"}, "no commitment"),
    ({"type": "Agreement", "stipulates": {"satisfies": f"{URL}#reciprocal"}}, "#primary"),
    ({"type": "Agreement", "stipulates": {"satisfies": f"{URL}#primary",
                                          "resourceQuantity": {"hasNumericalValue": "0"}}}, "quantity"),
    ({"type": "Agreement", "stipulates": {"satisfies": f"{URL}#primary",
                                          "resourceQuantity": {"hasNumericalValue": "1.5"}}}, "quantity"),
    ({"type": "Agreement", "stipulates": {"satisfies": f"{URL}#primary",
                                          "resourceQuantity": {"hasNumericalValue": "1001"}}}, "quantity"),
    ({"type": "Agreement", "id": "javascript:x", "stipulates": {
        "satisfies": f"{URL}#primary", "resourceQuantity": {"hasNumericalValue": "1"}}}, "not a URL"),
    ({"type": "Agreement", "stipulates": {"satisfies": f"{URL}#primary",
                                          "resourceQuantity": {"hasNumericalValue": "1"}},
      "stipulatesReciprocal": {"satisfies": "https://other.example/listings/1#reciprocal"}}, "different listings"),
    # A price stated but unreadable is refused, not taken as no price (which the maker would not check).
    *[({"type": "Agreement", "stipulates": {"satisfies": f"{URL}#primary",
                                            "resourceQuantity": {"hasNumericalValue": "1"}},
        "stipulatesReciprocal": {"satisfies": f"{URL}#reciprocal", "resourceQuantity": {"hasNumericalValue": price}}},
       "price") for price in ("41000.5", "-41000", "not a number", "1e400000")],
])
def test_malformed_agreements_are_refused_with_a_reason(agreement, message):
    with pytest.raises(TradeError, match=message):
        parse_terms(agreement)


def test_unknown_previews_and_foreign_documents_are_refused():
    with pytest.raises(TradeError):
        announced_state({"type": "Agreement", "preview": {"name": "Stolen"}})
    with pytest.raises(TradeError):
        receipt_agreement({"type": "Document", "name": "Invoice", "context": URL})
    with pytest.raises(TradeError):
        receipt_agreement({"type": "Document", "name": "Receipt"})


@pytest.mark.parametrize("value, number", [
    ("38000", 38_000), (" 3 ", 3), (1_000_000_000_000_000, 10**15), ("1e15", 10**15), ("2.5", 2.5),
    # Beyond any price or count: refused before anything converts them (int() of "1e400000" took 5 s).
    ("1e16", None), ("1e400000", None), ("9" * 41, None), (10**16, None),
    ("-1", None), ("NaN", None), ("Infinity", None), (True, None), ("", None), ("x", None),
])
def test_a_stated_number_is_a_price_or_a_count_or_nothing(value, number):
    stated = stated_number({"hasUnit": "one", "hasNumericalValue": value})
    assert (None if stated is None else float(stated)) == number


def test_a_stated_integer_too_long_to_print_is_no_number():
    assert stated_number({"hasNumericalValue": 10**5000}) is None  # str() of it raises beyond 4,300 digits


def test_a_listing_with_a_count_beyond_reason_has_no_count():
    doc = copy.deepcopy(REFERENCE_LISTING)
    doc["publishes"]["availableQuantity"]["hasNumericalValue"] = "1e400000"
    listing = parse_listing(doc)
    assert listing is not None and listing.available is None and listing.price == 38_000


def test_currencies_are_one_wikidata_item_however_its_url_is_written():
    assert same_currency(KRW, "http://www.wikidata.org/entity/Q202040")
    assert same_currency("https://wikidata.org/wiki/Q202040", KRW)
    assert not same_currency(KRW, "https://www.wikidata.org/wiki/Q4917")
    assert not same_currency(KRW, "https://evil.example/wiki/Q202040")
    assert same_currency("urn:x:tokens", "urn:x:tokens") and not same_currency("urn:x:a", "urn:x:b")
