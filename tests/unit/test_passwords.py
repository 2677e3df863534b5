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
