"""HTTP signatures: draft-cavage interop with the httpsig reference library, Mastodon's rejection
rules, RFC 9421 against its published vectors, and the small helpers."""

from __future__ import annotations

import base64
import hashlib
import random
import re

import httpsig
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from fedserver.signatures import (
    ParsedSignature, SignatureError, content_digest_header, digest_header, generate_rsa_keypair,
    http_date, key_owner_url, load_private_key, load_public_key, parse_accept_signature,
    parse_http_date, parse_request_signature, public_pem_of, sign_request, sign_request_rfc9421,
    split_target_url, verify_parsed,
)
from fedserver.signatures.cavage import parse_signature_header
from fedserver.signatures.common import Headers
from fedserver.signatures.digest import check_content_digest
from fedserver.signatures.keys import rsa_sign
from fedserver.signatures.rfc9421 import Target, read_signature, signature_base
from fedserver.signatures.structured import StructuredFieldError, Token, parse_dictionary

NOW = 1_750_000_000.0
HOST = "inbox.example"
KEY_ID = "https://origin.example/users/alice#main-key"
BODY = b'{"type":"Create","actor":"https://origin.example/users/alice"}'
POST_NAMES = ["(request-target)", "host", "date", "digest", "content-type"]
GET_NAMES = ["(request-target)", "host", "date", "accept"]


@pytest.fixture(scope="module")
def keypair() -> tuple[str, str]:
    return generate_rsa_keypair()


@pytest.fixture(scope="module")
def other_keypair() -> tuple[str, str]:
    return generate_rsa_keypair()


def _reason(exc: pytest.ExceptionInfo) -> str:
    return str(exc.value)


# --- draft-cavage signing, checked by httpsig --------------------------------------------------


def _our_signed_post(private_pem: str, path: str, body: bytes = BODY, now: float = NOW) -> dict[str, str]:
    headers = {"Content-Type": "application/activity+json"}
    headers |= sign_request("POST", path, headers, body, key_id=KEY_ID, private_key=private_pem, host=HOST, now=now)
    return headers


def _our_signed_get(private_pem: str, path: str, now: float = NOW) -> dict[str, str]:
    headers = {"Accept": "application/activity+json"}
    headers |= sign_request("GET", path, headers, key_id=KEY_ID, private_key=private_pem, host=HOST, now=now)
    return headers


@pytest.mark.parametrize("path", ["/users/bob/inbox", "/inbox?page=2&x=%20y"])
def test_post_signed_like_mastodon_verifies_with_httpsig(keypair, path):
    headers = _our_signed_post(keypair[0], path)
    assert headers["Digest"] == digest_header(BODY)
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", headers["Date"])
    assert 'algorithm="rsa-sha256"' in headers["Signature"]
    assert 'headers="(request-target) host date digest content-type"' in headers["Signature"]
    assert f'keyId="{KEY_ID}"' in headers["Signature"]
    verifier = httpsig.HeaderVerifier(headers, keypair[1], required_headers=POST_NAMES, method="POST",
                                      path=path, sign_header="signature")
    assert verifier.verify()


@pytest.mark.parametrize("path", ["/users/bob", "/users/bob/outbox?page=true"])
def test_signed_get_verifies_with_httpsig(keypair, path):
    headers = _our_signed_get(keypair[0], path)
    assert headers["Host"] == HOST
    assert 'headers="(request-target) host date accept"' in headers["Signature"]
    assert "Digest" not in headers
    verifier = httpsig.HeaderVerifier(headers, keypair[1], required_headers=GET_NAMES, method="GET",
                                      path=path, sign_header="signature")
    assert verifier.verify()


def test_signed_get_adds_accept_when_missing(keypair):
    added = sign_request("GET", "/users/bob", {"Host": HOST}, key_id=KEY_ID, private_key=keypair[0], now=NOW)
    assert "Host" not in added and added["Accept"].startswith("application/activity+json")


def test_signing_without_a_host_is_refused(keypair):
    with pytest.raises(ValueError):
        sign_request("GET", "/users/bob", {}, key_id=KEY_ID, private_key=keypair[0])


@pytest.mark.parametrize("path", ["/users/bob/inbox", "/inbox?page=2"])
def test_our_post_round_trips_through_our_verifier(keypair, path):
    headers = _our_signed_post(keypair[0], path)
    parsed = parse_request_signature("POST", path, headers, BODY, now=NOW)
    assert isinstance(parsed, ParsedSignature)
    assert (parsed.scheme, parsed.key_id, parsed.algorithm) == ("draft-cavage", KEY_ID, "rsa-sha256")
    verify_parsed(parsed, keypair[1])
    verify_parsed(parsed, load_public_key(keypair[1]))
    verify_parsed(parsed, load_public_key(keypair[1]).key)


# --- draft-cavage verification of what httpsig signs -------------------------------------------


def _httpsig_headers(private_pem: str, method: str, path: str, names: list[str], body: bytes = b"",
                     now: float = NOW, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"Host": HOST, "Date": http_date(now), **(extra or {})}
    if "digest" in names and "Digest" not in headers:
        headers["Digest"] = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    if "content-type" in names:
        headers["Content-Type"] = "application/activity+json"
    if "accept" in names:
        headers["Accept"] = "application/activity+json"
    signer = httpsig.HeaderSigner(KEY_ID, private_pem, algorithm="rsa-sha256", headers=names, sign_header="signature")
    signed = signer.sign(headers, method=method, path=path)
    return {**headers, "Signature": signed["signature"]}


@pytest.mark.parametrize("path", ["/users/bob/inbox", "/inbox?a=1&b=%C3%A9"])
def test_post_signed_by_httpsig_is_accepted(keypair, path):
    headers = _httpsig_headers(keypair[0], "POST", path, POST_NAMES, BODY)
    parsed = parse_request_signature("POST", path, headers, BODY, now=NOW)
    assert parsed.key_id == KEY_ID
    verify_parsed(parsed, keypair[1])


@pytest.mark.parametrize("path", ["/users/bob", "/users/bob/followers?page=1"])
def test_get_signed_by_httpsig_is_accepted(keypair, path):
    headers = _httpsig_headers(keypair[0], "GET", path, GET_NAMES)
    verify_parsed(parse_request_signature("GET", path, headers, now=NOW), keypair[1])


def test_request_target_signed_without_query_is_accepted(keypair):
    # Older Mastodon left the query out of (request-target); Mastodon still accepts that.
    headers = _httpsig_headers(keypair[0], "GET", "/users/bob/outbox", GET_NAMES)
    parsed = parse_request_signature("GET", "/users/bob/outbox?page=true", headers, now=NOW)
    assert len(parsed.signing_strings) == 2
    verify_parsed(parsed, keypair[1])


def test_hs2019_algorithm_is_accepted(keypair):
    headers = _httpsig_headers(keypair[0], "POST", "/inbox", POST_NAMES, BODY)
    headers["Signature"] = headers["Signature"].replace('algorithm="rsa-sha256"', 'algorithm="hs2019"')
    parsed = parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)
    assert parsed.algorithm == "hs2019"
    verify_parsed(parsed, keypair[1])


def test_absent_algorithm_means_hs2019(keypair):
    headers = _httpsig_headers(keypair[0], "POST", "/inbox", POST_NAMES, BODY)
    headers["Signature"] = headers["Signature"].replace('algorithm="rsa-sha256",', "")
    parsed = parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)
    assert parsed.algorithm == "hs2019"
    verify_parsed(parsed, keypair[1])


def _hs2019_created(private_pem: str, created: int, expires: int | None = None, algorithm: str = "hs2019"):
    """A GoToSocial-style signature over (created)/(expires), signed by httpsig's raw signer."""
    names = ["(request-target)", "host", "(created)", "digest"] + (["(expires)"] if expires else [])
    digest = digest_header(BODY)
    lines = ["(request-target): post /inbox", f"host: {HOST}", f"(created): {created}", f"digest: {digest}"]
    lines += [f"(expires): {expires}"] if expires else []
    signature = httpsig.sign.Signer(private_pem, algorithm="rsa-sha256").sign("\n".join(lines))
    params = f'keyId="{KEY_ID}",algorithm="{algorithm}",created={created},'
    params += f"expires={expires}," if expires else ""
    params += f'headers="{" ".join(names)}",signature="{signature}"'
    return {"Host": HOST, "Digest": digest, "Signature": params}


def test_hs2019_with_created_and_expires_is_accepted(keypair):
    headers = _hs2019_created(keypair[0], int(NOW) - 60, int(NOW) + 240)
    parsed = parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)
    assert (parsed.created, parsed.expires) == (NOW - 60, NOW + 240)
    verify_parsed(parsed, keypair[1])


def test_created_pseudo_header_with_rsa_sha256_is_rejected(keypair):
    headers = _hs2019_created(keypair[0], int(NOW), algorithm="rsa-sha256")
    with pytest.raises(SignatureError, match=r"\(created\) is only allowed with hs2019"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_passed_expires_is_rejected(keypair):
    headers = _hs2019_created(keypair[0], int(NOW) - 600, int(NOW) - 1)
    with pytest.raises(SignatureError, match="expired"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_expires_is_capped_at_twelve_hours_after_created(keypair):
    headers = _hs2019_created(keypair[0], int(NOW) - 13 * 3600, int(NOW) + 3600)
    with pytest.raises(SignatureError, match="expired"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_created_far_in_the_future_is_rejected(keypair):
    headers = _hs2019_created(keypair[0], int(NOW) + 3601)
    with pytest.raises(SignatureError, match="future"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


# --- draft-cavage rejections -------------------------------------------------------------------


def test_post_without_digest_header_is_rejected(keypair):
    headers = _our_signed_post(keypair[0], "/inbox")
    del headers["Digest"]
    with pytest.raises(SignatureError, match="signed header digest is missing"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_post_whose_signature_does_not_cover_digest_is_rejected(keypair):
    names = ["(request-target)", "host", "date", "content-type"]
    headers = _httpsig_headers(keypair[0], "POST", "/inbox", names, BODY)
    with pytest.raises(SignatureError, match="must cover digest") as exc:
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)
    assert _reason(exc) == "signature of a request with a body must cover digest"


def test_wrong_digest_is_rejected(keypair):
    headers = _httpsig_headers(keypair[0], "POST", "/inbox", POST_NAMES, b"something else")
    with pytest.raises(SignatureError, match="Digest does not match the body"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_body_changed_after_signing_is_rejected(keypair):
    headers = _our_signed_post(keypair[0], "/inbox")
    with pytest.raises(SignatureError, match="Digest does not match the body"):
        parse_request_signature("POST", "/inbox", headers, BODY + b" ", now=NOW)


def test_digest_replaced_to_match_a_new_body_fails_the_signature(keypair):
    headers = _our_signed_post(keypair[0], "/inbox")
    forged = BODY.replace(b"alice", b"mallory")
    headers["Digest"] = digest_header(forged)
    parsed = parse_request_signature("POST", "/inbox", headers, forged, now=NOW)
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_parsed(parsed, keypair[1])


def test_digest_only_in_sha512_is_rejected(keypair):
    headers = _our_signed_post(keypair[0], "/inbox")
    headers["Digest"] = "SHA-512=" + base64.b64encode(hashlib.sha512(BODY).digest()).decode()
    with pytest.raises(SignatureError, match="no SHA-256"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_digest_list_with_lowercase_sha256_is_accepted(keypair):
    sha512 = base64.b64encode(hashlib.sha512(BODY).digest()).decode()
    sha256 = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    digest = f"SHA-512={sha512}, sha-256={sha256}"
    headers = _httpsig_headers(keypair[0], "POST", "/inbox", POST_NAMES, BODY, extra={"Digest": digest})
    verify_parsed(parse_request_signature("POST", "/inbox", headers, BODY, now=NOW), keypair[1])


def test_pinned_algorithm_must_fit_the_signature(keypair):
    parsed = parse_request_signature("POST", "/inbox", _our_signed_post(keypair[0], "/inbox"), BODY, now=NOW)
    verify_parsed(parsed, keypair[1], algorithm="rsa-v1_5-sha256")
    with pytest.raises(SignatureError, match="does not fit"):
        verify_parsed(parsed, keypair[1], algorithm="rsa-pss-sha512")


def test_get_whose_signature_does_not_cover_host_is_rejected(keypair):
    headers = _httpsig_headers(keypair[0], "GET", "/users/bob", ["(request-target)", "date", "accept"])
    with pytest.raises(SignatureError, match="GET must cover host"):
        parse_request_signature("GET", "/users/bob", headers, now=NOW)


def test_signature_covering_no_time_is_rejected(keypair):
    headers = _httpsig_headers(keypair[0], "GET", "/users/bob", ["(request-target)", "host", "accept"])
    with pytest.raises(SignatureError, match=r"must cover date or \(created\)"):
        parse_request_signature("GET", "/users/bob", headers, now=NOW)


def test_signature_covering_neither_target_nor_digest_is_rejected(keypair):
    headers = _httpsig_headers(keypair[0], "GET", "/users/bob", ["host", "date", "accept"])
    with pytest.raises(SignatureError, match=r"must cover \(request-target\) or digest"):
        parse_request_signature("GET", "/users/bob", headers, now=NOW)


def test_signed_header_absent_from_request_is_rejected(keypair):
    headers = _our_signed_get(keypair[0], "/users/bob")
    del headers["Accept"]
    with pytest.raises(SignatureError, match="signed header accept is missing"):
        parse_request_signature("GET", "/users/bob", headers, now=NOW)


def test_date_66_minutes_old_is_rejected(keypair):
    headers = _our_signed_post(keypair[0], "/inbox", now=NOW - 66 * 60)
    with pytest.raises(SignatureError, match="too old"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_date_64_minutes_old_is_still_accepted(keypair):
    headers = _our_signed_post(keypair[0], "/inbox", now=NOW - 64 * 60)
    verify_parsed(parse_request_signature("POST", "/inbox", headers, BODY, now=NOW), keypair[1])


def test_date_more_than_an_hour_ahead_is_rejected(keypair):
    headers = _our_signed_post(keypair[0], "/inbox", now=NOW + 61 * 60)
    with pytest.raises(SignatureError, match="too far in the future"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_unparseable_date_is_rejected(keypair):
    headers = _our_signed_post(keypair[0], "/inbox")
    headers["Date"] = "yesterday"
    with pytest.raises(SignatureError, match="invalid Date header"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_signature_from_another_key_is_rejected(keypair, other_keypair):
    headers = _our_signed_post(other_keypair[0], "/inbox")
    parsed = parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_parsed(parsed, keypair[1])


def test_changed_signed_header_fails_the_signature(keypair):
    headers = _our_signed_post(keypair[0], "/inbox")
    headers["Content-Type"] = "text/plain"
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_parsed(parse_request_signature("POST", "/inbox", headers, BODY, now=NOW), keypair[1])


def test_other_path_fails_the_signature(keypair):
    headers = _our_signed_post(keypair[0], "/users/bob/inbox")
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_parsed(parse_request_signature("POST", "/users/eve/inbox", headers, BODY, now=NOW), keypair[1])


@pytest.mark.parametrize("value", [
    'keyId="a",signature="b" junk',
    'keyId="unterminated,signature="AAAA"',
    'keyId="a";signature="b"',
    "garbage",
])
def test_malformed_signature_header_is_rejected(value):
    headers = {"Host": HOST, "Date": http_date(NOW), "Signature": value}
    with pytest.raises(SignatureError, match="malformed Signature header"):
        parse_request_signature("GET", "/", headers, now=NOW)


def test_duplicate_signature_parameter_is_rejected(keypair):
    headers = _our_signed_get(keypair[0], "/users/bob")
    headers["Signature"] += ',keyId="https://evil.example/actor#main-key"'
    with pytest.raises(SignatureError, match="repeats keyid"):
        parse_request_signature("GET", "/users/bob", headers, now=NOW)


def test_hmac_algorithm_is_rejected(keypair):
    headers = _our_signed_get(keypair[0], "/users/bob")
    headers["Signature"] = headers["Signature"].replace("rsa-sha256", "hmac-sha256")
    with pytest.raises(SignatureError, match="unsupported signature algorithm hmac-sha256"):
        parse_request_signature("GET", "/users/bob", headers, now=NOW)


@pytest.mark.parametrize("drop", ["keyId", "signature"])
def test_signature_without_key_id_or_value_is_rejected(keypair, drop):
    headers = _our_signed_get(keypair[0], "/users/bob")
    headers["Signature"] = re.sub(drop + r'="[^"]*",?', "", headers["Signature"])
    with pytest.raises(SignatureError, match=f"lacks {drop}"):
        parse_request_signature("GET", "/users/bob", headers, now=NOW)


def test_signature_value_that_is_not_base64_is_rejected(keypair):
    headers = _our_signed_get(keypair[0], "/users/bob")
    headers["Signature"] = re.sub(r'signature="[^"]*"', 'signature="not base64!"', headers["Signature"])
    with pytest.raises(SignatureError, match="not valid base64"):
        parse_request_signature("GET", "/users/bob", headers, now=NOW)


def test_unsigned_request_is_rejected():
    with pytest.raises(SignatureError) as exc:
        parse_request_signature("POST", "/inbox", {"Host": HOST}, BODY, now=NOW)
    assert _reason(exc) == "no signature"


def test_signature_header_parser_handles_quotes_commas_and_unknown_params():
    params = parse_signature_header(
        ' keyId="https://h/u/a#k,ey" , algorithm=hs2019,future="x, \\"y\\"",created=123,'
        'headers="(request-target) host",signature="QUJD"')
    assert params["keyid"] == "https://h/u/a#k,ey"
    assert params["algorithm"] == "hs2019" and params["created"] == "123"
    assert params["future"] == 'x, "y"'


def _outcome(parse, value):
    try:
        return parse(value)
    except SignatureError as exc:
        return ("error", exc.reason)


def test_signature_header_fast_path_agrees_with_the_general_parser():
    from fedserver.signatures.cavage import _parse_general

    rng = random.Random(7)
    pieces = ['keyId="https://h/u#k"', 'algorithm="rsa-sha256"', 'headers="(request-target) host date"',
              'signature="QUJD"', 'KEYID="x"', 'a="\\""', 'b=c', 'd=""', 'e="f,g"', " ", ",", '"', "=", "\\"]
    for _ in range(20_000):
        value = rng.choice(["", ","]).join(rng.choice(pieces) for _ in range(rng.randint(1, 5)))
        assert _outcome(parse_signature_header, value) == _outcome(_parse_general, value), value


def test_parse_needs_no_key_and_reports_key_id_and_owner(keypair):
    headers = _our_signed_get(keypair[0], "/users/bob")
    parsed = parse_request_signature("GET", "/users/bob", headers, now=NOW)
    assert key_owner_url(parsed.key_id) == "https://origin.example/users/alice"
    assert parsed.covered == tuple(GET_NAMES)


def test_list_of_header_pairs_is_accepted(keypair):
    headers = list(_our_signed_post(keypair[0], "/inbox").items())
    verify_parsed(parse_request_signature("POST", "/inbox", headers, BODY, now=NOW), keypair[1])


# --- RFC 9421: our signer and Mastodon's policy ------------------------------------------------


def _rfc9421_post(private_pem: str, path: str = "/inbox", body: bytes = BODY, now: float = NOW, **kwargs):
    headers = {"Host": HOST, "Content-Type": "application/activity+json"}
    headers |= sign_request_rfc9421("POST", path, headers, body, key_id=KEY_ID, private_key=private_pem,
                                    now=now, **kwargs)
    return headers


@pytest.mark.parametrize("path", ["/inbox", "/users/bob/inbox?x=1&y=%2F"])
def test_rfc9421_post_signed_by_us_verifies(keypair, path):
    headers = _rfc9421_post(keypair[0], path)
    assert headers["Signature-Input"].startswith(
        'sig1=("@method" "@target-uri" "@authority" "content-digest" "date");created=1750000000;keyid="')
    assert headers["Content-Digest"] == content_digest_header(BODY)
    parsed = parse_request_signature("POST", path, headers, BODY, now=NOW)
    assert (parsed.scheme, parsed.key_id, parsed.label) == ("rfc9421", KEY_ID, "sig1")
    verify_parsed(parsed, keypair[1])


def test_rfc9421_get_signed_by_us_verifies(keypair):
    headers = sign_request_rfc9421("GET", "/users/bob?page=1", {}, key_id=KEY_ID, private_key=keypair[0],
                                   authority=HOST, now=NOW)
    assert headers["Host"] == HOST and "content-digest" not in headers["Signature-Input"]
    parsed = parse_request_signature("GET", "/users/bob?page=1", headers, now=NOW)
    verify_parsed(parsed, keypair[1])


def test_rfc9421_target_uri_uses_the_authority_we_were_reached_at(keypair):
    headers = _rfc9421_post(keypair[0])
    parsed = parse_request_signature("POST", "/inbox", headers, BODY, authority="INBOX.example:443", now=NOW)
    verify_parsed(parsed, keypair[1])
    parsed = parse_request_signature("POST", "/inbox", headers, BODY, scheme="http", now=NOW)
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_parsed(parsed, keypair[1])


def test_rfc9421_content_digest_mismatch_is_rejected(keypair):
    headers = _rfc9421_post(keypair[0])
    with pytest.raises(SignatureError, match="Content-Digest does not match the body"):
        parse_request_signature("POST", "/inbox", headers, BODY + b"!", now=NOW)


def test_rfc9421_post_without_content_digest_coverage_is_rejected(keypair):
    headers = _rfc9421_post(keypair[0], components=("@method", "@target-uri", "date"))
    with pytest.raises(SignatureError, match="must cover content-digest"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_rfc9421_without_target_uri_coverage_is_rejected(keypair):
    headers = _rfc9421_post(keypair[0], components=("@method", "@authority", "@path", "content-digest"))
    with pytest.raises(SignatureError, match="must cover @method and @target-uri"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_rfc9421_without_created_is_rejected(keypair):
    headers = _rfc9421_post(keypair[0])
    headers["Signature-Input"] = re.sub(r";created=\d+", "", headers["Signature-Input"])
    with pytest.raises(SignatureError, match="lacks created"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_rfc9421_old_created_is_rejected(keypair):
    headers = _rfc9421_post(keypair[0], now=NOW - 66 * 60)
    with pytest.raises(SignatureError, match="too old"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_rfc9421_created_in_the_future_is_rejected(keypair):
    headers = _rfc9421_post(keypair[0], now=NOW + 2 * 3600)
    with pytest.raises(SignatureError, match="future"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_rfc9421_passed_expires_is_rejected(keypair):
    headers = _rfc9421_post(keypair[0], now=NOW - 600)
    headers["Signature-Input"] += f";expires={int(NOW) - 1}"
    with pytest.raises(SignatureError, match="expired"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_rfc9421_signature_from_another_key_is_rejected(keypair, other_keypair):
    headers = _rfc9421_post(other_keypair[0])
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_parsed(parse_request_signature("POST", "/inbox", headers, BODY, now=NOW), keypair[1])


def test_rfc9421_changed_method_fails_the_signature(keypair):
    headers = _rfc9421_post(keypair[0])
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_parsed(parse_request_signature("PUT", "/inbox", headers, BODY, now=NOW), keypair[1])


def test_rfc9421_first_label_is_used(keypair):
    headers = _rfc9421_post(keypair[0])
    headers["Signature-Input"] = 'zz=("@method");created=1;keyid="x", ' + headers["Signature-Input"]
    headers["Signature"] = "zz=:AAAA:, " + headers["Signature"]
    with pytest.raises(SignatureError, match="must cover @method and @target-uri"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


@pytest.mark.parametrize("field, value, reason", [
    ("Signature-Input", 'sig1=("@method" "@target-uri";created=1', "malformed Signature-Input header"),
    ("Signature-Input", 'sig1="@method"', "Signature-Input sig1 is not a list of components"),
    ("Signature", "sig1=:not base64!:", "malformed Signature header"),
    ("Signature", "other=:AAAA:", "Signature header has no byte sequence for sig1"),
])
def test_rfc9421_malformed_headers_are_rejected(keypair, field, value, reason):
    headers = _rfc9421_post(keypair[0])
    headers[field] = value
    with pytest.raises(SignatureError) as exc:
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)
    assert _reason(exc) == reason


def test_rfc9421_signature_input_without_signature_is_rejected(keypair):
    headers = _rfc9421_post(keypair[0])
    del headers["Signature"]
    with pytest.raises(SignatureError, match="Signature header missing"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_rfc9421_unsupported_alg_is_rejected(keypair):
    headers = _rfc9421_post(keypair[0])
    headers["Signature-Input"] = headers["Signature-Input"].replace("rsa-v1_5-sha256", "hmac-sha256")
    with pytest.raises(SignatureError, match="unsupported signature algorithm hmac-sha256"):
        parse_request_signature("POST", "/inbox", headers, BODY, now=NOW)


def test_accept_signature_is_parsed_and_honoured(keypair):
    requested = parse_accept_signature(
        'sig1=("@method" "@target-uri" "@authority" "content-digest" "content-type");'
        'keyid="https://origin.example/users/alice#main-key";created;tag="app-123"')
    wanted = requested["sig1"]
    assert wanted.component_names == ("@method", "@target-uri", "@authority", "content-digest", "content-type")
    assert dict(wanted.params) == {"keyid": KEY_ID, "created": True, "tag": "app-123"}
    headers = _rfc9421_post(keypair[0], components=wanted.components)
    assert '"content-type");created=' in headers["Signature-Input"]
    verify_parsed(parse_request_signature("POST", "/inbox", headers, BODY, now=NOW), keypair[1])


def test_malformed_accept_signature_is_refused():
    with pytest.raises(ValueError):
        parse_accept_signature('sig1=("@method" ')


def test_rfc9421_ed25519_signature_round_trips():
    key = ed25519.Ed25519PrivateKey.generate()
    headers = {"Host": HOST}
    headers |= sign_request_rfc9421("POST", "/inbox", headers, BODY, key_id=KEY_ID, private_key=key, now=NOW)
    assert 'alg="ed25519"' in headers["Signature-Input"]
    verify_parsed(parse_request_signature("POST", "/inbox", headers, BODY, now=NOW), public_pem_of(key))


# --- RFC 9421 published vectors (Appendix B.1 keys, B.2 request, section 4.3, B.2.2, B.2.6) ----

RFC_RSA_PUBLIC = """-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAhAKYdtoeoy8zcAcR874L8cnZxKzAGwd7v36APp7Pv6Q2jdsPBRrw
WEBnez6d0UDKDwGbc6nxfEXAy5mbhgajzrw3MOEt8uA5txSKobBpKDeBLOsdJKFq
MGmXCQvEG7YemcxDTRPxAleIAgYYRjTSd/QBwVW9OwNFhekro3RtlinV0a75jfZg
kne/YiktSvLG34lw2zqXBDTC5NHROUqGTlML4PlNZS5Ri2U4aCNx2rUPRcKIlE0P
uKxI4T+HIaFpv8+rdV6eUgOrB2xeI1dSFFn/nnv5OoZJEIB+VmuKn3DCUcCZSFlQ
PSXSfBDiUGhwOw76WuSSsf1D4b/vLoJ10wIDAQAB
-----END RSA PUBLIC KEY-----
"""

RFC_RSA_PRIVATE = """-----BEGIN RSA PRIVATE KEY-----
MIIEqAIBAAKCAQEAhAKYdtoeoy8zcAcR874L8cnZxKzAGwd7v36APp7Pv6Q2jdsP
BRrwWEBnez6d0UDKDwGbc6nxfEXAy5mbhgajzrw3MOEt8uA5txSKobBpKDeBLOsd
JKFqMGmXCQvEG7YemcxDTRPxAleIAgYYRjTSd/QBwVW9OwNFhekro3RtlinV0a75
jfZgkne/YiktSvLG34lw2zqXBDTC5NHROUqGTlML4PlNZS5Ri2U4aCNx2rUPRcKI
lE0PuKxI4T+HIaFpv8+rdV6eUgOrB2xeI1dSFFn/nnv5OoZJEIB+VmuKn3DCUcCZ
SFlQPSXSfBDiUGhwOw76WuSSsf1D4b/vLoJ10wIDAQABAoIBAG/JZuSWdoVHbi56
vjgCgkjg3lkO1KrO3nrdm6nrgA9P9qaPjxuKoWaKO1cBQlE1pSWp/cKncYgD5WxE
CpAnRUXG2pG4zdkzCYzAh1i+c34L6oZoHsirK6oNcEnHveydfzJL5934egm6p8DW
+m1RQ70yUt4uRc0YSor+q1LGJvGQHReF0WmJBZHrhz5e63Pq7lE0gIwuBqL8SMaA
yRXtK+JGxZpImTq+NHvEWWCu09SCq0r838ceQI55SvzmTkwqtC+8AT2zFviMZkKR
Qo6SPsrqItxZWRty2izawTF0Bf5S2VAx7O+6t3wBsQ1sLptoSgX3QblELY5asI0J
YFz7LJECgYkAsqeUJmqXE3LP8tYoIjMIAKiTm9o6psPlc8CrLI9CH0UbuaA2JCOM
cCNq8SyYbTqgnWlB9ZfcAm/cFpA8tYci9m5vYK8HNxQr+8FS3Qo8N9RJ8d0U5Csw
DzMYfRghAfUGwmlWj5hp1pQzAuhwbOXFtxKHVsMPhz1IBtF9Y8jvgqgYHLbmyiu1
mwJ5AL0pYF0G7x81prlARURwHo0Yf52kEw1dxpx+JXER7hQRWQki5/NsUEtv+8RT
qn2m6qte5DXLyn83b1qRscSdnCCwKtKWUug5q2ZbwVOCJCtmRwmnP131lWRYfj67
B/xJ1ZA6X3GEf4sNReNAtaucPEelgR2nsN0gKQKBiGoqHWbK1qYvBxX2X3kbPDkv
9C+celgZd2PW7aGYLCHq7nPbmfDV0yHcWjOhXZ8jRMjmANVR/eLQ2EfsRLdW69bn
f3ZD7JS1fwGnO3exGmHO3HZG+6AvberKYVYNHahNFEw5TsAcQWDLRpkGybBcxqZo
81YCqlqidwfeO5YtlO7etx1xLyqa2NsCeG9A86UjG+aeNnXEIDk1PDK+EuiThIUa
/2IxKzJKWl1BKr2d4xAfR0ZnEYuRrbeDQYgTImOlfW6/GuYIxKYgEKCFHFqJATAG
IxHrq1PDOiSwXd2GmVVYyEmhZnbcp8CxaEMQoevxAta0ssMK3w6UsDtvUvYvF22m
qQKBiD5GwESzsFPy3Ga0MvZpn3D6EJQLgsnrtUPZx+z2Ep2x0xc5orneB5fGyF1P
WtP+fG5Q6Dpdz3LRfm+KwBCWFKQjg7uTxcjerhBWEYPmEMKYwTJF5PBG9/ddvHLQ
EQeNC8fHGg4UXU8mhHnSBt3EA10qQJfRDs15M38eG2cYwB1PZpDHScDnDA0=
-----END RSA PRIVATE KEY-----
"""

RFC_RSA_PSS_PUBLIC = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr4tmm3r20Wd/PbqvP1s2
+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry53mm+
oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7OyrFAHq
gDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUAAN5W
Utzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw9lq4
aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oyc6XI
2wIDAQAB
-----END PUBLIC KEY-----
"""

RFC_ED25519_PUBLIC = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
"""

RFC_BODY = b'{"hello": "world"}'
RFC_DIGEST = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
RFC_PATH = "/foo?param=Value&Pet=dog"


def _rfc_request(host: str = "example.com", date: str = "Tue, 20 Apr 2021 02:07:55 GMT", **extra: str):
    return {"Host": host, "Date": date, "Content-Type": "application/json", "Content-Digest": RFC_DIGEST,
            "Content-Length": "18", **extra}


def _base_and_signature(headers: dict[str, str], path: str = RFC_PATH, label: str | None = None):
    view = Headers(headers)
    _, member, signature = read_signature(view, label)
    return signature_base(Target("POST", path, view, "https", None), member), signature


B22_SIGNATURE_INPUT = ('sig-b22=("@authority" "content-digest" "@query-param";name="Pet");created=1618884473'
                       ';keyid="test-key-rsa-pss";tag="header-example"')
B22_SIGNATURE = ("sig-b22=:LjbtqUbfmvjj5C5kr1Ugj4PmLYvx9wVjZvD9GsTT4F7GrcQEdJzgI9qHxICagShLRiLMlAJjtq6N4CDfK"
                 "tjvuJyE5qH7KT8UCMkSowOB4+ECxCmT8rtAmj/0PIXxi0A0nxKyB09RNrCQibbUjsLS/2YyFYXEu4TRJQzRw1rLEuEfY"
                 "17SARYhpTlaqwZVtR8NV7+4UKkjqpcAoFqWFQh62s7Cl+H2fjBSpqfZUJcsIk4N6wiKYd4je2U/lankenQ99PZfB4jY3"
                 "I5rSV2DSBVkSFsURIjYErOs0tFTQosMTAoxk//0RoKUqiYY8Bh0aaUEb0rQl3/XaVe4bXTugEjHSw==:")


def test_rfc9421_b22_rsa_pss_vector_verifies():
    headers = _rfc_request(**{"Signature-Input": B22_SIGNATURE_INPUT, "Signature": B22_SIGNATURE})
    base, signature = _base_and_signature(headers)
    assert base.decode() == "\n".join([
        '"@authority": example.com',
        f'"content-digest": {RFC_DIGEST}',
        '"@query-param";name="Pet": dog',
        '"@signature-params": ("@authority" "content-digest" "@query-param";name="Pet");created=1618884473'
        ';keyid="test-key-rsa-pss";tag="header-example"',
    ])
    parsed = ParsedSignature("rfc9421", "test-key-rsa-pss", "", (), signature, (base,), 1618884473.0, None)
    verify_parsed(parsed, RFC_RSA_PSS_PUBLIC)  # no alg parameter: PKCS#1 v1.5 fails, PSS succeeds
    verify_parsed(parsed, RFC_RSA_PSS_PUBLIC, algorithm="rsa-pss-sha512")
    with pytest.raises(SignatureError):
        verify_parsed(parsed, RFC_RSA_PSS_PUBLIC, algorithm="rsa-v1_5-sha256")


def test_rfc9421_b22_vector_fails_mastodon_policy_and_its_time_window():
    headers = _rfc_request(**{"Signature-Input": B22_SIGNATURE_INPUT, "Signature": B22_SIGNATURE})
    with pytest.raises(SignatureError, match="must cover @method and @target-uri"):
        parse_request_signature("POST", RFC_PATH, headers, RFC_BODY, now=1618884473)


PROXY_SIGNATURE_INPUT = ('proxy_sig=("@method" "@authority" "@path" "content-digest" "content-type" '
                         '"content-length" "forwarded");created=1618884480;keyid="test-key-rsa";'
                         'alg="rsa-v1_5-sha256";expires=1618884540')
PROXY_SIGNATURE = ("proxy_sig=:S6ZzPXSdAMOPjN/6KXfXWNO/f7V6cHm7BXYUh3YD/fRad4BCaRZxP+JH+8XY1I6+8Cy+CM5g92iHgxt"
                   "RPz+MjniOaYmdkDcnL9cCpXJleXsOckpURl49GwiyUpZ10KHgOEe11sx3G2gxI8S0jnxQB+Pu68U9vVcasqOWAEObtNKK"
                   "Zd8tSFu7LB5YAv0RAGhB8tmpv7sFnIm9y+7X5kXQfi8NMaZaA8i2ZHwpBdg7a6CMfwnnrtflzvZdXAsD3LH2TwevU+/PB"
                   "Pv0B6NMNk93wUs/vfJvye+YuI87HU38lZHowtznbLVdp770I6VHR6WfgS9ddzirrswsE1w5o0LV/g==:")


def _proxy_request() -> dict[str, str]:
    return _rfc_request("origin.host.internal.example", "Tue, 20 Apr 2021 02:07:56 GMT",
                        Forwarded="for=192.0.2.123;host=example.com;proto=https",
                        **{"Signature-Input": PROXY_SIGNATURE_INPUT, "Signature": PROXY_SIGNATURE})


def test_rfc9421_section_4_3_rsa_v1_5_vector_verifies_and_signing_reproduces_it():
    base, signature = _base_and_signature(_proxy_request())
    assert base.decode().splitlines()[0:3] == [
        '"@method": POST', '"@authority": origin.host.internal.example', '"@path": /foo']
    parsed = ParsedSignature("rfc9421", "test-key-rsa", "rsa-v1_5-sha256", (), signature, (base,), 0.0, None)
    verify_parsed(parsed, RFC_RSA_PUBLIC)
    assert rsa_sign(load_private_key(RFC_RSA_PRIVATE), base) == signature  # PKCS#1 v1.5 is deterministic


def test_rfc9421_section_4_3_vector_is_refused_by_mastodon_policy():
    with pytest.raises(SignatureError, match="must cover @method and @target-uri"):
        parse_request_signature("POST", RFC_PATH, _proxy_request(), RFC_BODY, now=1618884500)


def test_rfc9421_b26_ed25519_vector_verifies():
    headers = _rfc_request(**{
        "Signature-Input": 'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
                           ';created=1618884473;keyid="test-key-ed25519"',
        "Signature": "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBK"
                     "RCw==:"})
    base, signature = _base_and_signature(headers)
    parsed = ParsedSignature("rfc9421", "test-key-ed25519", "", (), signature, (base,), 0.0, None)
    verify_parsed(parsed, RFC_ED25519_PUBLIC)
    with pytest.raises(SignatureError):
        verify_parsed(parsed, RFC_RSA_PUBLIC)


def test_rfc9421_test_request_content_digest_matches_its_body():
    check_content_digest(RFC_DIGEST, RFC_BODY)
    assert content_digest_header(RFC_BODY, "sha-512") == RFC_DIGEST
    with pytest.raises(SignatureError, match="does not match"):
        check_content_digest(RFC_DIGEST, RFC_BODY + b"\n")


def test_content_digest_with_only_unknown_algorithms_is_rejected():
    with pytest.raises(SignatureError, match="no sha-256 or sha-512"):
        check_content_digest("md5=:AAAA:", RFC_BODY)


# --- structured fields -------------------------------------------------------------------------


def test_structured_dictionary_types():
    parsed = parse_dictionary('a=1, b="x\\"y", c=tok/en, d=:YWJj:, e=?0, f;p=-2, g=(1 "s");q=1.5')
    assert parsed["a"].value == 1 and parsed["b"].value == 'x"y'
    assert isinstance(parsed["c"].value, Token) and parsed["c"].value == "tok/en"
    assert parsed["d"].value == b"abc" and parsed["e"].value is False
    assert parsed["f"].value is True and parsed["f"].param("p") == -2
    assert [i.value for i in parsed["g"].items] == [1, "s"] and parsed["g"].param("q") == 1.5


@pytest.mark.parametrize("text", ['a="open', "a=1,", "A=1", "a=:YW!j:", "a=1, a=2", "a=(1;x", 'a="\\x"',
                                  "a=1 b=2", "a=?2", "a=1;p;p", "a=é"])
def test_structured_dictionary_rejects_malformed_input(text):
    with pytest.raises(StructuredFieldError):
        parse_dictionary(text)


# --- helpers -----------------------------------------------------------------------------------


def test_digest_header_of_empty_body():
    assert digest_header(b"") == "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def test_content_digest_header_is_a_structured_dictionary():
    value = content_digest_header(b"")
    assert value == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    check_content_digest(value, b"")


def test_http_date_round_trips():
    assert http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777
    assert parse_http_date("Sun Nov  6 08:49:37 1994") == 784111777
    for bad in ("06 Nov 1994", "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 +0000"):
        with pytest.raises(ValueError):
            parse_http_date(bad)


def test_key_helpers(keypair):
    info = load_public_key(keypair[1])
    assert info.bits == 2048
    assert load_public_key(public_pem_of(load_private_key(keypair[0]))).key.public_numbers() == info.key.public_numbers()
    with pytest.raises(SignatureError, match="too small"):
        load_public_key(keypair[1], min_bits=4096)
    with pytest.raises(SignatureError, match="not RSA"):
        load_public_key(RFC_ED25519_PUBLIC)
    with pytest.raises(SignatureError, match="unreadable public key"):
        load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert load_public_key(RFC_RSA_PUBLIC).bits == 2048  # PKCS#1 "RSA PUBLIC KEY" form


def test_key_owner_url_and_target_split():
    assert key_owner_url("https://h.example/users/a#main-key") == "https://h.example/users/a"
    assert key_owner_url("https://h.example/users/a/main-key") == "https://h.example/users/a/main-key"
    assert split_target_url("https://H.example:8443/inbox?x=1") == ("https", "H.example:8443", "/inbox?x=1")
    assert split_target_url("https://h.example") == ("https", "h.example", "/")
