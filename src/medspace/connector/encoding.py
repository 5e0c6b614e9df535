"""Bytes from hospital systems into text: UTF-8, or GB 18030 when it is not.

Exports and feeds of Chinese HIS are often GB 18030 (a superset of GBK and GB 2312) rather
than UTF-8; anything that is neither is refused with a reason, and kept for the quarantine in a
form that shows its bytes rather than losing them.
"""

from __future__ import annotations

import contextlib

from medspace.connector.quarantine import Rejected


def decode(data: bytes) -> str:
    """``data`` as text; :class:`Rejected` if it is neither UTF-8 nor GB 18030."""
    for encoding in ("utf-8", "gb18030"):
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode(encoding)
    raise Rejected("not decodable", "the record is neither UTF-8 nor GB 18030")


def shown(data: bytes) -> str:
    """``data`` for the quarantine: UTF-8 where it is, ``\\xNN`` for every other byte."""
    return data.decode("utf-8", "backslashreplace")
