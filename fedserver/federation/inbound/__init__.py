"""Inbound activities federation handles, and the table that registers them with the dispatcher.

`follows.py`: Follow, Accept/Reject of a Follow, Block and their Undo. `flags.py`: Flag (a report). `posts.py`: Create and
Update of posts, Update of actors, Delete. `reactions.py`: Like, Announce and their Undo.
Anything else (an Offer, an Agreement, a Receipt) belongs to the package that registers it.
"""

from __future__ import annotations

from activities.parse import ACTOR_TYPES, POST_TYPES

from ...dispatch import ANY, REFERENCE, Dispatcher
from . import flags, follows, posts, reactions
from .common import about_object, about_undone_object


def register(dispatcher: Dispatcher) -> None:
    """Route the social activities to their handlers."""
    dispatcher.register("Follow", ANY, follows.on_follow)
    dispatcher.register("Accept", ["Follow", REFERENCE], follows.on_accept_follow)
    dispatcher.register("Reject", ["Follow", REFERENCE], follows.on_reject_follow)
    dispatcher.register("Undo", "Follow", follows.on_undo_follow)
    dispatcher.register("Block", ANY, follows.on_block)
    dispatcher.register("Undo", "Block", follows.on_undo_block)
    dispatcher.register("Flag", ANY, flags.on_flag)
    dispatcher.register("Create", [*POST_TYPES, REFERENCE], posts.on_create_post)
    dispatcher.register_batch("Create", POST_TYPES, posts.on_create_posts, prepare=posts.prepare_create_post)
    dispatcher.register("Update", ACTOR_TYPES, posts.on_update_actor)
    dispatcher.register("Update", POST_TYPES, posts.on_update_post)
    dispatcher.register("Update", REFERENCE, posts.on_update_reference)
    dispatcher.register("Delete", ANY, posts.on_delete)
    dispatcher.register("Like", [ANY, REFERENCE, *POST_TYPES], reactions.on_like)
    dispatcher.register_batch("Like", [REFERENCE, *POST_TYPES], reactions.on_likes)
    dispatcher.register("Announce", ANY, reactions.on_announce)
    dispatcher.register("Undo", ["Like", "Announce"], reactions.on_undo_reaction)
    for kind in ("Like", "Announce"):
        dispatcher.order_by(kind, [REFERENCE, *POST_TYPES], about_object)
    for kind in ("Follow", "Block"):
        dispatcher.order_by(kind, [REFERENCE, *ACTOR_TYPES], about_object)
    dispatcher.order_by("Undo", ["Like", "Announce", "Follow", "Block"], about_undone_object)
    dispatcher.register("Undo", REFERENCE, reactions.on_undo_reference)
