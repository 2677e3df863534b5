"""How the open ranking becomes Mastodon's trends. Pure: no I/O.

The ranking (rewards/ranking.py, window 7d, the one the /discover page shows) orders posts by the
points of verified receipts. Here:

- trending statuses are the ranked posts this server knows and the reader may see, in ranking order;
- a trending tag's weight is the sum of the ranking scores of those posts carrying it (each post
  gives its whole score to every one of its tags); tags are ordered by weight, then by how many
  ranked posts carry them, then by name, so anyone with the same ranking gets the same list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence


def ranked_objects(ranking: Mapping | None) -> list[tuple[str, int]]:
    """(object URL, score) of a ranking document's entries, in its order; [] for no or a malformed ranking."""
    if not ranking or not isinstance(ranking.get("ranking"), list):
        return []
    found: dict[str, int] = {}
    for entry in ranking["ranking"]:
        if not isinstance(entry, Mapping):
            continue
        url, score = entry.get("object"), entry.get("score")
        if isinstance(url, str) and isinstance(score, int) and not isinstance(score, bool) and url not in found:
            found[url] = score
    return list(found.items())


def weigh_tags(scores: Sequence[tuple[str, int]], tags: Mapping[str, Sequence[str]]) -> list[tuple[str, int, int]]:
    """(tag, weight, posts) for the ranked posts `scores` (uri, score) whose tags are `tags[uri]`, heaviest first."""
    weight: dict[str, int] = defaultdict(int)
    posts: dict[str, int] = defaultdict(int)
    for uri, score in scores:
        for tag in dict.fromkeys(tags.get(uri, ())):
            weight[tag] += score
            posts[tag] += 1
    return sorted(((t, weight[t], posts[t]) for t in weight), key=lambda x: (-x[1], -x[2], x[0]))
