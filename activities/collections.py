"""OrderedCollection and its pages (outbox, followers, following, featured)."""

from __future__ import annotations

from .context import AS_CONTEXT


def build_ordered_collection(uri: str, total: int, *, first: str | None = None, items: list | None = None) -> dict:
    """A collection with `totalItems`; either links its `first` page or embeds `orderedItems`."""
    doc: dict = {"@context": AS_CONTEXT, "id": uri, "type": "OrderedCollection", "totalItems": total}
    if items is not None:
        doc["orderedItems"] = items
    elif first is not None and total > 0:
        doc["first"] = first
    return doc


def build_ordered_collection_page(
    uri: str, part_of: str, items: list, total: int, *, next_page: str | None = None, prev_page: str | None = None
) -> dict:
    """One page of an OrderedCollection."""
    doc: dict = {
        "@context": AS_CONTEXT,
        "id": uri,
        "type": "OrderedCollectionPage",
        "partOf": part_of,
        "totalItems": total,
        "orderedItems": items,
    }
    if next_page:
        doc["next"] = next_page
    if prev_page:
        doc["prev"] = prev_page
    return doc
