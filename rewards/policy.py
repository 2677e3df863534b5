"""C2SP tlog-policy: trusted logs, witnesses, groups and the cosigning quorum.

Log keys are Ed25519 (0x01) vkeys and witness keys cosignature/v1 (0x04) vkeys;
other key types are rejected with a clear error until we support them.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from rewards.checkpoint import (
    Checkpoint,
    CosignatureVerifier,
    cosignature_timestamp,
    parse_checkpoint,
)
from rewards.note import (
    Ed25519Verifier,
    NoteError,
    NoteVerifier,
    UnverifiedNoteError,
    VerifiedNote,
    parse_note,
    verify_note,
)

NONE = "none"
_WHITESPACE = re.compile(r"[ \t]+")


class PolicyError(ValueError):
    """The policy file is malformed or inconsistent."""


class QuorumError(NoteError):
    """A checkpoint is validly signed by the log but lacks the witness quorum."""


@dataclass(frozen=True)
class PolicyLog:
    """A trusted log: its Ed25519 key (named by the origin) and optional URL."""

    verifier: Ed25519Verifier
    url: str | None = None


@dataclass(frozen=True)
class PolicyWitness:
    """A witness: local policy name, cosignature/v1 key and optional submission URL."""

    name: str
    verifier: CosignatureVerifier
    url: str | None = None


@dataclass(frozen=True)
class PolicyGroup:
    """A group satisfied when `threshold` of its members are (rule: all, any or k)."""

    name: str
    rule: str
    members: tuple[str, ...]

    @property
    def threshold(self) -> int:
        """Number of members that must be satisfied."""
        if self.rule == "all":
            return len(self.members)
        return 1 if self.rule == "any" else int(self.rule)


@dataclass(frozen=True)
class Policy:
    """A parsed tlog-policy."""

    logs: tuple[PolicyLog, ...]
    witnesses: tuple[PolicyWitness, ...]
    groups: tuple[PolicyGroup, ...]
    quorum: str

    def log_verifiers(self, origin: str) -> list[Ed25519Verifier]:
        """Return the keys of the logs whose key name is this origin."""
        return [log.verifier for log in self.logs if log.verifier.name == origin]

    def witness_verifiers(self) -> list[CosignatureVerifier]:
        """Return every witness key."""
        return [w.verifier for w in self.witnesses]


def parse_policy(data: str | bytes) -> Policy:
    """Parse a tlog-policy file, checking names, duplicates and the quorum line."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    builder = _PolicyBuilder()
    for number, line in enumerate(text.split("\n"), start=1):
        _check_chars(line, number)
        tokens = [t for t in _WHITESPACE.split(line) if t]
        if tokens and not tokens[0].startswith("#"):
            try:
                builder.add(tokens)
            except (PolicyError, NoteError) as e:
                raise PolicyError(f"policy line {number}: {e}") from None
    return builder.build()


def _check_chars(line: str, number: int) -> None:
    if any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in line):
        raise PolicyError(f"policy line {number}: control character")


class _PolicyBuilder:
    """Accumulates policy lines in order, enforcing the define-before-use rules."""

    def __init__(self) -> None:
        self.logs: list[PolicyLog] = []
        self.witnesses: dict[str, PolicyWitness] = {}
        self.groups: dict[str, PolicyGroup] = {}
        self.keys: set[bytes] = set()
        self.quorum: str | None = None

    def add(self, tokens: list[str]) -> None:
        keyword, args = tokens[0], tokens[1:]
        handler = {"log": self._log, "witness": self._witness, "group": self._group}
        if keyword == "quorum":
            self._quorum(args)
        elif keyword in handler:
            handler[keyword](args)
        else:
            raise PolicyError(f"unknown keyword {keyword!r}")

    def _log(self, args: list[str]) -> None:
        if len(args) not in (1, 2):
            raise PolicyError("expected 'log <vkey> [<url>]'")
        verifier = Ed25519Verifier.from_vkey(args[0])
        self._claim_key(verifier.public_key)
        self.logs.append(PolicyLog(verifier, args[1] if len(args) == 2 else None))

    def _witness(self, args: list[str]) -> None:
        if len(args) not in (2, 3):
            raise PolicyError("expected 'witness <name> <vkey> [<url>]'")
        self._claim_name(args[0])
        verifier = CosignatureVerifier.from_vkey(args[1])
        self._claim_key(verifier.public_key)
        url = args[2] if len(args) == 3 else None
        self.witnesses[args[0]] = PolicyWitness(args[0], verifier, url)

    def _group(self, args: list[str]) -> None:
        if len(args) < 3:
            raise PolicyError("expected 'group <name> <all|any|k> <member>...'")
        name, rule, members = args[0], args[1], tuple(args[2:])
        self._claim_name(name)
        for member in members:
            self._require_defined(member)
        if len(set(members)) != len(members):
            raise PolicyError(f"group {name!r} lists a member twice")
        if rule not in ("all", "any"):
            if not re.fullmatch(r"[1-9][0-9]*", rule) or int(rule) > len(members):
                raise PolicyError(f"group threshold {rule!r} must be all, any or 1..{len(members)}")
        self.groups[name] = PolicyGroup(name, rule, members)

    def _quorum(self, args: list[str]) -> None:
        if len(args) != 1:
            raise PolicyError("expected 'quorum <name>'")
        if self.quorum is not None:
            raise PolicyError("more than one quorum line")
        if args[0] != NONE:
            self._require_defined(args[0])
        self.quorum = args[0]

    def _claim_name(self, name: str) -> None:
        if name == NONE or name in self.witnesses or name in self.groups:
            raise PolicyError(f"name {name!r} is reserved or already defined")

    def _require_defined(self, name: str) -> None:
        if name not in self.witnesses and name not in self.groups:
            raise PolicyError(f"{name!r} is not a witness or group defined earlier")

    def _claim_key(self, public_key: bytes) -> None:
        if public_key in self.keys:
            raise PolicyError("the same public key is listed twice")
        self.keys.add(public_key)

    def build(self) -> Policy:
        if self.quorum is None:
            raise PolicyError("policy has no quorum line")
        return Policy(
            tuple(self.logs),
            tuple(self.witnesses.values()),
            tuple(self.groups.values()),
            self.quorum,
        )


def build_policy(policy: Policy) -> str:
    """Return policy file text: logs, witnesses, groups, then the quorum line."""
    lines = [_join("log", log.verifier.vkey(), log.url) for log in policy.logs]
    lines += [_join("witness", w.name, w.verifier.vkey(), w.url) for w in policy.witnesses]
    lines += [_join("group", g.name, g.rule, *g.members) for g in policy.groups]
    lines.append(f"quorum {policy.quorum}")
    return "\n".join(lines) + "\n"


def _join(*parts: str | None) -> str:
    return " ".join(p for p in parts if p is not None)


def quorum_satisfied(policy: Policy, witnessed: Collection[str]) -> bool:
    """Return True if witnesses with these policy names satisfy the quorum."""
    if policy.quorum == NONE:
        return True
    groups = {g.name: g for g in policy.groups}
    memo: dict[str, bool] = {}

    def satisfied(name: str) -> bool:
        if name not in memo:
            group = groups.get(name)
            if group is None:
                memo[name] = name in witnessed
            else:
                count = sum(satisfied(m) for m in group.members)
                memo[name] = count >= group.threshold
        return memo[name]

    return satisfied(policy.quorum)


@dataclass(frozen=True)
class WitnessedCheckpoint:
    """A checkpoint signed by a policy log and cosigned to quorum."""

    checkpoint: Checkpoint
    note: VerifiedNote
    cosigned_at: dict[str, int]


def verify_checkpoint(data: bytes | str, policy: Policy) -> WitnessedCheckpoint:
    """Verify a cosigned checkpoint against a policy: log signature, then quorum.

    Raises UnverifiedNoteError (unknown origin, no valid log signature, or an invalid
    signature by a known key), QuorumError, or MalformedNoteError.
    """
    checkpoint = parse_checkpoint(parse_note(data).text)
    logs = policy.log_verifiers(checkpoint.origin)
    if not logs:
        raise UnverifiedNoteError(f"no trusted log key for origin {checkpoint.origin!r}")
    known: list[NoteVerifier] = [*logs, *policy.witness_verifiers()]
    note = verify_note(data, known)
    signed = {(s.name, s.key_id): s for s in note.verified}
    if not any((v.name, v.key_id) in signed for v in logs):
        raise UnverifiedNoteError(f"checkpoint is not signed by the log {checkpoint.origin!r}")
    cosigned_at = {
        w.name: cosignature_timestamp(signed[(w.verifier.name, w.verifier.key_id)])
        for w in policy.witnesses
        if (w.verifier.name, w.verifier.key_id) in signed
    }
    if not quorum_satisfied(policy, cosigned_at):
        raise QuorumError(f"cosigned only by {sorted(cosigned_at)}; quorum {policy.quorum!r} not met")
    return WitnessedCheckpoint(checkpoint, note, cosigned_at)
