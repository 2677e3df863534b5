"""The public pages of the instance and its accounts: the front page, a profile with its posts, blog and shop tabs,
and an Atom feed per account.

Read-only pages for anyone: they show public and unlisted posts only (`repo.pages`), and the
listings a visitor may order from (`storefront.store.shop_items`). ActivityPub clients asking for
`/@name` are sent to the actor document, as Mastodon does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web
from yarl import URL

from activities.actor import Actor
from rewards import ranking_web as rewards_ranking
from rewards import web as rewards_web
from storefront import store as shop_store

from ..app_keys import HTTP, POOL, SETTINGS
from ..auth import client_address
from ..documents import wants_activitypub
from ..errors import HTTPError
from ..net.http import FetchError, parse_handle
from ..repo import actors as actors_repo
from ..repo import api_accounts, api_limits
from ..repo import moderation as moderation_repo
from ..repo import pages as pages_repo
from ..templates import cached_page, error_page, render_page
from . import atom

PAGE_SIZE = 20
SHOP_PAGE_SIZE = 24
MAX_PAGE = 500
FEED_SIZE = 20


@dataclass(frozen=True)
class Profile:
    """What every tab of a profile shows above its list."""

    actor: Actor
    handle: str
    url: str
    counts: dict[str, int]

    @property
    def name(self) -> str:
        return self.actor.display_name or self.actor.username


def page_number(request: web.Request) -> int:
    """`?page=N` (1 when absent); 400 for anything but a number from 1 to MAX_PAGE."""
    raw = request.query.get("page", "1")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= MAX_PAGE:
        raise HTTPError(400, f"page must be a number from 1 to {MAX_PAGE}")
    return int(raw)


async def _profile(request: web.Request) -> Profile | web.Response:
    """The account of `{name}` with its counts, or the page to answer instead (unknown, or deleted: 410)."""
    name = request.match_info["name"]
    async with request.config_dict[POOL].acquire() as conn:
        actor = await actors_repo.get_shown_local_actor(conn, name)  # a sign-up waiting for approval: not shown
        if actor is None:
            return error_page(request, 404, f"no account named {name} here")
        handle = f"@{actor.username}@{request.config_dict[SETTINGS].instance.domain}"
        if actor.deleted_at is not None:
            return render_page(request, "profile_gone.html", status=410, handle=handle)
        # The counts Mastodon apps show (kept by triggers, one statement), and points and tokens from the
        # witnessed log (the balance /rewards/balance serves: settled points not yet minted, tokens).
        stats = (await api_accounts.get_account_stats(conn, [actor.id]))[actor.id]
        standing = await rewards_web.published_balance(conn, request.config_dict[SETTINGS], actor.uri)
        counts = {"posts": stats.statuses_count, "followers": stats.followers_count,
                  "following": stats.following_count, "points": standing.points, "tokens": standing.tokens}
    return Profile(actor, handle, actor.url or actor.uri, counts)


@cached_page
async def profile_page(request: web.Request) -> web.Response:
    """`/@{name}` for browsers (and `/users/{name}` when a browser asks): the profile and its short posts."""
    return await _posts_tab(request, "posts", "profile.html")


async def profile_get(request: web.Request) -> web.StreamResponse:
    """`/@{name}`: the profile page; ActivityPub clients are sent to the actor id."""
    if wants_activitypub(request):
        async with request.config_dict[POOL].acquire() as conn:
            actor = await actors_repo.get_shown_local_actor(conn, request.match_info["name"])
        if actor is None:
            raise HTTPError(404, f"no account named {request.match_info['name']} here")
        raise web.HTTPFound(actor.uri)
    return await profile_page(request)


@cached_page
async def blog_get(request: web.Request) -> web.Response:
    """`/@{name}/blog`: the account's articles, newest first."""
    return await _posts_tab(request, "blog", "blog.html")


async def _posts_tab(request: web.Request, kind: str, template: str) -> web.Response:
    page = page_number(request)
    profile = await _profile(request)
    if isinstance(profile, web.Response):
        return profile
    async with request.config_dict[POOL].acquire() as conn:
        posts = await pages_repo.account_posts(conn, profile.actor.id, kind, limit=PAGE_SIZE + 1,
                                               offset=(page - 1) * PAGE_SIZE)
    return render_page(request, template, profile=profile, tab=kind, posts=posts[:PAGE_SIZE], page=page,
                       more=len(posts) > PAGE_SIZE, feed_url=_feed_url(request, profile.actor))


@cached_page
async def shop_get(request: web.Request) -> web.Response:
    """`/@{name}/shop`: the account's listings (sold-out and paused ones too, marked), newest first."""
    page = page_number(request)
    profile = await _profile(request)
    if isinstance(profile, web.Response):
        return profile
    async with request.config_dict[POOL].acquire() as conn:
        items = await shop_store.shop_items(conn, seller_id=profile.actor.id, limit=SHOP_PAGE_SIZE + 1,
                                            offset=(page - 1) * SHOP_PAGE_SIZE)
    return render_page(request, "shop.html", profile=profile, tab="shop", items=items[:SHOP_PAGE_SIZE], page=page,
                       more=len(items) > SHOP_PAGE_SIZE, feed_url=_feed_url(request, profile.actor))


def _feed_url(request: web.Request, actor: Actor) -> str:
    return f"{request.config_dict[SETTINGS].base_url}/@{actor.username}.atom"


async def feed_get(request: web.Request) -> web.Response:
    """`/@{name}.atom`: the account's newest public posts and articles as an Atom feed."""
    name = request.match_info["name"]
    async with request.config_dict[POOL].acquire() as conn:
        actor = await actors_repo.get_shown_local_actor(conn, name)
        if actor is None or actor.deleted_at is not None:
            raise HTTPError(404 if actor is None else 410, f"no account named {name} here")
        posts = await pages_repo.account_posts(conn, actor.id, "all", limit=FEED_SIZE)
    body = atom.account_feed(actor, _feed_url(request, actor), posts)
    return web.Response(body=body, content_type="application/atom+xml", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})


@cached_page
async def home_get(request: web.Request) -> web.Response:
    """`/`: the instance, its makers, and its newest products and posts."""
    instance = request.config_dict[SETTINGS].instance
    async with request.config_dict[POOL].acquire() as conn:
        makers = await pages_repo.makers(conn, limit=24)
        items = await shop_store.shop_items(conn, seller_id=None, limit=8)
        posts = await pages_repo.newest_posts(conn, limit=10)
    return render_page(request, "home.html", instance_name=instance.name, description=instance.description,
                       makers=makers, items=items, posts=posts)


async def about_get(request: web.Request) -> web.Response:
    """`/about`: the server, its rules and, unless `[instance] publish_domain_blocks` is off, the servers it
    blocks or silences with the reasons given."""
    instance = request.config_dict[SETTINGS].instance
    domains = None
    if instance.publish_domain_blocks:
        async with request.config_dict[POOL].acquire() as conn:
            domains = await moderation_repo.list_domains(conn)
    return render_page(request, "about.html", instance_name=instance.name, description=instance.description,
                       rules=instance.rules, domains=domains)


SUBSCRIBE_REL = "http://ostatus.org/schema/1.0/subscribe"
REMOTE_FOLLOWS_PER_5MIN = 30


async def remote_follow_get(request: web.Request) -> web.Response:
    """`/@{name}/follow?address=you@your.server`: off to the visitor's own server's follow page (its WebFinger
    `subscribe` template, as Mastodon's remote follow does); without one, how to follow from the app."""
    profile = await _profile(request)
    if isinstance(profile, web.Response):
        return profile
    settings = request.config_dict[SETTINGS]
    address = request.query.get("address", "").strip()[:320]
    try:
        name, host = parse_handle(address)
    except FetchError:
        return _remote_follow_page(request, profile, address, "bad_address", 422)
    async with request.config_dict[POOL].acquire() as conn:
        window = await api_limits.hit(conn, f"remote-follow:{client_address(request, settings)}", 300)
    if window.hits > REMOTE_FOLLOWS_PER_5MIN:
        return _remote_follow_page(request, profile, address, "too_many", 429)
    http = request.config_dict.get(HTTP)
    try:
        if http is None:
            raise FetchError("no HTTP client", permanent=True)
        jrd = await http.get_jrd(URL.build(scheme=settings.instance.scheme, authority=host,
                                           path="/.well-known/webfinger", query={"resource": f"acct:{name}@{host}"}))
    except (FetchError, ValueError, TypeError):
        return _remote_follow_page(request, profile, address, "unreachable", 502)
    template = next((link.get("template") for link in jrd.get("links") or []
                     if isinstance(link, dict) and link.get("rel") == SUBSCRIBE_REL
                     and isinstance(link.get("template"), str) and "{uri}" in link["template"]), None)
    target = template.replace("{uri}", quote(profile.handle.removeprefix("@"), safe="@")) if template else ""
    if not target.startswith("https://") and not (settings.federation.allow_private_addresses
                                                  and target.startswith("http://")):
        return _remote_follow_page(request, profile, address, "no_template", 422)
    raise web.HTTPSeeOther(target)


def _remote_follow_page(request: web.Request, profile: Profile, address: str, problem: str,
                        status: int) -> web.Response:
    return render_page(request, "remote_follow.html", status=status, profile=profile, address=address,
                       problem=problem)


@cached_page
async def discover_get(request: web.Request) -> web.Response:
    """`/discover`: products and posts from every server this one knows, each linking to its home server.

    The first page opens with the entries of the open ranking (rewards/ranking.py over the witnessed
    logs, window 7d) that this server knows and a visitor may see, in that order; then, and on later
    pages, the newest. When no ranking can be had quickly, the newest only; the page says which.
    """
    page = page_number(request)
    rankings = {}
    if page == 1:
        products, posts_ranked = await asyncio.gather(rewards_ranking.live_ranking(request, "products"),
                                                      rewards_ranking.live_ranking(request, "posts"))
        rankings = {kind: ranked for kind, ranked in (("products", products), ("posts", posts_ranked))
                    if ranked and ranked.get("ranking")}
    async with request.config_dict[POOL].acquire() as conn:
        ranked_items = await _ranked(rankings.get("products"), lambda uris: shop_store.shop_items_by_uri(conn, uris))
        ranked_posts = await _ranked(rankings.get("posts"), lambda uris: pages_repo.network_posts_by_uri(conn, uris))
        items = await shop_store.shop_items(conn, seller_id=None, network=True, limit=SHOP_PAGE_SIZE + 1,
                                            offset=(page - 1) * SHOP_PAGE_SIZE)
        posts = await pages_repo.network_posts(conn, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    more = len(items) > SHOP_PAGE_SIZE or len(posts) > PAGE_SIZE
    shown_items = {item.listing.uri for item in ranked_items}
    shown_posts = {post.uri for post, _ in ranked_posts}
    items = ranked_items + [item for item in items[:SHOP_PAGE_SIZE] if item.listing.uri not in shown_items]
    posts = ranked_posts + [(post, acct) for post, acct in posts[:PAGE_SIZE] if post.uri not in shown_posts]
    ranking = next(iter(rankings.values()), None)
    return render_page(request, "discover.html", items=items, posts=posts, page=page, more=more,
                       ranking=ranking, ranked=len(ranked_items) + len(ranked_posts),
                       logs=sorted({(log["origin"], log["size"]) for r in rankings.values() for log in r["logs"]}))


async def _ranked(ranking: dict | None, lookup) -> list:
    """The ranked objects this server can show, in the ranking's order (the rest are on other servers only)."""
    if not ranking:
        return []
    order = [entry["object"] for entry in ranking["ranking"] if isinstance(entry.get("object"), str)]
    found = await lookup(order)
    return [found[uri] for uri in order if uri in found]


def setup_routes(app: web.Application) -> None:
    """The front page and the account pages (the feed first: `/@name.atom` would match `/@{name}` too)."""
    app.router.add_get("/", home_get)
    app.router.add_get("/about", about_get)
    app.router.add_get("/discover", discover_get)
    app.router.add_get("/@{name:[A-Za-z0-9_]{1,30}}.atom", feed_get)
    app.router.add_get("/@{name}", profile_get)
    app.router.add_get("/@{name}/blog", blog_get)
    app.router.add_get("/@{name}/shop", shop_get)
    app.router.add_get("/@{name}/follow", remote_follow_get)
