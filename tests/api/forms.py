"""Reading the OAuth login form the way a browser would, without JavaScript."""

from __future__ import annotations

from html.parser import HTMLParser


class _Inputs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}
        self.code: str | None = None
        self._in_code = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "hidden" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""
        self._in_code = tag == "code" and attrs.get("id") == "authorization-code"

    def handle_data(self, data):
        if self._in_code:
            self.code = data.strip()
            self._in_code = False


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of the login form (CSRF token and the authorization parameters)."""
    parser = _Inputs()
    parser.feed(html)
    return parser.fields


def shown_code(html: str) -> str | None:
    """The authorization code on the out-of-band page."""
    parser = _Inputs()
    parser.feed(html)
    return parser.code
