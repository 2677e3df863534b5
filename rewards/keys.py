"""The instance's three reward keys: receipts, log (named by the origin) and witness.

Separate keys per role so a signature made in one role can never be replayed in
another. Generated once per domain, kept in the database (``rewards_keys``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import asyncpg

from rewards.checkpoint import CosignatureSigner
from rewards.note import Ed25519Signer, Ed25519Verifier
from rewards.store import get_key_seeds, insert_key_seed

ROLES = ("receipts", "log", "witness")


def receipts_key_name(domain: str) -> str:
    """`<domain>/rewards/receipts`: signs receipts we issue or countersign."""
    return f"{domain}/rewards/receipts"


def log_origin(domain: str) -> str:
    """`<domain>/rewards/v1`: the log's checkpoint origin and log key name."""
    return f"{domain}/rewards/v1"


def witness_key_name(domain: str) -> str:
    """`<domain>/rewards/witness`: cosigns members' checkpoints."""
    return f"{domain}/rewards/witness"


def domain_of_receipts_key(name: str) -> str | None:
    """The domain in a receipts key name, or None if the name is not one."""
    domain, sep, _ = name.rpartition("/rewards/receipts")
    return domain if sep and name.endswith("/rewards/receipts") and domain else None


@dataclass(frozen=True)
class RewardKeys:
    """The signers of one instance."""

    domain: str
    receipts: Ed25519Signer
    log: Ed25519Signer
    witness: CosignatureSigner

    @property
    def origin(self) -> str:
        """Our log's origin line."""
        return self.log.name

    def receipts_verifier(self) -> Ed25519Verifier:
        """Verifier of our receipt signatures."""
        return self.receipts.verifier()

    def vkeys(self) -> dict[str, str]:
        """The three verifier keys, by role."""
        return {
            "receipts": self.receipts.verifier().vkey(),
            "log": self.log.verifier().vkey(),
            "witness": self.witness.verifier().vkey(),
        }


def _names(domain: str) -> dict[str, str]:
    return {"receipts": receipts_key_name(domain), "log": log_origin(domain), "witness": witness_key_name(domain)}


async def ensure_reward_keys(conn: asyncpg.Connection | asyncpg.Pool, domain: str) -> RewardKeys:
    """Create the three keys for `domain` on first use (concurrent callers agree), then load them."""
    names = _names(domain)
    seeds = await get_key_seeds(conn, list(names.values()))
    if len(seeds) < len(names):
        for role, name in names.items():
            await insert_key_seed(conn, name, role, os.urandom(32))
        seeds = await get_key_seeds(conn, list(names.values()))
    return RewardKeys(
        domain=domain,
        receipts=Ed25519Signer(names["receipts"], seeds[names["receipts"]]),
        log=Ed25519Signer(names["log"], seeds[names["log"]]),
        witness=CosignatureSigner(names["witness"], seeds[names["witness"]]),
    )
