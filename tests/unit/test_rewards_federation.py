"""The federation policy file: adding members, the quorum group, our own log, reloading."""

from __future__ import annotations

import os

import pytest

from rewards.checkpoint import CosignatureSigner
from rewards.federation import (
    MemberKeys,
    PolicyFile,
    add_member,
    empty_policy,
    quorum_threshold,
    with_own_log,
    write_policy_file,
)
from rewards.note import Ed25519Signer, Ed25519Verifier
from rewards.policy import PolicyError, parse_policy, quorum_satisfied


def keys(domain: str) -> MemberKeys:
    log = Ed25519Signer.generate(f"{domain}/rewards/v1").verifier().vkey()
    witness = CosignatureSigner.generate(f"{domain}/rewards/witness").verifier().vkey()
    return MemberKeys(domain, log, f"https://{domain}/rewards/log", witness, f"https://{domain}/rewards/witness")


OURS = keys("a.example")


def test_adding_members_keeps_one_group_over_every_witness_including_ours():
    policy = add_member(empty_policy(), keys("b.example"), None, OURS)
    assert [w.name for w in policy.witnesses] == ["a.example", "b.example"]
    # Our own witness never cosigns our log: with two members the quorum is the other one, not 2 of 2
    # (which no log could ever reach, so no checkpoint would ever be published).
    assert policy.quorum == "members" and policy.groups[0].rule == "1"
    assert quorum_satisfied(policy, {"b.example"})
    policy = add_member(policy, keys("c.example"), "2", OURS)
    assert policy.groups[0].members == ("a.example", "b.example", "c.example")
    assert quorum_satisfied(policy, {"b.example", "c.example"})
    assert not quorum_satisfied(policy, {"b.example"})
    policy = add_member(policy, keys("d.example"), None, OURS)
    assert policy.groups[0].rule == "2"  # an explicit number is kept
    policy = add_member(policy, keys("e.example"), "majority", OURS)
    assert policy.groups[0].rule == "3"  # of the four witnesses that can cosign any one log
    assert len(policy.logs) == 5  # ours and four members


def test_re_adding_a_member_replaces_its_keys():
    first, again = keys("b.example"), keys("b.example")
    policy = add_member(add_member(empty_policy(), first, None, OURS), again, None, OURS)
    assert [w.verifier.vkey() for w in policy.witnesses if w.name == "b.example"] == [again.witness_vkey]
    assert len([e for e in policy.logs if e.verifier.name == "b.example/rewards/v1"]) == 1


@pytest.mark.parametrize(("rule", "count", "expected"), [
    ("all", 3, "2"), ("any", 3, "any"), ("majority", 4, "2"), ("majority", 2, "1"), ("majority", 1, "1"),
    ("2", 3, "2"), ("all", 2, "1"),
])
def test_quorum_rules(rule, count, expected):
    assert quorum_threshold(rule, count) == expected


@pytest.mark.parametrize("rule", ["0", "3", "4", "most", "-1"])
def test_bad_quorum_rules_are_refused(rule):
    with pytest.raises(PolicyError):
        quorum_threshold(rule, 3)


def test_quorum_none_drops_the_group_and_operator_quorums_are_left_alone():
    policy = add_member(empty_policy(), keys("b.example"), "none", OURS)
    assert policy.quorum == "none" and not policy.groups
    custom = parse_policy(
        f"witness w1 {keys('x.example').witness_vkey}\nwitness w2 {keys('y.example').witness_vkey}\n"
        "group mine any w1 w2\nquorum mine\n")
    kept = add_member(custom, keys("b.example"), None, OURS)
    assert kept.quorum == "mine" and [g.name for g in kept.groups] == ["mine"]


def test_own_log_is_always_trusted_but_never_with_another_key():
    own = Ed25519Signer.generate("a.example/rewards/v1").verifier()
    policy = with_own_log(empty_policy(), own, "https://a.example/rewards/log")
    assert policy.log_verifiers("a.example/rewards/v1") == [own]
    assert with_own_log(policy, own, "x") == policy
    other = Ed25519Signer.generate("a.example/rewards/v1").verifier()
    with pytest.raises(PolicyError):
        with_own_log(policy, other, "x")


def test_policy_file_is_reloaded_when_it_changes_and_a_broken_edit_keeps_the_last_good(tmp_path):
    own = Ed25519Verifier.from_vkey(OURS.log_vkey)
    path = tmp_path / "policy.txt"
    loader = PolicyFile(path, own, "https://a.example/rewards/log")
    assert loader.current().quorum == "none" and len(loader.current().logs) == 1
    write_policy_file(path, add_member(empty_policy(), keys("b.example"), None, OURS))
    assert loader.current().quorum == "members" and len(loader.current().logs) == 2
    path.write_text("this is not a policy\n")
    os.utime(path, ns=(1, 1))
    assert loader.current().quorum == "members"
    broken = PolicyFile(path, own, "x")
    with pytest.raises(PolicyError):
        broken.current()


def test_written_policy_is_a_plain_tlog_policy(tmp_path):
    path = tmp_path / "p.txt"
    write_policy_file(path, add_member(empty_policy(), keys("b.example"), None, OURS))
    text = path.read_text()
    assert text.startswith("#") and text.endswith("quorum members\n")
    assert parse_policy(text).quorum == "members"
