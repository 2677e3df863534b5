"""The gettext catalogs: `locale/<lang>/LC_MESSAGES/messages.po` is the source, compiled in memory at start-up."""

from __future__ import annotations

import functools
from importlib import resources
from io import BytesIO

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

DOMAIN = "messages"


def read_catalog(lang: str) -> Catalog:
    """The parsed `.po` file of a language."""
    source = resources.files(__package__).joinpath("locale", lang, "LC_MESSAGES", f"{DOMAIN}.po")
    with source.open("rb") as po:
        return read_po(po, locale=lang, domain=DOMAIN)


@functools.cache
def load_translations(lang: str) -> Translations:
    """The compiled catalog of a language (fuzzy and untranslated entries fall back to the English source)."""
    compiled = BytesIO()
    write_mo(compiled, read_catalog(lang))
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)
