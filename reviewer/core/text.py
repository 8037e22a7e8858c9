"""Text from outside, made safe to show: control characters become visible escapes.

A file name may carry ESC sequences (set the terminal's title, clear the screen) or other
control characters; stored names and every line the CLI prints go through `printable`, which
turns them into ``\\xNN`` (and ``\\uNNNN`` for the C1 range) instead of letting a terminal
obey them. Printable text, Unicode included, is left as it is.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control characters (and the bidirectional overrides that reorder what is
    shown) escaped."""
    return _CONTROL.sub(_escape, text)
