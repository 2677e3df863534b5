"""Numbers, money and dates as a Korean or English reader expects them, through Babel's CLDR data. Pure.

Money is an integer count of the currency's smallest unit (won for KRW, which has no
subunit; cents for USD), never a float.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import dates, numbers

LOCALES = {"ko": "ko_KR", "en": "en_US"}


def format_number(value: int | Decimal, *, lang: str) -> str:
    """`1,234,567` with the language's grouping."""
    return numbers.format_decimal(value, locale=LOCALES[lang])


def format_money(amount: int, currency: str = "KRW", *, lang: str) -> str:
    """`₩38,000` for 38000 KRW; `amount` counts the currency's smallest unit."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"money is an integer count of the smallest unit, not {type(amount).__name__}")
    major = Decimal(amount).scaleb(-numbers.get_currency_precision(currency))
    return numbers.format_currency(major, currency, locale=LOCALES[lang])


def format_datetime(moment: datetime, width: str = "medium", *, lang: str, zone: ZoneInfo) -> str:
    """A moment in the instance's time zone, `2026. 1. 2. 오후 12:04:05` or `Jan 2, 2026, 12:04:05 PM`."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no known time zone; pass an aware one (UTC from the database)")
    return dates.format_datetime(moment, width, tzinfo=zone, locale=LOCALES[lang])
