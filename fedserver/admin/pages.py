"""The admin pages as HTML: the login form, the rewards alerts, messages. Pure: values in, HTML out.

Everything that comes from the database or the request is escaped (an alert's message
quotes what a remote log served).
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from rewards.store import Alert

from ..api.login_page import TEXT as LOGIN_TEXT
from ..web.form_pages import hidden_input, render_page

LOGIN_PATH = "/admin/login"
LOGOUT_PATH = "/admin/logout"
ALERTS_PATH = "/admin/rewards/alerts"

TEXT = {
    "ko": {
        "login_title": "관리자 로그인", "login": "로그인", "logout": "로그아웃",
        "not_admin": "@{name} 계정은 이 인스턴스의 관리자가 아닙니다. 서버에서 "
                     "<code>fedserver account role {name} admin</code> 명령으로 관리자로 만들 수 있습니다.",
        "session_ended": "로그인이 끝났습니다. 다시 로그인하세요.",
        "alerts_title": "보상 로그 경고",
        "alerts_intro": "회원 인스턴스의 로그를 감시하다 포크, 기록 변조, 잘림을 발견하면 여기에 남깁니다. "
                        "증거는 rewards_evidence 표에 보관됩니다.",
        "none": "경고가 없습니다.", "open_count": "해결되지 않은 경고 {n}건 (최근 {shown}건 표시)",
        "time": "발생 시각", "origin": "로그", "kind": "종류", "message": "내용", "state": "상태",
        "open": "해결 안 됨", "resolved": "해결됨: {when}, @{by}", "resolve": "해결됨으로 표시",
        "seen": "{n}번 감지, 마지막 {when}",
        "not_found": "그런 경고가 없습니다.", "forbidden_title": "권한이 없습니다",
    },
    "en": {
        "login_title": "Administrator login", "login": "Log in", "logout": "Log out",
        "not_admin": "The account @{name} is not an administrator of this instance. On the server, "
                     "<code>fedserver account role {name} admin</code> makes it one.",
        "session_ended": "Your session has ended. Log in again.",
        "alerts_title": "Rewards log alerts",
        "alerts_intro": "Monitoring of member logs records here every fork, rewrite or truncation it finds. "
                        "The evidence is kept in the rewards_evidence table.",
        "none": "No alerts.", "open_count": "{n} unresolved (showing the newest {shown})",
        "time": "Raised", "origin": "Log", "kind": "Kind", "message": "Message", "state": "State",
        "open": "Unresolved", "resolved": "Resolved {when} by @{by}", "resolve": "Mark resolved",
        "seen": "seen {n} times, last {when}",
        "not_found": "There is no such alert.", "forbidden_title": "Not allowed",
    },
}


def _when(moment: datetime) -> str:
    return f'<time datetime="{moment.isoformat()}">{moment.strftime("%Y-%m-%d %H:%M:%S")} UTC</time>'


def login_page(lang: str, csrf_token: str, *, error: str | None = None, username: str = "") -> str:
    """The login form (it posts to itself)."""
    t, words = TEXT[lang], LOGIN_TEXT[lang]
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        f'<h1>{t["login_title"]}</h1>{alert}<form method="post" action="{LOGIN_PATH}">'
        f'{hidden_input("csrf_token", csrf_token)}'
        f'<label for="username">{words["name"]}</label>'
        f'<input type="text" id="username" name="username" value="{escape(username)}" autocomplete="username" '
        'autocapitalize="none" required>'
        f'<label for="password">{words["password"]}</label>'
        '<input type="password" id="password" name="password" autocomplete="current-password" required>'
        f'<button type="submit">{t["login"]}</button></form>'
    )
    return render_page(lang, t["login_title"], body)


def _message(lang: str, title: str, message_html: str, login_link: bool) -> str:
    link = f'<p><a href="{LOGIN_PATH}">{TEXT[lang]["login"]}</a></p>' if login_link else ""
    return render_page(lang, title, f'<h1>{escape(title)}</h1><p class="error" role="alert">{message_html}</p>{link}')


def message_page(lang: str, title: str, message: str, *, login_link: bool = False) -> str:
    """A short page with one message, and a link to the login form if asked."""
    return _message(lang, title, escape(message), login_link)


def not_admin_page(lang: str, username: str) -> str:
    """The refusal for an account that is not an administrator."""
    t = TEXT[lang]
    return _message(lang, t["forbidden_title"], t["not_admin"].format(name=escape(username)), True)


def _logout_form(lang: str, username: str, csrf_token: str) -> str:
    return (f'<nav>@{escape(username)} <form method="post" action="{LOGOUT_PATH}">'
            f'{hidden_input("csrf_token", csrf_token)}<button type="submit">{TEXT[lang]["logout"]}</button>'
            "</form></nav>")


def _alert_row(lang: str, alert: Alert, csrf_token: str) -> str:
    t = TEXT[lang]
    if alert.resolved_at is not None:
        state = escape(t["resolved"].format(when=alert.resolved_at.strftime("%Y-%m-%d %H:%M UTC"),
                                            by=alert.resolved_by or "?"))
    else:
        state = (f'{t["open"]}<form method="post" action="{ALERTS_PATH}/{alert.id}/resolve">'
                 f'{hidden_input("csrf_token", csrf_token)}<button type="submit">{t["resolve"]}</button></form>')
    css = "resolved" if alert.resolved_at is not None else "open"
    seen = (f'<br><small>{t["seen"].format(n=alert.seen, when=_when(alert.last_seen_at))}</small>'
            if alert.seen > 1 else "")
    return (f'<tr id="alert-{alert.id}" class="{css}"><td>{_when(alert.created_at)}{seen}</td>'
            f"<td><code>{escape(alert.origin)}</code></td><td>{escape(alert.kind)}</td>"
            f"<td>{escape(alert.message)}</td><td>{state}</td></tr>")


def alerts_page(lang: str, username: str, csrf_token: str, alerts: list[Alert], unresolved: int) -> str:
    """The rewards alerts, newest first, each unresolved one with its resolve button."""
    t = TEXT[lang]
    if alerts:
        head = "".join(f"<th>{t[key]}</th>" for key in ("time", "origin", "kind", "message", "state"))
        rows = "".join(_alert_row(lang, alert, csrf_token) for alert in alerts)
        listing = (f'<p>{t["open_count"].format(n=unresolved, shown=len(alerts))}</p>'
                   f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    else:
        listing = f'<p>{t["none"]}</p>'
    body = (f'{_logout_form(lang, username, csrf_token)}<h1>{t["alerts_title"]}</h1>'
            f'<p>{t["alerts_intro"]}</p>{listing}')
    return render_page(lang, t["alerts_title"], body, wide=True)
