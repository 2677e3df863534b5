"""Inbound activities to their handlers, by (activity type, object type).

Packages register their handlers into one `Dispatcher` at start-up (federation: follows,
posts, likes, boosts, blocks, deletes; storefront and rewards their own types), and the
inbox worker dispatches every stored activity through it. The object type is that of the
embedded object, or `REFERENCE` when the object is given by id only; a handler registered
for `ANY` takes every object type of its activity not registered more precisely. An
activity nobody handles is recorded as ignored with the pair named, never given to a
handler written for something else.

One sender's activities are handled in the order they arrived (a Follow before its Undo). A
package may narrow that for its own pairs with `order_by`: activities of one sender about
different things of that package (two orders) then run side by side, those about the same
thing (an order's acceptance, then its payment) still one after another.

A pair may also have a batch handler, for activities of its pairs that arrive together (from
one sender or many): the inbox worker gives it such a batch in arrival order, each sender's
activities in the order they came, and it handles them in one transaction of a few statements
instead of a transaction each. It answers for each activity (an exception stands for that
activity alone); if it raises, each activity of the batch is handled alone. It may come with
a pure `prepare` for each activity (parsing, sanitizing, search terms: nothing that reads or
writes the database), which the worker runs ahead, while the sender's earlier batch is still
in its transaction, so the processor and the database work side by side even for one sender.

Packages may also register post hooks: after a handler stores or updates a remote post, each
hook reads it in the same transaction (the storefront keeps the listing a Note carries, and
turns a direct message that orders into an order).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from activities.actor import Actor
from activities.parse import InboundActivity, ParseError, RemotePost, parse_activity

from .config import Settings
from .net.http import FetchBudget, HttpClient, Signer
from .publish import Publisher
from .turns import in_turns

ANY = "*"
REFERENCE = "(reference)"


class Outcome(enum.StrEnum):
    """What handling an activity came to (also the inbox item's final state)."""

    DONE = "done"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Result:
    """A handler's outcome and, for an ignored activity, why."""

    outcome: Outcome
    reason: str | None = None


DONE = Result(Outcome.DONE)


def ignored(reason: str) -> Result:
    """The activity changes nothing here; `reason` says why."""
    return Result(Outcome.IGNORED, reason)


@dataclass
class InboundContext:
    """What a handler may use: the database, the HTTP client, the activity's fetch budget, publishing."""

    pool: asyncpg.Pool
    settings: Settings
    http: HttpClient
    signer: Signer
    budget: FetchBudget
    recipient_id: int | None
    publisher: Publisher
    post_hooks: tuple[PostHook, ...] = ()

    async def post_stored(self, conn: asyncpg.Connection, post: RemotePost, author: Actor) -> None:
        """Run the post hooks on a remote post just stored or updated, in the caller's transaction."""
        for hook in self.post_hooks:
            await hook(conn, self, post, author)


@dataclass(frozen=True)
class BatchItem:
    """One activity of a batch, the personal inbox it came to (None: the shared inbox), and what its prepare made."""

    activity: InboundActivity
    recipient_id: int | None
    prepared: Any = None


Handler = Callable[[InboundContext, InboundActivity], Awaitable[Result]]
# Sees a pair's activities before the handler registered for it, and passes on to it those it does not take.
FirstHandler = Callable[[InboundContext, InboundActivity, Handler], Awaitable[Result]]
# A run of one sender's activities of one pair, in order: a result (or an exception) for each.
BatchHandler = Callable[[InboundContext, list[BatchItem]], Awaitable[list[Result | Exception]]]
# Pure work on one activity of a batch, done ahead of its turn; raising ParseError or ValueError fails it alone.
Prepare = Callable[[InboundActivity], Any]
# A batch parsed and prepared: an item for each activity, or the error that fails it alone.
Prepared = list[BatchItem | ParseError | ValueError]
# The thing an activity is about, for ordering (None: order it with everything else of its sender).
SubjectKey = Callable[[dict], str | None]
# Reads a remote post just stored or updated (its author given), in the handler's transaction.
PostHook = Callable[[asyncpg.Connection, InboundContext, RemotePost, Actor], Awaitable[None]]


def object_type(activity: InboundActivity) -> str:
    """The embedded object's type, or REFERENCE for an object given by id."""
    kind = activity.object_type
    return kind if isinstance(kind, str) else REFERENCE


def _pair(body: dict) -> tuple[str, str] | None:
    """(activity type, object type) of a stored activity, before parsing; None when it has no plain type."""
    kind, obj = body.get("type"), body.get("object")
    object_kind = obj.get("type") if isinstance(obj, dict) else REFERENCE
    return (kind, object_kind) if isinstance(kind, str) and isinstance(object_kind, str) else None


class Dispatcher:
    """Handlers keyed on (activity type, object type)."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}
        self.post_hooks: tuple[PostHook, ...] = ()
        self._subjects: dict[tuple[str, str], SubjectKey] = {}
        self._batches: dict[tuple[str, str], BatchHandler] = {}
        self._prepares: dict[BatchHandler, Prepare] = {}

    def order_by(self, activity_type: str, object_types: str | Iterable[str], subject: SubjectKey) -> None:
        """Order a sender's activities of these pairs per `subject` instead of all together."""
        for kind in [object_types] if isinstance(object_types, str) else object_types:
            self._subjects[(activity_type, kind)] = subject

    def ordering_key(self, actor: str, body: dict) -> str:
        """What an activity waits behind: its sender, or its sender and subject for pairs ordered by subject."""
        pair = _pair(body)
        subject_of = self._subjects.get(pair) if pair else None
        subject = subject_of(body) if subject_of else None
        return f"{actor} {subject}" if subject else actor

    def batch_key(self, body: dict) -> BatchHandler | None:
        """The batch handler of a stored activity's pair: activities with the same one may be handled as one batch."""
        pair = _pair(body)
        return self._batches.get(pair) if pair else None

    def on_post(self, hook: PostHook) -> None:
        """Run `hook` on every remote post a handler stores or updates."""
        self.post_hooks = (*self.post_hooks, hook)

    def register(self, activity_type: str, object_types: str | Iterable[str], handler: Handler) -> None:
        """Route `activity_type` with any of `object_types` (ANY, REFERENCE or type names) to `handler`."""
        for kind in [object_types] if isinstance(object_types, str) else object_types:
            key = (activity_type, kind)
            if key in self._handlers:
                raise ValueError(f"a handler for {activity_type}/{kind} is already registered")
            self._handlers[key] = handler

    def claim_first(self, activity_type: str, object_type: str, handler: FirstHandler) -> None:
        """Give `handler` the pair's activities before the handler registered for the pair, which it is given
        to pass on to (an Accept naming its object by id: an Offer of the storefront's, else a Follow)."""
        key = (activity_type, object_type)
        then = self._handlers.get(key)
        if then is None:
            raise ValueError(f"no handler for {activity_type}/{object_type} to come before")

        async def first(ctx: InboundContext, activity: InboundActivity) -> Result:
            return await handler(ctx, activity, then)

        self._handlers[key] = first

    def register_batch(self, activity_type: str, object_types: str | Iterable[str], handler: BatchHandler,
                       prepare: Prepare | None = None) -> None:
        """Handle runs of one sender's `activity_type` with any of `object_types` with `handler`.

        The pairs must be registered (and precisely) for one activity at a time too: that handler
        takes the activities of a batch that failed as a whole. `prepare`, if given, is run on each
        activity first (its answer is the item's `prepared`).
        """
        for kind in [object_types] if isinstance(object_types, str) else object_types:
            if (activity_type, kind) not in self._handlers:
                raise ValueError(f"register a handler for {activity_type}/{kind} before its batch handler")
            self._batches[(activity_type, kind)] = handler
        if prepare is not None:
            self._prepares[handler] = prepare

    def handler_for(self, activity: InboundActivity) -> Handler | None:
        """The most precise handler for this activity, if any."""
        return (self._handlers.get((activity.type, object_type(activity)))
                or self._handlers.get((activity.type, ANY)))

    def routes(self) -> list[tuple[str, str]]:
        """Every registered (activity type, object type), sorted."""
        return sorted(self._handlers)

    async def dispatch(self, ctx: InboundContext, body: dict) -> Result:
        """Parse a stored activity and run its handler; unhandled pairs are ignored, named."""
        activity = parse_activity(body)
        handler = self.handler_for(activity)
        if handler is None:
            return ignored(f"no handler for {activity.type}/{object_type(activity)}")
        return await handler(ctx, activity)

    async def prepare_many(self, bodies: list[tuple[dict, int | None]]) -> Prepared:
        """Parse and prepare stored activities of one `batch_key` (each with its recipient), in turns. Pure.

        Raises ValueError when they do not belong to one batch handler (the caller then handles them alone).
        """
        handlers = {self.batch_key(body) for body, _ in bodies}
        if len(handlers) != 1 or None in handlers:
            raise ValueError("these activities are not one batch")
        prepare = self._prepares.get(handlers.pop())  # type: ignore[arg-type]
        prepared: Prepared = []
        async for body, recipient_id in in_turns(bodies):
            try:
                activity = parse_activity(body)
                if _pair(body) != (activity.type, object_type(activity)):
                    raise RuntimeError("an activity of the batch is not what its stored type says")
                prepared.append(BatchItem(activity, recipient_id, prepare(activity) if prepare else None))
            except (ParseError, ValueError) as exc:
                prepared.append(exc)
        return prepared

    async def dispatch_many(self, ctx: InboundContext, bodies: list[tuple[dict, int | None]],
                            prepared: Prepared | None = None) -> list[Result | Exception]:
        """Handle stored activities of one `batch_key` in one batch, in order (`prepare_many` first, if not given).

        Raises ValueError when they do not belong to one batch handler (the caller then handles them alone).
        """
        handler = self.batch_key(bodies[0][0]) if bodies else None
        if prepared is None:
            prepared = await self.prepare_many(bodies)
        if handler is None or len(prepared) != len(bodies):
            raise ValueError("these activities are not one batch")
        items = [item for item in prepared if isinstance(item, BatchItem)]
        handled = await handler(ctx, items) if items else []
        if len(handled) != len(items):
            raise RuntimeError(f"a batch handler answered {len(handled)} of {len(items)} activities")
        answers = iter(handled)
        return [next(answers) if isinstance(item, BatchItem) else item for item in prepared]
