"""One translation layer, Swedish first: every message of the code and the templates has its
Swedish in the catalog (`kc/locale/sv`), the catalog holds nothing the code no longer says,
placeholders agree, and no template has text outside the layer (a word written straight into
the HTML would be shown untranslated in one of the two languages)."""
from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import jinja2
from babel.messages.pofile import read_po

from kc import i18n

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "admin_web" / "templates"


def _catalog():
    with i18n.catalog_path("sv").open("rb") as fp:
        return read_po(fp, locale="sv")


def _extracted(tmp_path):
    """The messages as `make messages` extracts them (the same babel.cfg)."""
    pot = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).parent / "pybabel"), "-q", "extract", "-F", "babel.cfg",
                    "-k", "N_", "--no-location", "-o", str(pot), "."],
                   cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as fp:
        return read_po(fp)


def test_every_message_has_its_swedish_and_the_catalog_nothing_else(tmp_path):
    source = {m.id for m in _extracted(tmp_path) if m.id}
    catalog = _catalog()
    held = {m.id for m in catalog if m.id}
    untranslated = sorted(m.id for m in catalog if m.id and not m.string)
    assert sorted(source - held) == [], "new messages: run `make messages` and translate them"
    assert untranslated == [], "messages without Swedish in kc/locale/sv/LC_MESSAGES/messages.po"
    assert sorted(held - source) == [], "messages the code no longer says: run `make messages`"
    problems = [(m.id, str(e)) for m, errors in catalog.check() for e in errors]
    assert problems == []          # %(name)s placeholders agree


def test_the_layer_speaks_swedish_first_and_english_as_written():
    assert i18n.gettext("Log out", "sv") == "Logga ut"
    assert i18n.gettext("Log out", "en") == "Log out"
    assert i18n.language("fr") == "sv" and i18n.language("EN") == "en"


class _Text(HTMLParser):
    """Text and people-visible attributes of a template, its Jinja taken out."""
    SHOWN = ("placeholder", "title", "aria-label", "alt", "label")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        self.found += [v for k, v in attrs if k in self.SHOWN and v]

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.found.append(data)


# What may stand in a template as it is: the product's name, codes and units.
ALLOWED = {"Kommuncentral", "Asterisk", "UDP", "s", "h", "kB", "MB", "t", "M", "JSON"}
_LEXER = jinja2.Environment(extensions=["jinja2.ext.i18n"])
_WORD = re.compile(r"[A-Za-zÅÄÖåäöÉé]{1,}")


def test_no_template_has_text_outside_the_layer():
    leaks = {}
    for path in sorted(TEMPLATES.glob("*.html")):
        source = "".join(value if kind == "data" else " "        # the HTML, Jinja taken out
                         for _line, kind, value in _LEXER.lex(path.read_text(encoding="utf-8")))
        parser = _Text()
        parser.feed(source)
        words = {w for text in parser.found for w in _WORD.findall(text)} - ALLOWED
        if words:
            leaks[path.name] = sorted(words)
    assert leaks == {}
