"""Text encoding detection from the first bytes of a file.

People export data from spreadsheets, old Windows tools and scripts, so UTF-8 is not a given. The order
of the checks matters: byte-order marks are certain, UTF-16 without a mark shows as regular zero bytes,
and UTF-8 is tried before the Latin-1 fallback (which decodes anything, so it is reported).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Encoding:
    """How to decode a file: `name` goes straight to `open(encoding=...)`."""

    name: str
    label: str
    fallback: bool = False


UTF8 = Encoding("utf-8", "UTF-8")
UTF8_BOM = Encoding("utf-8-sig", "UTF-8 with BOM")
UTF16 = Encoding("utf-16", "UTF-16")
UTF16_LE = Encoding("utf-16-le", "UTF-16 (little-endian, no BOM)")
UTF16_BE = Encoding("utf-16-be", "UTF-16 (big-endian, no BOM)")
LATIN1 = Encoding("latin-1", "Latin-1 (guessed)", fallback=True)

_CONTROL = frozenset(range(0, 32)) - {9, 10, 12, 13, 27}


def detect_encoding(head: bytes) -> Encoding | None:
    """The encoding of a file starting with `head`, or None when the bytes are not text at all."""
    if head.startswith(codecs.BOM_UTF8):
        return UTF8_BOM
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return UTF16
    utf16 = _utf16_without_bom(head)
    if utf16 is not None:
        return utf16
    if b"\x00" in head or _control_share(head) > 0.05:
        return None
    if _is_utf8(head):
        return UTF8
    return LATIN1


def _utf16_without_bom(head: bytes) -> Encoding | None:
    """UTF-16 text of mostly ASCII characters has a zero in every other byte."""
    sample = head[:4096]
    if len(sample) < 4:
        return None
    even_zeros = sample[0::2].count(0) / len(sample[0::2])
    odd_zeros = sample[1::2].count(0) / len(sample[1::2])
    if odd_zeros > 0.6 and even_zeros < 0.1:
        return UTF16_LE
    if even_zeros > 0.6 and odd_zeros < 0.1:
        return UTF16_BE
    return None


def _control_share(head: bytes) -> float:
    if not head:
        return 0.0
    return sum(1 for byte in head[:8192] if byte in _CONTROL) / min(len(head), 8192)


def _is_utf8(head: bytes) -> bool:
    """Valid UTF-8, allowing a multi-byte character cut off at the end of the sample."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True
