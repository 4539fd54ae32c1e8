"""Text encoding detection from the first bytes of a file.

People export data from spreadsheets, old Windows tools and scripts, so UTF-8 is not a given. The order
of the checks matters: byte-order marks are certain, UTF-16 without a mark shows as regular zero bytes,
and UTF-8 is tried before any legacy code page. Of those, Windows-1252 comes first: it is what Excel and
Notepad on Western Windows save, and read as Latin-1 its curly quotes, euro signs and dashes would become
invisible control characters. charset-normalizer names the other code pages (Cyrillic, Greek, Japanese ...),
but it is asked only when the bytes do not read as Western text: among Latin code pages its first choice is
not to be trusted (it calls Windows-1252 text Central European, or Urdu on a short sample). Latin-1 is
the last resort, as it decodes anything.
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
CP1252 = Encoding("cp1252", "Windows-1252 (Western)", fallback=True)
LATIN1 = Encoding("latin-1", "Latin-1 (guessed)", fallback=True)
# Western text has a few accented letters among plain ones (French about 4%); Cyrillic, Greek or Japanese
# bytes read as Windows-1252 are nearly all accented letters and symbols.
_WESTERN_ACCENTED_SHARE = 0.4

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
    return _legacy_code_page(head)


def _legacy_code_page(head: bytes) -> Encoding:
    """The 8-bit (or East Asian multi-byte) encoding of text that is not UTF-8."""
    if _reads_as_western(head):
        return CP1252
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    # UTF-16/32 were ruled out above from the zero bytes; a guess of them on a short sample is noise.
    if best is not None and not best.encoding.startswith(("utf", "ascii")):
        return Encoding(best.encoding, f"{best.encoding} (detected)", fallback=True)
    return LATIN1


def _reads_as_western(head: bytes) -> bool:
    """Whether `head` is valid Windows-1252 whose letters are mostly plain ones, as in Western languages."""
    if not _decodes(head, "cp1252"):
        return False
    letters = [char for char in head.decode("cp1252", errors="ignore") if char.isalpha()]
    accented = sum(1 for char in letters if not char.isascii())
    return accented <= _WESTERN_ACCENTED_SHARE * len(letters)


def _decodes(head: bytes, encoding: str) -> bool:
    """Whether `head` is valid in `encoding`, allowing a character cut off at the end of the sample."""
    try:
        codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


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
    return _decodes(head, "utf-8")
