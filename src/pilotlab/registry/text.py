"""Text from the registry made safe to print on a terminal."""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 controls (ESC starts terminal escape sequences; CR and BS overwrite what was printed), DEL,
# C1 controls (CSI 0x9b is a one-byte ESC [), and the Unicode controls that reorder or hide
# text (bidirectional overrides and isolates, zero-width characters, line/paragraph separators).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: object) -> str:
    """``str(text)`` with every control character shown as a visible escape (``\\x1b``).

    Terminal escape sequences in a pilot's title or id (which come from pilot files and imports
    anyone may write) are then shown, never executed by the terminal; tabs and newlines are shown
    too, so that one field stays on one line of a table.
    """
    return _UNSAFE.sub(_escape, str(text))
