"""RSA-2048 signature verification speed: `cryptography` (OpenSSL) vs httpsig (pycryptodome), one core.

Run: .venv/bin/python bench/sign_verify.py [seconds-per-case]
Prints verifies per second for the raw primitive and for a whole draft-cavage POST check
(header parsing, digest, signing string, key loading from PEM, RSA), and the ratios.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import time
from collections.abc import Callable

import httpsig
from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA
from Crypto.Signature import PKCS1_v1_5
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from fedserver.signatures import (  # noqa: E402
    generate_rsa_keypair, load_public_key, parse_request_signature, sign_request, verify_parsed,
)

BODY = b'{"@context":"https://www.w3.org/ns/activitystreams","type":"Like","actor":"https://a.example/users/a"}'
PATH = "/users/bob/inbox"
NAMES = ["(request-target)", "host", "date", "digest", "content-type"]


def pin_to_one_core() -> str:
    """Restrict this process to one CPU so the figures are per core."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of `fn`, measured for about `seconds`."""
    fn()  # warm up
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            fn()
        count += 20
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    """Measure and print the four rates and two ratios."""
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    print(f"RSA-2048 verify, {pin_to_one_core()}, ~{seconds:g} s per case")
    private_pem, public_pem = generate_rsa_keypair(2048)
    headers = {"Content-Type": "application/activity+json"}
    headers |= sign_request("POST", PATH, headers, BODY, key_id="https://a.example/users/a#main-key",
                            private_key=private_pem, host="b.example")
    parsed = parse_request_signature("POST", PATH, headers, BODY)
    message = parsed.signing_strings[0]

    ossl_key = load_public_key(public_pem).key
    pkcs = padding.PKCS1v15()
    dome_verifier = PKCS1_v1_5.new(RSA.import_key(public_pem))
    signature = parsed.signature

    def ossl_raw() -> None:
        ossl_key.verify(signature, message, pkcs, hashes.SHA256())

    def dome_raw() -> None:
        if not dome_verifier.verify(SHA256.new(message), signature):
            raise RuntimeError("pycryptodome rejected a good signature")

    def ours_full() -> None:
        # From the PEM, as httpsig does, so both full checks include loading the key.
        verify_parsed(parse_request_signature("POST", PATH, headers, BODY), public_pem)

    def httpsig_full() -> None:
        digest = "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()
        if headers["Digest"] != digest:
            raise RuntimeError("digest mismatch")
        verifier = httpsig.HeaderVerifier(headers, public_pem, required_headers=NAMES, method="POST",
                                          path=PATH, sign_header="signature")
        if not verifier.verify():
            raise RuntimeError("httpsig rejected a good signature")

    rows = [
        ("raw verify, cryptography (OpenSSL)", rate(ossl_raw, seconds)),
        ("raw verify, pycryptodome", rate(dome_raw, seconds)),
        ("full POST check, fedserver.signatures", rate(ours_full, seconds)),
        ("full POST check, httpsig 1.3.0", rate(httpsig_full, seconds)),
    ]
    for label, value in rows:
        print(f"  {label:<40} {value:>10,.0f} /s")
    print(f"  ratio raw  (cryptography / pycryptodome): {rows[0][1] / rows[1][1]:.1f}x")
    print(f"  ratio full (fedserver / httpsig):         {rows[2][1] / rows[3][1]:.1f}x")


if __name__ == "__main__":
    main()
