"""Language codes: everything is normalised to FLORES style `iso639_3_Script`.

This module is the one place that maps other code systems (ISO 639-1, BCP-47,
gettext locales, UDHR keys) to that form, and that says how words are counted
per script.
"""

from __future__ import annotations

import re

LANG_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")

# Scripts whose languages are written without spaces between words: fertility and
# continued-word rates count characters there instead of whitespace-separated words.
UNSPACED_SCRIPTS = frozenset({"Hani", "Hans", "Hant", "Jpan", "Hira", "Kana", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"})


def is_lang_code(code: str) -> bool:
    """True for a well-formed `iso639_3_Script` code such as `eng_Latn`."""
    return bool(LANG_RE.match(code or ""))


def script_of(lang: str) -> str:
    """The ISO 15924 script part of an `iso639_3_Script` code."""
    if not is_lang_code(lang):
        raise ValueError(f"not an iso639_3_Script language code: {lang!r}")
    return lang.split("_", 1)[1]


def word_segmentation(script: str) -> str:
    """'character' for scripts written without spaces, else 'whitespace'."""
    return "character" if script in UNSPACED_SCRIPTS else "whitespace"
