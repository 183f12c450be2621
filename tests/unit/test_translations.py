"""The four interface catalogues: complete, exact about placeholders, and loadable.

A missing or fuzzy translation falls back to English silently, and a lost `%(name)s` raises
only when the page is rendered, so both are caught here rather than by a visitor. The source
is extracted afresh (babel.cfg, the Makefile's keywords) so a string added without running
`make translations` fails here, not in front of a German reader.
"""

from __future__ import annotations

import gettext
import re
import shlex
from collections import Counter
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from app.languages import LANGUAGES, TRANSLATIONS, compile_translations

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = sorted(code for code in LANGUAGES if code != "en")

# %(name)s and %s (and %% kept literal by Jinja's formatting), {name}, HTML entities and tags:
# a translation must carry exactly the same ones, in any order.
PLACEHOLDER = re.compile(
    r"%\([A-Za-z_]\w*\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]"
    r"|%[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]"
    r"|\{[A-Za-z_0-9.\[\]]*(?:![rsa])?(?::[^{}]*)?\}"
    r"|&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);"
    r"|</?[A-Za-z][^<>]*>")


def placeholders(text: str) -> Counter[str]:
    return Counter(PLACEHOLDER.findall(text))


def catalogue(language: str) -> Catalog:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return read_po(source, locale=language)


def messages(catalog: Catalog) -> list[Message]:
    return [message for message in catalog if message.id]


def forms(message: Message) -> list[str]:
    text = message.string
    return [str(text)] if isinstance(text, str) else [str(t) for t in text or ()]


def ids(message: Message) -> list[str]:
    text = message.id
    return [str(text)] if isinstance(text, str) else [str(t) for t in text]


def test_every_interface_language_but_english_has_a_catalogue() -> None:
    assert TRANSLATED == ["de", "he", "nb", "pl"]
    on_disk = sorted(p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))
    assert on_disk == TRANSLATED


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated_and_none_is_fuzzy(language: str) -> None:
    catalog = catalogue(language)
    assert not catalog.fuzzy, "the header is marked fuzzy"
    assert len(messages(catalog)) > 300
    untranslated = [m.id for m in messages(catalog) if not all(s.strip() for s in forms(m))]
    fuzzy = [m.id for m in messages(catalog) if m.fuzzy]
    assert untranslated == [] and fuzzy == []


COUNT = re.compile(r"%\(num\)")  # Flask-Babel's ngettext passes the number as num


def forms_for_one_number(catalog: Catalog) -> set[int]:
    """Plural forms used for a single number (n == 1): "eine Rechnung" may leave out %(num)d."""
    plural = gettext.c2py(catalog.plural_expr)
    used: dict[int, set[int]] = {}
    for n in range(1000):
        used.setdefault(plural(n), set()).add(n)
    return {form for form, numbers in used.items() if len(numbers) == 1}


@pytest.mark.parametrize("language", TRANSLATED)
def test_placeholders_entities_and_tags_survive_translation(language: str) -> None:
    catalog = catalogue(language)
    single = forms_for_one_number(catalog)
    wrong = []
    for message in messages(catalog):
        wanted = placeholders(ids(message)[-1])
        for index, text in enumerate(forms(message)):
            got = placeholders(text)
            if message.pluralizable and index in single:
                got.update({p: n for p, n in wanted.items() if COUNT.match(p) and p not in got})
            if got != wanted:
                wrong.append((message.id, text))
    assert wrong == []
    # Babel's own checks: python-format consistency and the number of plural forms.
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalogue(language).check()]
    assert problems == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_plural_forms_follow_the_language(language: str) -> None:
    catalog = catalogue(language)
    expected = get_plural(language)
    assert (catalog.num_plurals, catalog.plural_expr) == (expected.num_plurals,
                                                          expected.plural_expr)
    for message in messages(catalog):
        if message.pluralizable:
            assert len(forms(message)) == catalog.num_plurals, message.id


def test_polish_has_three_plural_forms_chosen_by_the_last_digits() -> None:
    catalog = catalogue("pl")
    assert catalog.num_plurals == 3
    translations = gettext.GNUTranslations(mo_bytes(catalog))
    # ngettext on a made-up id returns the English forms, but the form index comes from the
    # catalogue's Plural-Forms: 1 -> one, 2-4 and 22-24 -> few, 5-21 and 25 -> many.
    pick = translations.plural  # type: ignore[attr-defined]
    assert [pick(n) for n in (1, 2, 4, 5, 12, 21, 22, 25, 102)] == [0, 1, 1, 2, 2, 2, 1, 2, 1]


def mo_bytes(catalog: Catalog) -> BytesIO:
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("language", TRANSLATED)
def test_catalogue_compiles_and_answers_in_its_language(language: str) -> None:
    catalog = catalogue(language)
    translations = gettext.GNUTranslations(mo_bytes(catalog))
    for message in messages(catalog):
        if message.pluralizable:
            singular, plural = ids(message)
            for n in (1, 2, 5):
                got = translations.ngettext(singular, plural, n)
                assert got == forms(message)[translations.plural(n)]  # type: ignore[attr-defined]
        else:
            assert translations.gettext(ids(message)[0]) == forms(message)[0]


def test_compile_translations_writes_every_mo_once(tmp_path: Path) -> None:
    for language in TRANSLATED:
        folder = tmp_path / language / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "messages.po").write_bytes(
            (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").read_bytes())
    written = compile_translations(tmp_path)
    assert sorted(p.parent.parent.name for p in written) == TRANSLATED
    assert compile_translations(tmp_path) == []  # fresh .mo files are left alone
    with (tmp_path / "de" / "LC_MESSAGES" / "messages.mo").open("rb") as compiled:
        assert gettext.GNUTranslations(compiled).gettext("Aging") == "Forderungsalter"


def extraction_keywords() -> dict[str, Any]:
    """The default keywords plus the Makefile's BABEL_KEYWORDS, so both extract the same."""
    line = next(line for line in (ROOT / "Makefile").read_text().splitlines()
                if line.startswith("BABEL_KEYWORDS"))
    words = shlex.split(line.split("=", 1)[1])
    specs = [word for flag, word in zip(words[::2], words[1::2], strict=True) if flag == "-k"]
    return {**DEFAULT_KEYWORDS, **parse_keywords(specs)}


def source_messages() -> set[str]:
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=extraction_keywords()):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_the_catalogues_hold_every_string_in_the_source() -> None:
    in_source = source_messages()
    assert "Aging" in in_source and "excluded from collection" in in_source  # templates, _l()
    for language in TRANSLATED:
        held = {ids(m)[0] for m in messages(catalogue(language))}
        missing = sorted(in_source - held)
        assert missing == [], f"{language}: run `make translations` and translate {missing}"
