"""Account services: create, list and delete local accounts, set their role; keep the instance actor."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from activities.actor import Actor, instance_actor_urls, local_actor_urls
from activities.build import build_delete_actor

from .config import Settings
from .keys import generate_rsa_keypair
from .passwords import hash_password
from .publish import Publisher
from .repo import actors as actors_repo
from .repo import api_limits
from .repo import deliveries as deliveries_repo
from .repo import sessions as sessions_repo

log = logging.getLogger("fedserver.accounts")

# Mastodon's rule: letters, digits and underscores, at most 30 characters.
USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,30}$")
# Paths and names that would confuse people or other servers.
RESERVED_USERNAMES = frozenset(
    {"actor", "admin", "administrator", "inbox", "instance", "root", "postmaster", "webmaster", "support",
     "security", "abuse", "www", "api", "oauth", "well_known", "nodeinfo", "users", "about", "rewards"}
)


ROLES = ("user", "admin")  # 'instance' belongs to the instance actor alone


class AccountError(Exception):
    """An account operation was refused; the message says why."""


class NewAccount(BaseModel):
    """What `account create` accepts."""

    model_config = ConfigDict(frozen=True)

    username: str
    display_name: str = Field(default="", max_length=100)
    kind: Literal["person", "organization"] = "person"
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    locked: bool = False
    role: Literal["user", "admin"] = "user"

    @field_validator("username")
    @classmethod
    def _check_username(cls, value: str) -> str:
        if not USERNAME_RE.match(value):
            raise ValueError("use 1 to 30 letters (a-z), digits and underscores")
        if value.lower() in RESERVED_USERNAMES:
            raise ValueError(f"'{value}' is reserved")
        return value

    @field_validator("display_name")
    @classmethod
    def _check_display_name(cls, value: str) -> str:
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("must not contain control characters")
        return value.strip()


def validate_new_account(**fields: object) -> NewAccount:
    """Parse account fields, turning validation errors into one AccountError."""
    try:
        return NewAccount.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise AccountError(f"invalid account: {problems}") from None


async def create_account(pool: asyncpg.Pool, settings: Settings, new: NewAccount, *, approved: bool = True,
                         signup_reason: str = "", email: str | None = None) -> Actor:
    """Create a local account with a fresh RSA-2048 key pair, all in one transaction.

    `approved=False`: a sign-up waiting for an administrator (it cannot log in and is not listed).
    """
    private_pem, public_pem = await asyncio.to_thread(generate_rsa_keypair)
    password_hash = await asyncio.to_thread(hash_password, new.password) if new.password else None
    urls = local_actor_urls(settings.base_url, new.username)
    async with pool.acquire() as conn, conn.transaction():
        instance = await actors_repo.get_instance_account(conn)
        if instance and instance.actor.username.lower() == new.username.lower():
            raise AccountError(f"the name '{new.username}' is reserved for the instance actor")
        existing = await actors_repo.get_local_actor_by_username(conn, new.username)
        if existing is not None:
            state = "a deleted account" if existing.deleted_at else "an account"
            raise AccountError(f"the name '{new.username}' is already taken by {state} (@{existing.acct})")
        try:
            actor = await actors_repo.insert_local_actor(
                conn,
                username=new.username,
                domain=settings.instance.domain,
                actor_type="Organization" if new.kind == "organization" else "Person",
                display_name=new.display_name,
                urls=urls,
                public_key_pem=public_pem,
                private_key_pem=private_pem,
                password_hash=password_hash,
                role=new.role,
                manually_approves_followers=new.locked,
                discoverable=approved,
                approved=approved,
                signup_reason=signup_reason,
                email=email,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "local_accounts_email":
                raise AccountError("this email address is already used by another account") from None
            # Two creations racing for the same name: the database decided.
            raise AccountError(f"the name '{new.username}' is already taken") from None
    log.info("account created", extra={"account": actor.acct})
    return actor


EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
MAX_REASON = 1000
SIGNUP_WINDOW = 3600  # seconds: [api] signups_per_hour counts sign-ups per address in this window


class SignupLimited(AccountError):
    """Too many sign-ups from one address lately."""


async def sign_up(pool: asyncpg.Pool, settings: Settings, *, address: str, username: str, password: str,
                  email: str = "", reason: str = "") -> tuple[Actor, bool]:
    """A person joins from the web or an app, as `[instance] registrations` allows: the account and
    whether it may log in now (`open`), or waits for an administrator (`approval`). AccountError otherwise."""
    mode = settings.instance.registrations
    if mode == "closed":
        raise AccountError("this server does not take sign-ups: ask its administrator for an account")
    reason, email = reason.strip(), email.strip()
    if mode == "approval" and not reason:
        raise AccountError("say in a few words why you want to join: an administrator reads it before approving")
    if len(reason) > MAX_REASON:
        raise AccountError(f"the reason is limited to {MAX_REASON} characters")
    if email and not EMAIL_RE.match(email):
        raise AccountError("the email address does not look like one (name@example.com)")
    if not password:
        raise AccountError("choose a password of at least 8 characters")
    new = validate_new_account(username=username.strip(), password=password)
    async with pool.acquire() as conn:
        window = await api_limits.hit(conn, f"signup:{address}", SIGNUP_WINDOW)
    if window.hits > settings.api.signups_per_hour:
        raise SignupLimited("too many sign-ups from your address in the last hour: try again later")
    approved = mode == "open"
    actor = await create_account(pool, settings, new, approved=approved, signup_reason=reason, email=email or None)
    log.info("signed up", extra={"account": actor.acct, "approved": approved})
    return actor, approved


async def _pending(conn: asyncpg.Connection, username: str) -> Actor:
    actor = await actors_repo.get_local_actor_by_username(conn, username)
    if actor is None or not await actors_repo.is_pending(conn, actor.id):
        raise AccountError(f"no sign-up of '{username}' waits for approval")
    return actor


async def approve_signup(pool: asyncpg.Pool, username: str) -> Actor:
    """Let a waiting sign-up in: it may log in, and is listed."""
    async with pool.acquire() as conn, conn.transaction():
        actor = await _pending(conn, username)
        await actors_repo.approve_signup(conn, actor.id)
    log.info("sign-up approved", extra={"account": actor.acct})
    return actor


async def reject_signup(pool: asyncpg.Pool, username: str) -> Actor:
    """Refuse a waiting sign-up: the account is removed (it never published anything) and its name is free."""
    async with pool.acquire() as conn, conn.transaction():
        actor = await _pending(conn, username)
        await actors_repo.delete_pending_signup(conn, actor.id)
    log.info("sign-up rejected", extra={"account": actor.acct})
    return actor


async def delete_account(pool: asyncpg.Pool, publisher: Publisher, username: str) -> Actor:
    """Mark an account deleted and tell the servers of its followers and followees with Delete{actor}.

    Its pages answer 410 Gone and its name stays reserved; its key still signs the Delete.
    """
    async with pool.acquire() as conn, conn.transaction():
        account = await actors_repo.get_local_account_by_username(conn, username)
        if account is None:
            raise AccountError(f"no account named '{username}'")
        if not await actors_repo.mark_actor_deleted(conn, account.actor.id):
            raise AccountError(f"the account '{username}' is already deleted")
        inboxes = await deliveries_repo.follower_inboxes(conn, account.actor.id)
        inboxes += await deliveries_repo.following_inboxes(conn, account.actor.id)
        await publisher.publish(conn, account.actor, build_delete_actor(account.actor.uri), inboxes,
                                object_uri=account.actor.uri, visibility="public")
    log.info("account deleted", extra={"account": account.actor.acct})
    return account.actor


async def set_role(pool: asyncpg.Pool, username: str, role: str) -> Actor:
    """Make an account an administrator (`admin`) or a regular user (`user`, which ends its admin sessions)."""
    if role not in ROLES:
        raise AccountError(f"the role must be one of {', '.join(ROLES)}, not '{role}'")
    async with pool.acquire() as conn, conn.transaction():
        account = await actors_repo.get_local_account_by_username(conn, username)
        if account is None:
            raise AccountError(f"no account named '{username}'")
        if account.actor.deleted_at is not None:
            raise AccountError(f"the account '{username}' is deleted")
        await actors_repo.update_role(conn, account.actor.id, role)
        if role != "admin":
            await sessions_repo.end_account_sessions(conn, account.actor.id, "admin")
    log.info("account role changed", extra={"account": account.actor.acct, "role": role})
    return account.actor


async def ensure_instance_actor(pool: asyncpg.Pool, settings: Settings) -> Actor:
    """Create the instance actor on first start; follow later changes of domain or scheme."""
    urls = instance_actor_urls(settings.base_url)
    async with pool.acquire() as conn:
        existing = await actors_repo.get_instance_account(conn)
        if existing and (existing.actor.uri, existing.actor.domain) == (urls.id, settings.instance.domain):
            return existing.actor
    private_pem, public_pem = await asyncio.to_thread(generate_rsa_keypair)
    async with pool.acquire() as conn, conn.transaction():
        await actors_repo.lock_local_accounts(conn)
        existing = await actors_repo.get_instance_account(conn)
        if existing is None:
            actor = await actors_repo.insert_local_actor(
                conn, username=settings.hostname, domain=settings.instance.domain, actor_type="Application",
                display_name=settings.instance.name, urls=urls, public_key_pem=public_pem,
                private_key_pem=private_pem, password_hash=None, role="instance",
                manually_approves_followers=True, discoverable=False,
            )
            log.info("instance actor created", extra={"actor": actor.uri})
            return actor
        await actors_repo.update_instance_actor_identity(
            conn, existing.actor.id, settings.hostname, settings.instance.domain, urls
        )
        return await actors_repo.get_actor_by_uri(conn, urls.id)  # type: ignore[return-value]
