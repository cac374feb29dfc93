"""One translation layer for the site and the `kc` command: gettext catalogs, Swedish first.

Messages are written in English in the code and the templates (`_("...")`, `{% trans %}`);
`kc/locale/sv/LC_MESSAGES/messages.po` says them in Swedish. Swedish is the default; English
is the messages as written. The catalogs are read from the `.po` files when first needed (no
build step: a fresh checkout works as it is). The language of the moment is a context
variable: the site sets it per request from the user's choice, the command from `KC_LANG`.
`tests/fast/test_translations.py` fails when a message has no Swedish or a template has text
outside the layer.
"""
from __future__ import annotations

import contextvars
import gettext as _gettext
import io
from functools import lru_cache
from pathlib import Path

LOCALES = Path(__file__).parent / "locale"
DOMAIN = "messages"
DEFAULT = "sv"
LANGUAGES: dict[str, str] = {"sv": "Svenska", "en": "English"}   # each in its own language

_current: contextvars.ContextVar[str] = contextvars.ContextVar("kc_language", default=DEFAULT)


def language(value: str | None) -> str:
    """A known language code for `value` (anything else: the default)."""
    value = (value or "").strip().lower()[:2]
    return value if value in LANGUAGES else DEFAULT


def use(lang: str | None) -> str:
    """Make `lang` the language of the running task (and of what it starts); returns it."""
    lang = language(lang)
    _current.set(lang)
    return lang


def current() -> str:
    return _current.get()


def catalog_path(lang: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=None)
def translations(lang: str) -> _gettext.NullTranslations:
    """The catalog of `lang`, compiled in memory from its `.po` file; English (the messages as
    written) has none."""
    path = catalog_path(lang)
    if lang == "en" or not path.exists():
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    with path.open("rb") as fp:
        catalog = read_po(fp, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def gettext(message: str, lang: str | None = None) -> str:
    return translations(lang or current()).gettext(message)


def ngettext(singular: str, plural: str, n: int, lang: str | None = None) -> str:
    return translations(lang or current()).ngettext(singular, plural, n)


def pgettext(context: str, message: str, lang: str | None = None) -> str:
    return translations(lang or current()).pgettext(context, message)


_ = gettext


def N_(message: str) -> str:
    """Marks a message for the catalog where it is defined; translated where it is shown."""
    return message
