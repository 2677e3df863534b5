"""Who we federate with: the tlog-policy file (logs, witnesses, quorum) and pinned members.

Decision: the trust policy for logs and witnesses is a C2SP tlog-policy *file*
(``[rewards] policy_file``), so any independent verifier can use it unchanged; it
is configuration, like config.toml, re-read by every process when it changes.
Receipt keys have no place in tlog-policy, so ``peer add`` pins each member's three
keys in the ``rewards_members`` table and writes its log and witness lines (with
URLs) to the file. Our own log is always trusted; our own witness never cosigns
our own log (a self-cosignature adds no protection against a split view).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rewards.checkpoint import CosignatureVerifier
from rewards.note import Ed25519Verifier
from rewards.policy import NONE, Policy, PolicyError, PolicyGroup, PolicyLog, PolicyWitness, build_policy, parse_policy

log = logging.getLogger("rewards.federation")

MEMBERS_GROUP = "members"
HEADER = "# tlog-policy of this instance's reward federation (see config.toml [rewards] policy_file)\n"


def empty_policy() -> Policy:
    """No members, no witnesses: checkpoints are published without cosignatures."""
    return Policy((), (), (), NONE)


def with_own_log(policy: Policy, own: Ed25519Verifier, url: str) -> Policy:
    """Add our own log to a policy (it may already list it, with the same key)."""
    for entry in policy.logs:
        if entry.verifier.name == own.name:
            if entry.verifier.public_key != own.public_key:
                raise PolicyError(f"the policy lists our origin {own.name!r} with a key that is not ours")
            return policy
    return replace(policy, logs=(PolicyLog(own, url), *policy.logs))


class PolicyFile:
    """The policy file, parsed on first use and again whenever its size or mtime changes."""

    def __init__(self, path: Path, own_log: Ed25519Verifier, own_log_url: str):
        self.path = path
        self.own_log = own_log
        self.own_log_url = own_log_url
        self._stamp: tuple[int, int] | None = None
        self._policy: Policy | None = None

    def _read(self) -> tuple[tuple[int, int] | None, Policy]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None, empty_policy()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp and self._policy is not None:
            return stamp, self._policy
        return stamp, parse_policy(self.path.read_bytes())

    def current(self) -> Policy:
        """The effective policy; a broken edit keeps the last good one (and logs why)."""
        try:
            stamp, policy = self._read()
            effective = with_own_log(policy, self.own_log, self.own_log_url)
        except (PolicyError, OSError) as exc:
            if self._policy is None:
                raise PolicyError(f"{self.path}: {exc}") from None
            log.error("rewards policy file unreadable, keeping the previous one: %s", exc)
            return self._policy
        self._stamp, self._policy = stamp, effective
        return effective

    def read_file_policy(self) -> Policy:
        """The file's own policy (without our implicit log), for editing."""
        return self._read()[1]


def quorum_threshold(rule: str, count: int) -> str:
    """Turn all|any|majority|N into a tlog-policy group threshold for a group of `count` member witnesses.

    A member's own witness never cosigns its own log, so any one log can gather at most `count - 1`
    cosignatures: "all" and "majority" count the others (with two members, the other one), and a
    number above `count - 1` could never be met.
    """
    others = max(count - 1, 1)
    if rule == "any":
        return rule
    if rule == "all":
        return str(others)
    if rule == "majority":
        return str(others // 2 + 1)
    if not rule.isdigit() or not 1 <= int(rule) <= others:
        raise PolicyError(f"quorum {rule!r} must be all, any, majority, none or 1..{others} (a member's own "
                          f"witness never cosigns its log)")
    return rule


@dataclass(frozen=True)
class MemberKeys:
    """What the policy file needs of a member: log and witness keys and URLs, witness name."""

    name: str
    log_vkey: str
    log_url: str
    witness_vkey: str
    witness_url: str


def _with_lines(policy: Policy, member: MemberKeys) -> Policy:
    log_v = Ed25519Verifier.from_vkey(member.log_vkey)
    witness_v = CosignatureVerifier.from_vkey(member.witness_vkey)
    logs = _put(policy.logs, lambda e: e.verifier.name == log_v.name, PolicyLog(log_v, member.log_url))
    witnesses = _put(policy.witnesses, lambda w: w.name == member.name or w.verifier.name == witness_v.name,
                     PolicyWitness(member.name, witness_v, member.witness_url))
    return replace(policy, logs=logs, witnesses=witnesses)


def _put(items: tuple, same: Callable[[Any], bool], new: Any) -> tuple:
    """Replace the first matching item in place (dropping other matches), or append."""
    out, placed = [], False
    for item in items:
        if same(item):
            if not placed:
                out.append(new)
                placed = True
        else:
            out.append(item)
    return tuple(out) if placed else (*out, new)


def add_member(policy: Policy, member: MemberKeys, quorum: str | None, ours: MemberKeys | None = None) -> Policy:
    """Add or replace a member's log and witness (and ours, so every member's file agrees).

    The quorum is a group `members` over every witness, ours included: our own witness
    never cosigns our log, but listing it lets one shared policy verify every member.
    """
    if ours is not None:
        policy = _with_lines(policy, ours)
    return _regroup(_with_lines(policy, member), quorum)


def _regroup(policy: Policy, quorum: str | None) -> Policy:
    old = next((g for g in policy.groups if g.name == MEMBERS_GROUP), None)
    if policy.quorum not in (NONE, MEMBERS_GROUP) and quorum is None:
        return policy  # an operator-written quorum: leave it alone
    rule = quorum or (old.rule if old else "majority")
    if rule == NONE:
        return replace(policy, groups=tuple(g for g in policy.groups if g.name != MEMBERS_GROUP), quorum=NONE)
    names = tuple(w.name for w in policy.witnesses)
    if old and old.rule.isdigit() and quorum is None:
        rule = str(min(int(old.rule), max(len(names) - 1, 1)))
    group = PolicyGroup(MEMBERS_GROUP, quorum_threshold(rule, len(names)), names)
    others = tuple(g for g in policy.groups if g.name != MEMBERS_GROUP)
    return replace(policy, groups=(*others, group), quorum=MEMBERS_GROUP)


def write_policy_file(path: Path, policy: Policy) -> None:
    """Write the policy atomically (temporary file, then rename), re-parsing it first."""
    text = HEADER + build_policy(policy)
    parse_policy(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".policy-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
