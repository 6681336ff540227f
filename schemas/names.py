"""Names and text that reach paths and terminals: one rule for names, one escape for display.
"""

from __future__ import annotations

import re

from schemas.errors import ConfigError

# A name that becomes a path component or a hive partition value: no separators, no `..`,
# no `=`, no control characters, nothing a shell or a filesystem reads specially.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def check_name(value, what: str = "name") -> str:
    """`value` if it is safe as one path component, else ConfigError naming `what` and the rule."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ConfigError(f"invalid {what} {printable(repr(value))}: use 1-128 letters, digits, '.', '_', "
                          f"'+' or '-', starting with a letter or digit (no '/', '..', '=' or spaces)")
    return value


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` with terminal control characters (ESC, BEL, C1, bidi overrides)
    and lone surrogates shown as escapes, so that printing it can neither drive a terminal nor raise.

    Newlines and tabs are kept when `newlines` is true; otherwise shown as \\n and \\t too.
    """
    s = str(text)
    if not newlines:
        s = s.replace("\n", "\\n").replace("\t", "\\t")
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), s)
