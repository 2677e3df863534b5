"""The dispatch registry: handlers by (activity type, object type), and what is left unhandled."""

from __future__ import annotations

import pytest

from activities.parse import parse_activity
from fedserver.app import build_dispatcher
from fedserver.dispatch import ANY, DONE, REFERENCE, Dispatcher, Outcome, ignored, object_type
from fedserver.federation.inbound import register as register_federation

ACTOR = "https://remote.example/users/bob"


def _activity(kind: str, obj: object) -> dict:
    return {"id": f"https://remote.example/{kind.lower()}/1", "type": kind, "actor": ACTOR, "object": obj}


async def _named(name: str):
    async def handler(ctx, activity):
        return ignored(name)
    return handler


async def test_the_most_precise_registration_wins_and_the_rest_is_ignored_by_name():
    dispatcher = Dispatcher()
    dispatcher.register("Accept", ["Follow", REFERENCE], await _named("follow"))
    dispatcher.register("Accept", "Offer", await _named("offer"))
    dispatcher.register("Delete", ANY, await _named("any delete"))
    cases = [
        (_activity("Accept", {"type": "Follow", "id": "https://x.example/f/1"}), "follow"),
        (_activity("Accept", "https://x.example/f/1"), "follow"),
        (_activity("Accept", {"type": "Offer", "id": "https://x.example/o/1"}), "offer"),
        (_activity("Delete", {"type": "Tombstone", "id": "https://remote.example/n/1"}), "any delete"),
        (_activity("Delete", ACTOR), "any delete"),
        (_activity("Offer", {"type": "Agreement", "id": "https://remote.example/a/1"}),
         "no handler for Offer/Agreement"),
        (_activity("Accept", {"type": "Agreement", "id": "https://remote.example/a/1"}),
         "no handler for Accept/Agreement"),
    ]
    for body, expected in cases:
        result = await dispatcher.dispatch(None, body)  # type: ignore[arg-type]
        assert (result.outcome, result.reason) == (Outcome.IGNORED, expected)


def test_a_pair_is_registered_once():
    dispatcher = Dispatcher()
    dispatcher.register("Like", ANY, lambda ctx, act: DONE)
    with pytest.raises(ValueError, match="Like/\\*"):
        dispatcher.register("Like", ANY, lambda ctx, act: DONE)


async def test_a_handler_claims_first_and_passes_on_what_it_does_not_take():
    dispatcher = Dispatcher()
    dispatcher.register("Accept", ["Follow", REFERENCE], await _named("follow"))

    async def offers_first(ctx, activity, then):
        return ignored("offer") if activity.object_id.endswith("/offers/1") else await then(ctx, activity)

    dispatcher.claim_first("Accept", REFERENCE, offers_first)
    results = [(await dispatcher.dispatch(None, _activity("Accept", obj))).reason  # type: ignore[arg-type]
               for obj in ("https://x.example/offers/1", "https://x.example/follows/1",
                           {"type": "Follow", "id": "https://x.example/offers/1"})]
    assert results == ["offer", "follow", "follow"]
    with pytest.raises(ValueError, match="Reject/"):
        dispatcher.claim_first("Reject", REFERENCE, offers_first)


def test_object_type_of_embedded_objects_and_references():
    assert object_type(parse_activity(_activity("Undo", {"type": "Like", "id": "https://remote.example/l/1",
                                                        "actor": ACTOR}))) == "Like"
    assert object_type(parse_activity(_activity("Undo", "https://remote.example/l/1"))) == REFERENCE


def test_federation_registers_the_social_activities_and_the_storefront_its_orders():
    federation = Dispatcher()
    register_federation(federation)
    social = set(federation.routes())
    for pair in [("Follow", ANY), ("Accept", "Follow"), ("Reject", REFERENCE), ("Undo", "Like"), ("Undo", "Block"),
                 ("Create", "Note"), ("Create", "Article"), ("Update", "Person"), ("Update", "Note"),
                 ("Delete", ANY), ("Like", ANY), ("Announce", ANY), ("Block", ANY)]:
        assert pair in social
    assert not {pair for pair in social if pair[0] == "Offer" or "Agreement" in pair or "Offer" in pair}
    shop = set(build_dispatcher().routes()) - social
    assert shop == {("Offer", "Agreement"), ("Accept", "Offer"), ("Reject", "Offer"), ("Update", "Agreement"),
                    ("Create", "Document")}
    assert federation.post_hooks == () and len(build_dispatcher().post_hooks) == 1


def test_order_activities_of_one_sender_wait_only_behind_the_same_order():
    dispatcher = build_dispatcher()
    agreement = {"type": "Agreement", "id": "https://b.example/orders/1"}
    offer = {"type": "Offer", "id": "https://b.example/offers/1", "object": agreement}
    keys = [dispatcher.ordering_key(ACTOR, body) for body in (
        offer, {"type": "Accept", "object": offer, "result": agreement},
        {"type": "Reject", "object": offer}, {"type": "Update", "object": agreement},
        {"type": "Create", "object": {"type": "Document", "name": "Receipt", "context": agreement["id"]}},
        {"type": "Accept", "object": offer["id"], "result": agreement})]  # FEP-0837 names the Offer by its id
    assert set(keys) == {f"{ACTOR} https://b.example/orders/1"}
    follow_accepted = {"type": "Accept", "object": "https://a.example/follows/1"}
    assert dispatcher.ordering_key(ACTOR, follow_accepted) == ACTOR
    other = {**offer, "object": {**agreement, "id": "https://b.example/orders/2"}}
    assert dispatcher.ordering_key(ACTOR, other) != keys[0]
    for body in ({"type": "Delete", "object": "https://a.example/users/x"}, {"type": "Create", "object": {"type": "Note"}},
                 {"type": "Update", "object": {"type": "Agreement"}}):
        assert dispatcher.ordering_key(ACTOR, body) == ACTOR  # everything else: the sender's own order


def test_reactions_of_one_sender_wait_only_behind_reactions_to_the_same_post():
    dispatcher = build_dispatcher()
    post, other = "https://a.example/notes/1", "https://a.example/notes/2"
    like = {"id": "https://remote.example/likes/1", "type": "Like", "object": post}
    same = [like, {"type": "Undo", "object": like}, {"type": "Announce", "object": post},
            {"type": "Undo", "object": {"type": "Announce", "object": post}},
            {"type": "Like", "object": {"type": "Note", "id": post}}]
    assert {dispatcher.ordering_key(ACTOR, body) for body in same} == {f"{ACTOR} {post}"}
    assert dispatcher.ordering_key(ACTOR, {**like, "object": other}) == f"{ACTOR} {other}"
    # Follows and blocks of one account, and their Undo, wait for each other, not for the rest.
    account = "https://a.example/users/kim"
    follow = {"id": "https://remote.example/follows/1", "type": "Follow", "object": account}
    assert {dispatcher.ordering_key(ACTOR, body) for body in (
        follow, {"type": "Undo", "object": follow}, {"type": "Block", "object": account},
        {"type": "Undo", "object": {"type": "Block", "object": account}})} == {f"{ACTOR} {account}"}
    # An Undo that does not say what the reaction was about waits behind everything of its sender.
    for body in ({"type": "Undo", "object": "https://remote.example/likes/1"},
                 {"type": "Undo", "object": {"type": "Like", "id": "https://remote.example/likes/1"}}):
        assert dispatcher.ordering_key(ACTOR, body) == ACTOR


def _create(n: int, actor: str = ACTOR, kind: str = "Note") -> dict:
    return {"id": f"{actor}/creates/{n}", "type": "Create", "actor": actor,
            "object": {"id": f"{actor}/notes/{n}", "type": kind, "attributedTo": actor}}


def test_a_batch_handler_needs_the_one_at_a_time_handler_of_its_pairs_first():
    dispatcher = Dispatcher()
    with pytest.raises(ValueError, match="Create/Note"):
        dispatcher.register_batch("Create", "Note", lambda ctx, items: [])
    dispatcher.register("Create", ["Note", "Article", "Question"], lambda ctx, act: DONE)

    def batch(ctx, items):
        return []

    dispatcher.register_batch("Create", ["Note", "Article"], batch)
    # Notes and Articles of any senders may share a batch; the rest is handled one at a time.
    assert dispatcher.batch_key(_create(1)) is batch and dispatcher.batch_key(_create(2, kind="Article")) is batch
    assert dispatcher.batch_key(_create(1, "https://x.example/users/eve")) is batch
    assert dispatcher.batch_key(_create(1, kind="Question")) is None
    assert dispatcher.batch_key({"type": "Create", "object": {"type": ["Note"]}}) is None  # no plain type
    assert dispatcher.batch_key({"type": "Like", "object": [1]}) is None


async def test_a_batch_answers_each_activity_in_order_with_parse_errors_in_their_places():
    seen = []

    async def batch(ctx, items):
        seen.append([item.activity.id for item in items])
        return [ignored(f"handled {item.activity.id}") for item in items]

    dispatcher = Dispatcher()
    dispatcher.register("Create", "Note", lambda ctx, act: DONE)
    dispatcher.register_batch("Create", "Note", batch)
    broken = {**_create(2), "id": None}  # no id: the parser refuses it
    answers = await dispatcher.dispatch_many(None, [(_create(1), None), (broken, 7), (_create(3), 5)])  # type: ignore[arg-type]
    assert seen == [[f"{ACTOR}/creates/1", f"{ACTOR}/creates/3"]]
    assert answers[0].reason == f"handled {ACTOR}/creates/1" and answers[2].reason == f"handled {ACTOR}/creates/3"
    assert isinstance(answers[1], ValueError)


async def test_what_is_not_one_batch_handlers_is_refused_as_a_batch():
    async def batch(ctx, items):
        return [DONE for _ in items[1:]]  # one answer short

    dispatcher = Dispatcher()
    dispatcher.register("Create", ["Note", "Article"], lambda ctx, act: DONE)
    dispatcher.register("Like", ANY, lambda ctx, act: DONE)
    dispatcher.register_batch("Create", ["Note", "Article"], batch)
    with pytest.raises(ValueError, match="not one batch"):
        await dispatcher.dispatch_many(None, [(_create(1), None), (_activity("Like", "https://x.example/n/1"), None)])  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="answered 2 of 3"):
        await dispatcher.dispatch_many(None, [(_create(1), None), (_create(2, kind="Article"), None),  # type: ignore[arg-type]
                                              (_create(3, "https://x.example/users/eve"), None)])
