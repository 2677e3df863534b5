"""The subset of RFC 8941 structured fields that HTTP message signatures need: Dictionaries of
Items and Inner Lists with Parameters, and their canonical serialisation.

Bare items map to Python as: Integer -> int, Decimal -> float, String -> str, Token -> Token,
Byte Sequence -> bytes, Boolean -> bool. Unlike RFC 8941 (which keeps the last of repeated
keys), repeated dictionary or parameter keys are refused: these fields carry signatures.
"""

from __future__ import annotations

import base64
import binascii
import string
from dataclasses import dataclass
from typing import Union

BareItem = Union[int, float, str, bytes, bool, "Token"]
Params = tuple[tuple[str, BareItem], ...]

_LCALPHA = set(string.ascii_lowercase)
_DIGITS = set(string.digits)
_KEY_CHARS = _LCALPHA | _DIGITS | set("_-.*")
_TCHARS = set(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~:/")
_B64_CHARS = set(string.ascii_letters + string.digits + "+/=")


class StructuredFieldError(ValueError):
    """A header is not a valid RFC 8941 structured field."""


class Token(str):
    """An RFC 8941 Token (serialised without quotes)."""


@dataclass(frozen=True)
class Item:
    """A bare item with parameters."""

    value: BareItem
    params: Params = ()

    def param(self, name: str, default: BareItem | None = None) -> BareItem | None:
        """The value of parameter `name`, or `default`."""
        return dict(self.params).get(name, default)


@dataclass(frozen=True)
class InnerList:
    """A parenthesised list of items, with parameters."""

    items: tuple[Item, ...]
    params: Params = ()

    def param(self, name: str, default: BareItem | None = None) -> BareItem | None:
        """The value of parameter `name`, or `default`."""
        return dict(self.params).get(name, default)


Member = Item | InnerList


class _Parser:
    """A cursor over the field text; each method consumes what it parses."""

    def __init__(self, text: str) -> None:
        if not text.isascii():
            raise StructuredFieldError("structured field contains non-ASCII characters")
        self.s = text
        self.i = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def take(self) -> str:
        ch = self.peek()
        if not ch:
            raise StructuredFieldError("structured field ends unexpectedly")
        self.i += 1
        return ch

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.i += 1

    def at_end(self) -> bool:
        return self.i >= len(self.s)

    def dictionary(self) -> dict[str, Member]:
        self.skip(" ")
        result: dict[str, Member] = {}
        while not self.at_end():
            key = self.key()
            if key in result:
                raise StructuredFieldError(f"repeated dictionary key {key!r}")
            if self.peek() == "=":
                self.i += 1
                result[key] = self.item_or_inner_list()
            else:
                result[key] = Item(True, self.parameters())
            self.skip(" \t")
            if self.at_end():
                break
            if self.take() != ",":
                raise StructuredFieldError("dictionary members must be separated by commas")
            self.skip(" \t")
            if self.at_end():
                raise StructuredFieldError("dictionary ends with a comma")
        return result

    def item_or_inner_list(self) -> Member:
        return self.inner_list() if self.peek() == "(" else self.item()

    def inner_list(self) -> InnerList:
        self.take()  # "("
        items: list[Item] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.i += 1
                return InnerList(tuple(items), self.parameters())
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                raise StructuredFieldError("inner list items must be separated by spaces")

    def item(self) -> Item:
        value = self.bare_item()
        return Item(value, self.parameters())

    def parameters(self) -> Params:
        params: list[tuple[str, BareItem]] = []
        while self.peek() == ";":
            self.i += 1
            self.skip(" ")
            key = self.key()
            if any(key == k for k, _ in params):
                raise StructuredFieldError(f"repeated parameter {key!r}")
            value: BareItem = True
            if self.peek() == "=":
                self.i += 1
                value = self.bare_item()
            params.append((key, value))
        return tuple(params)

    def key(self) -> str:
        start = self.i
        first = self.peek()
        if not first or (first not in _LCALPHA and first != "*"):
            raise StructuredFieldError("a key must start with a lowercase letter or '*'")
        while self.peek() and self.peek() in _KEY_CHARS:
            self.i += 1
        return self.s[start:self.i]

    def bare_item(self) -> BareItem:
        ch = self.peek()
        if not ch:
            raise StructuredFieldError("structured field ends unexpectedly")
        if ch == "-" or ch in _DIGITS:
            return self.number()
        if ch == '"':
            return self.string()
        if ch == ":":
            return self.byte_sequence()
        if ch == "?":
            return self.boolean()
        if ch in string.ascii_letters or ch == "*":
            return self.token()
        raise StructuredFieldError("unrecognised item")

    def number(self) -> int | float:
        start = self.i
        if self.peek() == "-":
            self.i += 1
        if not self.peek() or self.peek() not in _DIGITS:
            raise StructuredFieldError("a number must have digits")
        while self.peek() and (self.peek() in _DIGITS or self.peek() == "."):
            self.i += 1
        text = self.s[start:self.i]
        digits = text.lstrip("-")
        if "." not in digits:
            if len(digits) > 15:
                raise StructuredFieldError("integer too long")
            return int(text)
        whole, _, frac = digits.partition(".")
        if "." in frac or len(whole) > 12 or not 1 <= len(frac) <= 3:
            raise StructuredFieldError("malformed decimal")
        return float(text)

    def string(self) -> str:
        self.take()  # opening quote
        out: list[str] = []
        while True:
            ch = self.take()
            if ch == '"':
                return "".join(out)
            if ch == "\\":
                ch = self.take()
                if ch not in ('"', "\\"):
                    raise StructuredFieldError("bad escape in string")
            elif not " " <= ch <= "~":
                raise StructuredFieldError("control character in string")
            out.append(ch)

    def token(self) -> Token:
        start = self.i
        self.i += 1
        while self.peek() and self.peek() in _TCHARS:
            self.i += 1
        return Token(self.s[start:self.i])

    def byte_sequence(self) -> bytes:
        self.take()  # ":"
        end = self.s.find(":", self.i)
        if end < 0:
            raise StructuredFieldError("byte sequence is not closed")
        text = self.s[self.i:end]
        self.i = end + 1
        if not set(text) <= _B64_CHARS:
            raise StructuredFieldError("byte sequence is not base64")
        if "=" not in text:  # RFC 8941 asks parsers to tolerate missing "=" padding
            text += "=" * (-len(text) % 4)
        try:
            return binascii.a2b_base64(text, strict_mode=True)
        except binascii.Error:
            raise StructuredFieldError("byte sequence is not base64") from None

    def boolean(self) -> bool:
        self.take()  # "?"
        ch = self.take()
        if ch not in "01":
            raise StructuredFieldError("a boolean must be ?0 or ?1")
        return ch == "1"


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse an RFC 8941 Dictionary; raise StructuredFieldError."""
    parser = _Parser(text)
    result = parser.dictionary()
    parser.skip(" ")
    if not parser.at_end():
        raise StructuredFieldError("unexpected trailing characters")
    return result


def serialize_bare_item(value: BareItem) -> str:
    """Serialise a bare item canonically."""
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _serialize_decimal(value)
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, Token):
        return str(value)
    if isinstance(value, str):
        if not all(" " <= ch <= "~" for ch in value):
            raise StructuredFieldError("strings must be printable ASCII")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise StructuredFieldError(f"cannot serialise {type(value).__name__}")


def _serialize_decimal(value: float) -> str:
    """Serialise a decimal with at most three fractional digits."""
    text = f"{round(value, 3):.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def serialize_params(params: Params) -> str:
    """Serialise parameters (";key=value", or ";key" for true)."""
    out = []
    for key, value in params:
        out.append(f";{key}" if value is True else f";{key}={serialize_bare_item(value)}")
    return "".join(out)


def serialize_item(item: Item) -> str:
    """Serialise an item with its parameters."""
    return serialize_bare_item(item.value) + serialize_params(item.params)


def serialize_inner_list(inner: InnerList) -> str:
    """Serialise an inner list with its parameters."""
    body = " ".join(serialize_item(item) for item in inner.items)
    return f"({body}){serialize_params(inner.params)}"


def serialize_member(member: Member) -> str:
    """Serialise a dictionary member value."""
    return serialize_inner_list(member) if isinstance(member, InnerList) else serialize_item(member)


def serialize_dictionary(members: dict[str, Member]) -> str:
    """Serialise a Dictionary."""
    out = []
    for key, member in members.items():
        if isinstance(member, Item) and member.value is True:
            out.append(key + serialize_params(member.params))
        else:
            out.append(f"{key}={serialize_member(member)}")
    return ", ".join(out)
