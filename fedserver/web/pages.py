"""Server-rendered HTML pages (Korean first, then English); they work without JavaScript."""

from __future__ import annotations

from html import escape

from aiohttp import web

from activities.actor import Actor

_TEXT = {
    "ko": {
        "followers": "팔로워", "following": "팔로잉", "posts": "게시물", "points": "포인트", "gone": "삭제된 계정입니다.",
        "not_found": "찾을 수 없습니다.", "follow_hint": "연합우주(Mastodon 등)에서 이 주소로 팔로우하세요:",
        "welcome": "공방, 사회적기업, 협동조합을 위한 연합 소셜 서버입니다.",
    },
    "en": {
        "followers": "Followers", "following": "Following", "posts": "Posts", "points": "Points", "gone": "This account was deleted.",
        "not_found": "Not found.", "follow_hint": "Follow from Mastodon or any fediverse app with this address:",
        "welcome": "A federated home for craft workshops, social enterprises and co-operatives.",
    },
}


def pick_language(request: web.Request) -> str:
    """`ko` unless the browser prefers English over Korean."""
    ranked = []
    for part in request.headers.get("Accept-Language", "").split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            ranked.append((float(q) if q else 1.0, tag.split("-")[0].lower()))
        except ValueError:
            continue
    for _, lang in sorted(ranked, key=lambda item: -item[0]):
        if lang in _TEXT:
            return lang
    return "ko"


def _page(lang: str, title: str, body: str, status: int = 200) -> web.Response:
    html = (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head><body>{body}</body></html>\n"
    )
    return web.Response(text=html, content_type="text/html", status=status, headers={"Vary": "Accept, Accept-Language"})


def profile_page(request: web.Request, actor: Actor, domain: str, counts: dict[str, int]) -> web.Response:
    """The public profile of a local account."""
    lang = pick_language(request)
    t = _TEXT[lang]
    name = escape(actor.display_name or actor.username)
    handle = escape(f"@{actor.username}@{domain}")
    if actor.deleted_at is not None:
        return _page(lang, handle, f"<main><h1>{handle}</h1><p>{t['gone']}</p></main>", status=410)
    stats = " · ".join(f"{t[key]} {counts.get(key, 0)}" for key in ("posts", "followers", "following", "points"))
    body = (
        f'<main><h1>{name}</h1><p class="handle">{handle}</p>'
        f'<div class="bio">{actor.summary}</div>'
        f"<p>{stats}</p><p>{t['follow_hint']} <code>{handle}</code></p>"
        f'<link rel="alternate" type="application/activity+json" href="{escape(actor.uri)}"></main>'
    )
    return _page(lang, f"{actor.display_name or actor.username} ({handle})", body)


def home_page(request: web.Request, instance_name: str, description: str) -> web.Response:
    """The front page of the instance."""
    lang = pick_language(request)
    body = (
        f"<main><h1>{escape(instance_name)}</h1><p>{escape(description or _TEXT[lang]['welcome'])}</p></main>"
    )
    return _page(lang, instance_name, body)


def not_found_page(request: web.Request) -> web.Response:
    """A readable 404 for browsers."""
    lang = pick_language(request)
    return _page(lang, "404", f"<main><h1>404</h1><p>{_TEXT[lang]['not_found']}</p></main>", status=404)
