"""The OAuth login and consent page, the code page for out-of-band apps, and error pages.

Server-rendered HTML in Korean and English that works without JavaScript. Pure: strings in,
HTML out; the handlers in `authorize.py` wrap it in responses.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from ..web.form_pages import hidden_input, render_page

TEXT = {
    "ko": {
        "title": "앱 권한 승인", "wants": "{app} 앱이 회원님의 계정을 사용하려고 합니다.",
        "asks": "요청한 권한", "name": "계정 이름 또는 이메일", "password": "비밀번호",
        "allow": "로그인하고 승인", "deny": "거부", "website": "앱 웹사이트",
        "code_title": "승인 코드", "code_hint": "이 코드를 복사해 앱에 붙여 넣으세요. 10분 동안 한 번만 쓸 수 있습니다.",
        "denied_title": "승인을 거부했습니다", "denied": "앱이 계정에 접근하지 않습니다. 이 창을 닫아도 됩니다.",
        "error_title": "요청을 처리할 수 없습니다", "bad_login": "계정 이름(또는 이메일)이나 비밀번호가 올바르지 않습니다.",
        "missing": "계정 이름과 비밀번호를 모두 입력하세요.",
        "too_many": "로그인 실패가 너무 많습니다. 15분 뒤에 다시 시도하세요.",
        "csrf": "이 양식이 만료되었거나 다른 사이트에서 보내졌습니다. 돌아가서 페이지를 새로 고친 뒤 다시 시도하세요.",
        "other_lang": "English",
    },
    "en": {
        "title": "Authorize app", "wants": "The app {app} wants to use your account.",
        "asks": "Permissions requested", "name": "Account name or email", "password": "Password",
        "allow": "Log in and authorize", "deny": "Deny", "website": "App website",
        "code_title": "Authorization code", "code_hint": "Copy this code into the app. It works once, for 10 minutes.",
        "denied_title": "Access denied", "denied": "The app will not get access to your account. You can close this window.",
        "error_title": "This request cannot be handled", "bad_login": "Wrong account name (or email) or password.",
        "missing": "Enter both your account name and your password.",
        "too_many": "Too many failed logins. Try again in 15 minutes.",
        "csrf": "This form expired or was sent from another site. Go back, reload the page and try again.",
        "other_lang": "한국어",
    },
}

SCOPE_TEXT = {
    "read": ("계정 정보, 게시물, 알림 읽기", "Read your account, posts and notifications"),
    "write": ("게시물 작성, 프로필 수정 등 계정 변경", "Post and change your account, such as your profile"),
    "follow": ("팔로우, 차단, 뮤트 관리", "Manage follows, blocks and mutes"),
    "push": ("푸시 알림 받기", "Receive push notifications"),
    "profile": ("기본 프로필 정보 읽기", "Read your basic profile information"),
}

FORM_FIELDS = ("client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge",
               "code_challenge_method", "lang")


def _scope_label(scope: str, lang: str) -> str:
    base = scope.split(":")[0] if scope not in SCOPE_TEXT else scope
    names = SCOPE_TEXT.get(scope) or SCOPE_TEXT.get(base)
    text = names[0 if lang == "ko" else 1] if names else ""
    return f"<li><code>{escape(scope)}</code>{' — ' + escape(text) if text else ''}</li>"


def login_form(lang: str, *, app_name: str, website: str | None, scopes: tuple[str, ...], fields: dict[str, str],
               csrf_token: str, error: str | None = None, username: str = "") -> str:
    """The login and consent form; `fields` are the authorization parameters carried through the POST."""
    t = TEXT[lang]
    other = "en" if lang == "ko" else "ko"
    switch = f'<nav><a href="?{escape(urlencode({**fields, "lang": other}))}">{t["other_lang"]}</a></nav>'
    site = (f'<p>{t["website"]}: <a href="{escape(website)}" rel="noopener noreferrer">{escape(website)}</a></p>'
            if website and website.startswith(("https://", "http://")) else "")
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    hidden = "".join(hidden_input(name, fields.get(name)) for name in FORM_FIELDS if name != "lang")
    body = (
        f'{switch}<h1>{t["title"]}</h1><p>{escape(t["wants"]).format(app=f"<strong>{escape(app_name)}</strong>")}</p>'
        f'{site}<h2>{t["asks"]}</h2><ul class="scopes">{"".join(_scope_label(s, lang) for s in scopes)}</ul>{alert}'
        '<form method="post" action="/oauth/authorize">'
        f'{hidden_input("csrf_token", csrf_token)}{hidden}{hidden_input("lang", lang)}'
        f'<label for="username">{t["name"]}</label>'
        f'<input type="text" id="username" name="username" value="{escape(username)}" autocomplete="username" '
        'autocapitalize="none" required>'
        f'<label for="password">{t["password"]}</label>'
        '<input type="password" id="password" name="password" autocomplete="current-password" required>'
        f'<button type="submit" name="decision" value="allow">{t["allow"]}</button>'
        f'<button type="submit" name="decision" value="deny" formnovalidate>{t["deny"]}</button>'
        "</form>"
    )
    return render_page(lang, t["title"], body)


def code_page(lang: str, code: str) -> str:
    """The code an out-of-band app (urn:ietf:wg:oauth:2.0:oob) asks its user to paste."""
    t = TEXT[lang]
    body = (f'<h1>{t["code_title"]}</h1><p>{t["code_hint"]}</p>'
            f'<p><code id="authorization-code">{escape(code)}</code></p>'
            f'<input type="text" readonly value="{escape(code)}" aria-label="{t["code_title"]}">')
    return render_page(lang, t["code_title"], body)


def denied_page(lang: str) -> str:
    """Shown to out-of-band apps' users who denied access."""
    t = TEXT[lang]
    return render_page(lang, t["denied_title"], f'<h1>{t["denied_title"]}</h1><p>{t["denied"]}</p>')


def error_page(lang: str, message: str) -> str:
    """A readable error; `message` is already in the page's language or technical (a parameter's name)."""
    t = TEXT[lang]
    return render_page(lang, t["error_title"],
                       f'<h1>{t["error_title"]}</h1><p class="error" role="alert">{escape(message)}</p>')
