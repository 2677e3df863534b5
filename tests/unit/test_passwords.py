from fedserver import passwords
from fedserver.passwords import hash_password, verify_password


def test_password_round_trip_and_rejection():
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("scrypt$")
    assert verify_password("correct horse battery staple", stored)
    assert not verify_password("correct horse battery stapler", stored)
    assert not verify_password("x", None)
    assert not verify_password("x", "md5$abc")


def test_same_password_gets_a_new_salt():
    assert hash_password("same password") != hash_password("same password")


def test_production_hashes_use_the_owasp_floor_and_cheaper_test_hashes_still_verify(monkeypatch):
    assert passwords.PRODUCTION_COST == (2**15, 8, 3)
    cheap = hash_password("correct horse battery staple")  # the suite's cost (tests/conftest.py)
    monkeypatch.setattr(passwords, "COST", passwords.PRODUCTION_COST)
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("scrypt$32768$8$3$")
    assert verify_password("correct horse battery staple", stored)
    assert verify_password("correct horse battery staple", cheap)  # each hash names its own parameters
