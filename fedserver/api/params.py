"""Request parameters as Mastodon clients send them: JSON, urlencoded or multipart bodies, and query strings.

Form keys follow Rails' conventions (`id[]` for lists, `source[privacy]` for nesting), because
that is how Mastodon.py, toot and Ivory encode them. Typed getters turn wrong types into 422.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from aiohttp import web
from aiohttp.web_request import FileField

from ..errors import NUL_REFUSED, HTTPError, holds_nul

_TRUE = frozenset({"1", "true", "t", "on", "yes"})
_FALSE = frozenset({"0", "false", "f", "off", "no", ""})
_KEY_PART = re.compile(r"\[([^\[\]]*)\]")
_MAX_DEPTH = 4


def _split_key(key: str) -> list[str]:
    """`a[b][]` → ['a', 'b', '']; anything odd stays one plain key."""
    base, bracket, rest = key.partition("[")
    if not bracket or not base:
        return [key]
    parts = _KEY_PART.findall("[" + rest)
    if "".join(f"[{p}]" for p in parts) != "[" + rest or len(parts) > _MAX_DEPTH:
        return [key]
    return [base, *parts]


def _put(target: dict, parts: list[str], value: Any) -> None:
    head, tail = parts[0], parts[1:]
    if not tail:
        target[head] = value
    elif tail == [""]:
        existing = target.get(head)
        target[head] = [*existing, value] if isinstance(existing, list) else [value]
    else:
        child = target.get(head)
        if not isinstance(child, dict):
            child = target[head] = {}
        _put(child, tail, value)


def nest(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Rails-style nesting of flat form pairs."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        _put(out, _split_key(key), value)
    return out


class Params:
    """Parsed parameters with typed getters; `name` in messages is the dotted path the client sent."""

    def __init__(self, data: dict[str, Any], prefix: str = ""):
        self.data = data
        self.prefix = prefix

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def _label(self, name: str) -> str:
        return f"{self.prefix}[{name}]" if self.prefix else name

    def raw(self, name: str) -> Any:
        """The value as parsed, or None."""
        return self.data.get(name)

    def string(self, name: str, *, max_len: int | None = None, required: bool = False) -> str | None:
        """A string (numbers accepted as their text); 422 for other types or an over-long value."""
        value = self.data.get(name)
        if value is None:
            if required:
                raise HTTPError(422, f"{self._label(name)} is required")
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise HTTPError(422, f"{self._label(name)} must be a string")
        if max_len is not None and len(value) > max_len:
            raise HTTPError(422, f"{self._label(name)} is too long (maximum is {max_len} characters)")
        if required and not value.strip():
            raise HTTPError(422, f"{self._label(name)} can't be blank")
        return value

    def boolean(self, name: str) -> bool | None:
        """A boolean from JSON true/false or "1"/"0"/"true"/"false"; 422 otherwise."""
        value = self.data.get(name)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise HTTPError(422, f"{self._label(name)} must be a boolean")

    def strings(self, name: str, *, max_items: int = 100) -> list[str]:
        """A list of strings from `name[]`, a JSON array or one plain value."""
        value = self.data.get(name)
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        if len(items) > max_items:
            raise HTTPError(422, f"{self._label(name)} has more than {max_items} items")
        out = []
        for item in items:
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str):
                raise HTTPError(422, f"{self._label(name)} must be a list of strings")
            out.append(item)
        return out

    def section(self, name: str) -> Params:
        """Nested parameters such as `source[...]`; empty when absent."""
        value = self.data.get(name)
        if value is None:
            return Params({}, self._label(name))
        if not isinstance(value, dict):
            raise HTTPError(422, f"{self._label(name)} must be an object")
        return Params(value, self._label(name))


def query_params(request: web.Request) -> Params:
    """The query string, nested Rails-style."""
    return Params(nest(request.query.items()))


async def body_params(request: web.Request) -> Params:
    """The body (JSON, urlencoded or multipart) over the query string; 400/415/422 for bodies we can't read."""
    merged = nest(request.query.items())
    merged.update(await _read_body(request))
    if holds_nul({k: v for k, v in merged.items() if not isinstance(v, FileField)}):
        raise HTTPError(422, NUL_REFUSED)
    return Params(merged)


async def _read_body(request: web.Request) -> dict[str, Any]:
    ctype = request.content_type
    if ctype == "application/json" or ctype.endswith("+json"):
        return await _read_json(request)
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        return nest(form.items())  # files stay FileField objects
    if not request.body_exists or not await request.read():
        return {}
    raise HTTPError(415, "send the parameters as JSON, application/x-www-form-urlencoded or multipart/form-data")


async def _read_json(request: web.Request) -> dict[str, Any]:
    text = await request.text()
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HTTPError(400, f"the request body is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise HTTPError(400, "the request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise HTTPError(422, "the request body must be a JSON object")
    return data
