"""What the rewards web handlers and workers share in one process: keys, policies, members."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg

from fedserver.config import Settings
from fedserver.net.ssrf import FetchError as UrlRefused
from fedserver.net.ssrf import GuardedResolver, check_url
from rewards.balance import TokenPolicy
from rewards.endorse import EndorsementPolicy
from rewards.federation import MemberKeys, PolicyFile
from rewards.keys import RewardKeys, ensure_reward_keys
from rewards.points import PointsPolicy
from rewards.policy import Policy
from rewards.store import Member, list_members

MEMBERS_TTL = 5.0
USER_AGENT = "fedserver-rewards/1"


def points_policy(settings: Settings) -> PointsPolicy:
    """The points policy from `[rewards]`."""
    r = settings.rewards
    return PointsPolicy(r.policy_version, r.points_like, r.points_announce, r.points_reply, r.daily_cap,
                        r.curation_percent, r.same_instance_percent)


def endorsement_policy(settings: Settings) -> EndorsementPolicy:
    """The anti-abuse rules (budget, quota, settlement window) from `[rewards]`."""
    r = settings.rewards
    return EndorsementPolicy(r.endorsements_per_day, r.instance_daily_quota, r.settlement_seconds)


def token_policy(settings: Settings) -> TokenPolicy:
    """The token policy (settlement, minting, expiry) from `[rewards]`."""
    r = settings.rewards
    return TokenPolicy(r.points_per_token, r.mint_threshold, r.settlement_seconds, r.token_expiry_days,
                       r.tokens_enabled)


def log_url(settings: Settings) -> str:
    """Our tlog-tiles prefix."""
    return f"{settings.base_url}/rewards/log"


def witness_url(settings: Settings) -> str:
    """Our tlog-witness submission (and monitoring) prefix."""
    return f"{settings.base_url}/rewards/witness"


def own_member_keys(ctx: RewardsContext) -> MemberKeys:
    """Our own log and witness lines for the policy file."""
    vkeys = ctx.keys.vkeys()
    return MemberKeys(ctx.keys.domain, vkeys["log"], log_url(ctx.settings), vkeys["witness"], witness_url(ctx.settings))


@dataclass
class RewardsContext:
    """Per-process rewards state; keys never change, the policy file and members are re-read."""

    settings: Settings
    keys: RewardKeys
    policy_file: PolicyFile
    points: PointsPolicy
    _members: dict[str, Member] = field(default_factory=dict)
    _members_at: float = -1e9

    def policy(self) -> Policy:
        """The effective federation policy (our own log always included)."""
        return self.policy_file.current()

    async def member(self, conn: asyncpg.Connection | asyncpg.Pool, domain: str) -> Member | None:
        """A pinned member by domain (a miss re-reads the table: it may have just been added)."""
        found = (await self.members(conn)).get(domain)
        return found if found is not None else (await self.members(conn, fresh=True)).get(domain)

    async def members(self, conn: asyncpg.Connection | asyncpg.Pool, *, fresh: bool = False) -> dict[str, Member]:
        """Pinned members by domain, cached for a few seconds."""
        if fresh or time.monotonic() - self._members_at > MEMBERS_TTL:
            self._members = {m.domain: m for m in await list_members(conn)}
            self._members_at = time.monotonic()
        return self._members


async def load_context(pool: asyncpg.Pool | asyncpg.Connection, settings: Settings) -> RewardsContext:
    """Create (on first start) and load the keys, and open the policy file."""
    keys = await ensure_reward_keys(pool, settings.instance.domain)
    path = settings.rewards.policy_path(settings.storage.data_dir)
    policy_file = PolicyFile(path, keys.log.verifier(), log_url(settings))
    context = RewardsContext(settings, keys, policy_file, points_policy(settings))
    context.policy()  # a broken policy file stops start-up with its reason
    return context


class RewardsHttp:
    """Outbound HTTP for rewards traffic between members, behind the federation SSRF guard.

    Every URL passes fedserver.net.ssrf.check_url and every connection the
    GuardedResolver ([federation] allow_private_addresses decides); no redirects.
    The lead's HttpClient exposes only ActivityPub-shaped calls, so rewards keep
    their own session built from the same guard.
    """

    def __init__(self, settings: Settings):
        self.allow_private = settings.federation.allow_private_addresses
        self.timeout = aiohttp.ClientTimeout(total=settings.rewards.witness_timeout, connect=5)
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None

    async def __aenter__(self) -> RewardsHttp:
        self._resolver = GuardedResolver(allow_private=self.allow_private)
        connector = aiohttp.TCPConnector(resolver=self._resolver, use_dns_cache=False)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout, trust_env=False,
                                              headers={"User-Agent": USER_AGENT},
                                              cookie_jar=aiohttp.DummyCookieJar())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._resolver is not None:
            await self._resolver.close()

    def _checked(self, url: str) -> str:
        try:
            check_url(url, allow_private=self.allow_private)
        except UrlRefused as exc:
            raise aiohttp.InvalidURL(f"{url}: {exc}") from None
        if self._session is None:
            raise RuntimeError("RewardsHttp is not open")
        return url

    def get(self, url: str, **kwargs: Any) -> Any:
        """GET (an async context manager, like ClientSession.get)."""
        return self._session.get(self._checked(url), allow_redirects=False, **kwargs)  # type: ignore[union-attr]

    def post(self, url: str, **kwargs: Any) -> Any:
        """POST (an async context manager, like ClientSession.post)."""
        return self._session.post(self._checked(url), allow_redirects=False, **kwargs)  # type: ignore[union-attr]


def http_session(settings: Settings) -> RewardsHttp:
    """A guarded client for rewards traffic (use with `async with`)."""
    return RewardsHttp(settings)
