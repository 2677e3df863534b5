"""Fuzzing what an inbox request meets before it is stored: every parser returns its result or raises
its documented refusal (which the inbox answers with a 4xx), never anything that would be a 500.

The strategies and targets live in tests/support/fuzzing.py, shared with bench/fuzz.py (100,000 cases).
FEDSERVER_FUZZ_EXAMPLES sets the examples per property here (default 250). Each input that once
crashed a parser is kept twice: as an @example of its property, and below with the answer it must get.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, example, given, settings

from fedserver.signatures import digest_header, http_date
from tests.support import fuzzing
from tests.support.fuzzing import ACTIVITY_BODY, INBOX_PATH, KEY_ID, LOCAL_DOMAIN, NOW, SENDER, Request, outcome

EXAMPLES = int(os.environ.get("FEDSERVER_FUZZ_EXAMPLES", "250"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _actor(**changes: object) -> dict:
    doc = {"id": SENDER, "type": "Person", "preferredUsername": "ann", "inbox": SENDER + "/inbox",
           "publicKey": {"id": KEY_ID, "owner": SENDER, "publicKeyPem": "-----BEGIN PUBLIC KEY-----"}}
    return doc | changes


def _post(**changes: object) -> dict:
    doc = {"id": SENDER + "/notes/1", "type": "Note", "attributedTo": SENDER, "content": "<p>hi</p>"}
    return doc | changes


def _cavage(signature: str) -> Request:
    """A POST whose Signature header is `signature`; the other headers are well-formed."""
    headers = (("Host", LOCAL_DOMAIN), ("Date", http_date(NOW)), ("Digest", digest_header(ACTIVITY_BODY)),
               ("Signature", signature))
    return Request("POST", INBOX_PATH, headers, ACTIVITY_BODY, LOCAL_DOMAIN, "rsa")


_HS2019 = f'keyId="{KEY_ID}",algorithm="hs2019",headers="(request-target) host (created) digest",signature="AAAA",'

# Inputs the fuzzing found that once raised something other than the documented refusal.
# actor/post "type" a list: TypeError (unhashable) from `kind not in ACTOR_TYPES` / `POST_TYPES`.
ACTOR_TYPE_LIST = _actor(type=["Person"])
POST_TYPE_LIST = _post(type=[{"type": "Mention"}])
# a lone surrogate (JSON "\ud800") in HTML: UnicodeEncodeError from nh3 in sanitize_html.
ACTOR_SURROGATE_SUMMARY = _actor(summary="<p>\ud800</p>")
POST_SURROGATE_CONTENT = _post(content="<p>\ud800</p>")
POST_SURROGATE_SUMMARY = _post(summary="\udc80 hi")
# a non-ASCII publicKeyPem: UnicodeEncodeError from pem.encode("ascii") in load_public_key.
ACTOR_NON_ASCII_PEM = _actor(publicKey={"id": KEY_ID, "owner": SENDER, "publicKeyPem": "Ü-----BEGIN PUBLIC KEY-----"})
# an embedded object whose "type" is a list: TypeError (unhashable) in the inbox's origin check.
INBOX_OBJECT_TYPE_LIST = json.dumps({
    "id": SENDER + "/activities/1", "type": "Create", "actor": SENDER,
    "object": {"id": SENDER + "/notes/1", "type": ["Note"], "attributedTo": SENDER}}).encode()
# draft-cavage signature with non-ASCII text: ValueError from base64.b64decode.
CAVAGE_NON_ASCII_SIGNATURE = _cavage(
    f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="(request-target) host date digest",signature="é"')
# created with 5,000 digits: ValueError from int(); with 400 digits: OverflowError from float().
CAVAGE_CREATED_5000_DIGITS = _cavage(_HS2019 + "created=" + "9" * 5000)
CAVAGE_CREATED_400_DIGITS = _cavage(_HS2019 + "created=" + "9" * 400)
# a Digest value with non-ASCII text: ValueError from base64.b64decode.
DIGEST_NON_ASCII = ("SHA-256=é\udc80", ACTIVITY_BODY)

ONCE_CRASHED = [
    ("actor-type-list", fuzzing.ACTOR, ACTOR_TYPE_LIST, "refused"),
    ("actor-surrogate-summary", fuzzing.ACTOR, ACTOR_SURROGATE_SUMMARY, "refused"),
    ("actor-non-ascii-pem", fuzzing.ACTOR, ACTOR_NON_ASCII_PEM, "refused"),
    ("post-type-list", fuzzing.POST, POST_TYPE_LIST, "refused"),
    ("post-surrogate-content", fuzzing.POST, POST_SURROGATE_CONTENT, "refused"),
    ("post-surrogate-summary", fuzzing.POST, POST_SURROGATE_SUMMARY, "refused"),
    # A Create of the sender's own object: stored, and left to the worker (no handler for that type).
    ("inbox-object-type-list", fuzzing.INBOX_BODY, INBOX_OBJECT_TYPE_LIST, "accepted"),
    ("cavage-non-ascii-signature", fuzzing.CAVAGE_REQUEST, CAVAGE_NON_ASCII_SIGNATURE, "refused"),
    ("cavage-created-5000-digits", fuzzing.CAVAGE_REQUEST, CAVAGE_CREATED_5000_DIGITS, "refused"),
    ("cavage-created-400-digits", fuzzing.CAVAGE_REQUEST, CAVAGE_CREATED_400_DIGITS, "refused"),
    ("digest-non-ascii", fuzzing.DIGEST, DIGEST_NON_ASCII, "refused"),
]


@pytest.mark.parametrize(("target", "case", "expected"), [entry[1:] for entry in ONCE_CRASHED],
                         ids=[entry[0] for entry in ONCE_CRASHED])
def test_inputs_that_once_crashed_a_parser_now_get_their_answer(target, case, expected):
    assert outcome(target, case) == expected


@pytest.mark.parametrize(("scheme", "index"), [("cavage", 0), ("cavage", 1), ("cavage", 2), ("rfc9421", 0),
                                               ("rfc9421", 1), ("rfc9421", 2)])
def test_unmutated_signed_requests_are_accepted(scheme, index):
    """The near-valid requests start from ones that verify, so a mutation is what gets them refused."""
    if scheme == "cavage":
        assert outcome(fuzzing.CAVAGE_REQUEST, fuzzing.cavage_requests()[index]) == "accepted"
    else:
        assert outcome(fuzzing.RFC9421_REQUEST, fuzzing.rfc9421_requests()[index]) == "accepted"


@FUZZ
@given(fuzzing.ID_HOST.strategy)
@example("https://[::1/")
@example("https://\ud800.example/")
def test_id_host_refuses_only_with_bad_id(case):
    outcome(fuzzing.ID_HOST, case)


@FUZZ
@given(fuzzing.ACTIVITY.strategy)
def test_parse_activity_refuses_only_with_parse_error(case):
    outcome(fuzzing.ACTIVITY, case)


@FUZZ
@given(fuzzing.INBOX_BODY.strategy)
@example(INBOX_OBJECT_TYPE_LIST)
@example(b"[" * 100_000 + b"]" * 100_000)
def test_inbox_answers_any_body_with_a_4xx_before_storing_it(case):
    outcome(fuzzing.INBOX_BODY, case)


@FUZZ
@given(fuzzing.ACTOR.strategy)
@example(ACTOR_TYPE_LIST)
@example(ACTOR_SURROGATE_SUMMARY)
@example(ACTOR_NON_ASCII_PEM)
def test_parse_actor_and_key_refuse_only_with_parse_or_signature_error(case):
    outcome(fuzzing.ACTOR, case)


@FUZZ
@given(fuzzing.POST.strategy)
@example(POST_TYPE_LIST)
@example(POST_SURROGATE_CONTENT)
@example(POST_SURROGATE_SUMMARY)
def test_parse_post_refuses_only_with_parse_error(case):
    outcome(fuzzing.POST, case)


@FUZZ
@given(fuzzing.CAVAGE_PARAMS.strategy)
def test_cavage_signature_header_refuses_only_with_signature_error(case):
    outcome(fuzzing.CAVAGE_PARAMS, case)


@FUZZ
@given(fuzzing.CAVAGE_REQUEST.strategy)
@example(CAVAGE_NON_ASCII_SIGNATURE)
@example(CAVAGE_CREATED_5000_DIGITS)
@example(CAVAGE_CREATED_400_DIGITS)
def test_cavage_request_refuses_only_with_signature_error(case):
    outcome(fuzzing.CAVAGE_REQUEST, case)


@FUZZ
@given(fuzzing.RFC9421_REQUEST.strategy)
def test_rfc9421_request_refuses_only_with_signature_error(case):
    outcome(fuzzing.RFC9421_REQUEST, case)


@FUZZ
@given(fuzzing.STRUCTURED.strategy)
def test_structured_fields_refuse_only_with_structured_field_error(case):
    outcome(fuzzing.STRUCTURED, case)


@FUZZ
@given(fuzzing.ACCEPT_SIGNATURE.strategy)
def test_accept_signature_refuses_only_with_value_error(case):
    outcome(fuzzing.ACCEPT_SIGNATURE, case)


@FUZZ
@given(fuzzing.DIGEST.strategy)
@example(DIGEST_NON_ASCII)
def test_digest_refuses_only_with_signature_error(case):
    outcome(fuzzing.DIGEST, case)


@FUZZ
@given(fuzzing.CONTENT_DIGEST.strategy)
def test_content_digest_refuses_only_with_signature_error(case):
    outcome(fuzzing.CONTENT_DIGEST, case)


@FUZZ
@given(fuzzing.HTTP_DATE.strategy)
def test_http_date_refuses_only_with_value_error(case):
    outcome(fuzzing.HTTP_DATE, case)
