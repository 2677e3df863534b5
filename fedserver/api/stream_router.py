"""The streaming API's routing core: stream names, what each demands, and who is subscribed to what. Pure.

Stream names and their parameters are Mastodon's (docs.joinmastodon.org/methods/streaming): `user`,
`user:notification`, `public`, `public:local`, `public:remote`, `hashtag` and `hashtag:local` (with
`tag`), `list` (with `list`) and `direct`. A subscriber is any hashable object; the router only
remembers which account it reads as, and answers "who gets this event" with (subscriber, stream) pairs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S", bound=Hashable)

PUBLIC = ("public", "public:local", "public:remote")
HASHTAG = ("hashtag", "hashtag:local")
PERSONAL = ("user", "user:notification", "direct")
KNOWN = (*PERSONAL, *PUBLIC, *HASHTAG, "list")
# Mastodon's streaming server asks these scopes (any one of them) per stream.
_SCOPES = {"user": ("read", "read:statuses"), "user:notification": ("read", "read:notifications"),
           "direct": ("read", "read:statuses"), "list": ("read", "read:lists")}
_PUBLIC_SCOPES = ("read", "read:statuses")
NO_LIST = "Record not found"


class StreamError(ValueError):
    """A stream that cannot be subscribed to; the message says why (sent to the client as an error event)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class Stream:
    """A stream as a client names it: `name` and, for hashtag and list streams, its parameter."""

    name: str
    param: str | None = None

    @property
    def label(self) -> list[str]:
        """The `stream` field of events: `["user"]`, `["hashtag", "tea"]`."""
        return [self.name] if self.param is None else [self.name, self.param]

    @property
    def personal(self) -> bool:
        """A stream about one account (it needs a signed-in caller)."""
        return self.name in PERSONAL or self.name == "list"

    @property
    def scopes(self) -> tuple[str, ...]:
        """Any one of these scopes lets a token read the stream."""
        return _SCOPES.get(self.name, _PUBLIC_SCOPES)


def parse_stream(name: str | None, *, tag: str | None = None, list_id: str | None = None,
                 normalize_tag=lambda t: t.lower()) -> Stream:
    """The stream a client asked for; StreamError names what is wrong."""
    if not name:
        raise StreamError("No stream name given")
    if name not in KNOWN:
        raise StreamError(f"Unknown stream type {name!r}")
    if name in HASHTAG:
        normalized = normalize_tag(tag.lstrip("#")) if tag else None
        if not normalized:
            raise StreamError("No tag for stream provided")
        return Stream(name, normalized)
    if name == "list":
        if not list_id:
            raise StreamError("No list id for stream provided")
        if not str(list_id).isdigit() or len(str(list_id)) > 18:
            raise StreamError(NO_LIST, 404)
        return Stream(name, str(int(list_id)))  # whether the caller owns it is checked against the database
    return Stream(name)


def check_access(stream: Stream, account_id: int | None, granted) -> None:
    """StreamError 401/403 unless the caller may read the stream; `granted(scopes)` checks the token."""
    if stream.personal and account_id is None:
        raise StreamError("Missing access token", 401)
    if account_id is not None and not granted(stream.scopes):
        raise StreamError("Access token does not have the required scopes", 403)


class Router(Generic[S]):
    """Subscriptions of one process, indexed the way events look them up."""

    def __init__(self) -> None:
        self._subs: dict[tuple[str, object], set[S]] = defaultdict(set)
        self._streams: dict[S, set[Stream]] = defaultdict(set)
        self._accounts: dict[S, int | None] = {}

    def _key(self, sub: S, stream: Stream) -> tuple[str, object]:
        return (stream.name, self._accounts[sub]) if stream.name in PERSONAL else (stream.name, stream.param)

    def subscribe(self, sub: S, stream: Stream, account_id: int | None) -> None:
        """Add a subscription (subscribing twice is one subscription)."""
        self._accounts[sub] = account_id
        self._subs[self._key(sub, stream)].add(sub)
        self._streams[sub].add(stream)

    def unsubscribe(self, sub: S, stream: Stream) -> None:
        """Remove one subscription, if there was one."""
        if sub not in self._accounts or stream not in self._streams.get(sub, ()):
            return
        key = self._key(sub, stream)
        self._subs[key].discard(sub)
        if not self._subs[key]:
            del self._subs[key]
        self._streams[sub].discard(stream)

    def drop(self, sub: S) -> None:
        """Forget a subscriber and all its subscriptions."""
        for stream in list(self._streams.get(sub, ())):
            self.unsubscribe(sub, stream)
        self._streams.pop(sub, None)
        self._accounts.pop(sub, None)

    def streams_of(self, sub: S) -> set[Stream]:
        """What a subscriber listens to."""
        return set(self._streams.get(sub, ()))

    def subscribers(self) -> list[S]:
        """Everyone with at least one subscription."""
        return [sub for sub, streams in self._streams.items() if streams]

    def _pairs(self, name: str, params: Iterable[object]) -> list[tuple[S, Stream]]:
        out: list[tuple[S, Stream]] = []
        for param in params:
            subs = self._subs.get((name, param))
            if subs:
                stream = Stream(name) if name in PERSONAL else Stream(name, param)  # type: ignore[arg-type]
                out.extend((sub, stream) for sub in subs)
        return out

    def personal(self, name: str, account_ids: Iterable[int]) -> list[tuple[S, Stream]]:
        """Subscribers of `name` (`user`, `user:notification`, `direct`) reading as one of `account_ids`."""
        return self._pairs(name, account_ids)

    def lists(self, list_ids: Iterable[int]) -> list[tuple[S, Stream]]:
        """Subscribers of these lists' streams."""
        return self._pairs("list", [str(i) for i in list_ids])

    def list_ids(self) -> list[int]:
        """The lists someone here subscribes to."""
        return [int(key[1]) for key in self._subs if key[0] == "list"]  # type: ignore[arg-type]

    def accounts_on(self, name: str) -> list[int]:
        """Accounts with a subscriber on the personal stream `name`."""
        return [key[1] for key in self._subs if key[0] == name]  # type: ignore[misc]

    def public(self, *, local: bool, tags: Iterable[str]) -> list[tuple[S, Stream]]:
        """Subscribers who get a public post (local or not) with these hashtags."""
        tags = list(tags)
        pairs = self._pairs("public", [None]) + self._pairs("public:local" if local else "public:remote", [None])
        pairs += self._pairs("hashtag", tags)
        if local:
            pairs += self._pairs("hashtag:local", tags)
        return pairs

    def wants_public(self) -> bool:
        """Whether anyone listens to a public or hashtag stream (else public posts need no work)."""
        return any(key[0] in PUBLIC or key[0] in HASHTAG for key in self._subs)

    def account_of(self, sub: S) -> int | None:
        """The account a subscriber reads as."""
        return self._accounts.get(sub)
