"""What a student wrote, made safe to show: one printable line for a terminal, a spreadsheet
cell that is never a formula, JSON that is never markup.

Student text reaches the grader's outputs through file and folder names, exception messages
and printed values. Each output escapes it here, at the point where it is written."""

from __future__ import annotations

import json
import unicodedata

# Control characters, line and paragraph separators, format characters (bidi overrides, zero
# width), surrogates (the bytes of a name that is not UTF-8) and unassigned code points.
_UNSAFE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    n = ord(ch)
    if 0xDC80 <= n <= 0xDCFF:  # a byte that was not UTF-8 (Python's surrogateescape)
        return f"\\x{n - 0xDC00:02x}"
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def text(value) -> str:
    """``value`` as one printable line: every control, format or undecodable character is
    written as its escape (``\\n``, ``\\x1b``, ``\\u202e``, ``\\xff`` for a byte of a name that
    is not UTF-8), so nothing a student wrote can move the cursor, start a line or fake one."""
    s = value if isinstance(value, str) else str(value)
    if s.isprintable() and s.isascii():
        return s
    return "".join(_escape_char(ch) if unicodedata.category(ch) in _UNSAFE else ch for ch in s)


def lines(value) -> str:
    """Like ``text``, but keeps the line breaks (for multi-line feedback)."""
    return "\n".join(text(line) for line in str(value).split("\n"))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str | int | float:
    """A CSV cell that a spreadsheet shows as text (OWASP's CSV-injection rule): a cell starting
    with ``=``, ``+``, ``-``, ``@``, tab or carriage return, after any spaces, gets a leading
    ``'``. Numbers the grader computed pass unchanged; text is escaped as by ``text``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    s = text("" if value is None else value)
    if s.lstrip(" ").startswith(_FORMULA_START) or s.startswith(_FORMULA_START):
        return "'" + s
    return s


def json_text(obj, indent: int | None = 2) -> str:
    """JSON whose strings are data: ASCII only (control characters and undecodable bytes come
    out as ``\\u`` escapes), and ``<``, ``>``, ``&`` escaped too, so that a page that shows it,
    or embeds it, never reads a student's text as markup. ``json.loads`` gives the text back."""
    out = json.dumps(obj, indent=indent, ensure_ascii=True)
    return out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
