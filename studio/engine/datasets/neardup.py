"""Near duplicates: rows nearly the same as an earlier row (a few words changed, a sentence added).

MinHash with LSH banding, vectorized with numpy over batches of rows, so it costs little next to reading
and tokenizing:

- Sides. A conversation is compared as two texts: what the user says and what the assistant answers. The
  system prompt, often the same in every row, is left out. A row is nearly the same as an earlier one when
  both sides are: rows that share a long context or a question template but answer differently are not
  near duplicates, nor is one question answered in two different ways. Plain text is one side.
- Shingles. Each side is normalized (lower case, words only: letters, digits and underscores, as the regex
  `\\w+` finds them) and cut into word 3-grams. Texts of fewer than SHORT_WORDS words are cut into
  5-character pieces instead, so that one changed word does not change every shingle. Hashes are computed
  from the UTF-8 bytes with fixed constants: the same file gives the same report in every process
  (Python's own `hash()` of a str is salted per process).
- Signature. PERMUTATIONS hash functions h(x) = (a*x + b) mod 2^32 (a odd: each is a permutation of the
  32-bit shingle hashes, which are already well mixed); each takes its minimum over a side's shingles.
  32-bit arithmetic halves the memory traffic of 64-bit and estimates Jaccard similarity as well: on 3,000
  test pairs no bias and the ideal spread sqrt(s(1 - s)/128).
- Banding. BANDS bands of ROWS_PER_BAND minima; a band's key covers both sides, and a row is a near
  duplicate when any key equals one of an earlier row. With s the product of the two sides' Jaccard
  similarities (plain text: its own), the chance is 1 - (1 - s^8)^16: 0.1% at s = 0.3, 1% at 0.4, 6% at
  0.5, 24% at 0.6, 61% at 0.7, 95% at 0.8, 99.4% at 0.85 and 99.99% at 0.9. Rows with the same words (the
  old "same words ignoring case and punctuation" check) always match.
- Memory. Only one 64-bit key per band per row is kept, with the line that first had it, in a few sorted
  numpy arrays: at most 16 x 12 bytes per row plus an 8 MB filter, about 47 MB at the MAX_ROWS cap and
  under 70 MB while runs merge. Rows past the cap are not checked; `unchecked` counts them so the report
  can say so. Each side is compared on its first
  MAX_CHARS characters, and a batch is checked at BATCH rows or BATCH_CHARS characters, so the scratch
  arrays stay small whatever the file holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

PERMUTATIONS = 128
BANDS = 16
ROWS_PER_BAND = PERMUTATIONS // BANDS
MAX_ROWS = 200_000
SHORT_WORDS = 8
BATCH = 1024
BATCH_CHARS = 1 << 18  # a batch is checked at 1,024 rows or 256K characters: about 6 MB of scratch
MAX_CHARS = 100_000  # a longer row is compared on its first 100,000 characters
WORD_GRAM = 3
CHAR_GRAM = 5
_CHUNK = 8192  # shingles hashed at once: 128 x 8,192 x 4 bytes = 4 MB of scratch
_FILTER_BITS = 26  # 2^26 bits = 8 MB: the band index's filter of keys already seen
_WORD_BYTES = 64  # a longer word is told apart by its first 64 bytes, its last 8 and its length
_U32 = np.iinfo(np.uint32).max
_NONE = _U32
_SPACE = 0x20
_U64 = (1 << 64) - 1

Found = Callable[[int, int, Any], None]


def _constants(seed: int, count: int) -> np.ndarray:
    """Fixed pseudo-random 64-bit constants (splitmix64): identical in every process and numpy version."""
    values = []
    for _ in range(count):
        seed = (seed + 0x9E3779B97F4A7C15) & _U64
        z = ((seed ^ (seed >> 30)) * 0xBF58476D1CE4E5B9) & _U64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64
        values.append(z ^ (z >> 31))
    return np.array(values, dtype=np.uint64)


# One set of hash functions per side, so that words both sides share do not make their matches coincide.
_A = (_constants(1, 2 * PERMUTATIONS) >> np.uint64(32)).astype(np.uint32).reshape(2, PERMUTATIONS) | np.uint32(1)
_B = (_constants(2, 2 * PERMUTATIONS) >> np.uint64(32)).astype(np.uint32).reshape(2, PERMUTATIONS)
_BAND_MIX = _constants(3, ROWS_PER_BAND) | np.uint64(1)
_GRAM_MIX = _constants(4, WORD_GRAM) | np.uint64(1)
_SIDE_MIX = _constants(5, 1)[0] | np.uint64(1)
_LOW_BYTES = np.array([(1 << (8 * count)) - 1 for count in range(9)], dtype=np.uint64)
_BAND_ID = np.arange(BANDS, dtype=np.uint64)
_WORD_BYTE = np.zeros(256, dtype=bool)
_WORD_BYTE[list(b"0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")] = True
_WORD_BYTE[0x80:] = True  # bytes of non-ASCII characters: letters, except the punctuation cut out below


class NearDuplicates:
    """Buffers rows and checks them a batch at a time; `found(line, earlier_line, value)` reports each hit."""

    def __init__(self, found: Found, max_rows: int | None = None) -> None:
        self.found = found
        self.max_rows = MAX_ROWS if max_rows is None else max_rows
        self.checked = 0
        self.unchecked = 0
        self._index = _BandIndex()
        self._lines: list[int] = []
        self._prompts: list[str] = []
        self._answers: list[str] = []
        self._values: list[Any] = []
        self._chars = 0

    def add(self, line: int, prompt: str, answer: str = "", value: Any = None) -> None:
        """Queue one row: what is asked and what is answered (plain text: all in `prompt`). `value` is
        handed back to `found`."""
        if self.checked >= self.max_rows:
            self.unchecked += 1
            return
        self.checked += 1
        prompt, answer = prompt[:MAX_CHARS], answer[:MAX_CHARS]
        self._lines.append(line)
        self._prompts.append(prompt)
        self._answers.append(answer)
        self._values.append(value)
        self._chars += len(prompt) + len(answer)
        if len(self._lines) >= BATCH or self._chars >= BATCH_CHARS:
            self.flush()

    def flush(self) -> None:
        """Check the queued rows against each other and every earlier row."""
        if not self._lines:
            return
        keys, has_words = _band_keys(self._prompts, self._answers)
        lines = np.array(self._lines, dtype=np.uint32)[has_words]
        values = [value for value, keep in zip(self._values, has_words.tolist(), strict=True) if keep]
        earlier = self._index.match_and_add(keys[has_words], lines)
        for row in np.flatnonzero(earlier != _NONE).tolist():
            self.found(int(lines[row]), int(earlier[row]), values[row])
        for queue in (self._lines, self._prompts, self._answers, self._values):
            queue.clear()
        self._chars = 0


def _band_keys(prompts: Sequence[str], answers: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """One 64-bit key per band per row, covering both sides, and which rows have any words (the others
    have nothing to compare)."""
    (prompt, prompt_words), (answer, answer_words) = _signatures(prompts, 0), _signatures(answers, 1)
    prompt_bands, answer_bands = (
        (signature.reshape(len(prompts), BANDS, ROWS_PER_BAND) * _BAND_MIX).sum(axis=2, dtype=np.uint64)
        for signature in (prompt, answer)
    )
    keys = _mix(_mix(prompt_bands) * _SIDE_MIX + answer_bands)
    return (keys & ~np.uint64(BANDS - 1)) | _BAND_ID, prompt_words | answer_words


def _signatures(texts: Sequence[str], side: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures (one row of PERMUTATIONS minima per text, as uint64 for mixing), and which texts
    have any words. `side` picks the hash functions: 0 for prompts and plain text, 1 for answers."""
    normal, starts = _normalize(texts)
    signature = np.full((PERMUTATIONS, len(texts)), _U32, dtype=np.uint32)
    for shingles, owners in _shingles(normal, starts):
        for begin in range(0, shingles.size, _CHUNK):
            chunk = slice(begin, begin + _CHUNK)
            _lower_into(signature, shingles[chunk], owners[chunk], _A[side], _B[side])
    return signature.T.astype(np.uint64), np.diff(np.append(starts, normal.size)) > 0


def _normalize(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The texts' lower-case words as UTF-8 bytes, each word followed by one space; where each text starts."""
    parts = [text.lower().encode("utf-8", "surrogatepass") for text in texts]
    raw = np.frombuffer(b"\n".join(parts) + b"\n", dtype=np.uint8)
    word = _word_bytes(raw)
    keep = word.copy()
    keep[1:] |= word[:-1]  # the word bytes, and the first byte after each word (becomes the space)
    normal = np.where(word, raw, np.uint8(_SPACE))[keep]
    raw_starts = np.cumsum([0] + [len(part) + 1 for part in parts[:-1]])
    kept_before = np.concatenate(([0], np.cumsum(keep)))
    return normal, kept_before[raw_starts]


def _word_bytes(raw: np.ndarray) -> np.ndarray:
    """Which bytes belong to words. Besides ASCII punctuation, common non-ASCII punctuation separates words
    too: U+00A0-U+00BF (no-break space, guillemets, ...), U+2000-U+206F (dashes, curly quotes, ellipsis),
    U+3000-U+303F (CJK punctuation) and the emoji planes U+1F000-U+1FFFF."""
    word = _WORD_BYTE[raw]
    lead, follow = raw[:-1], raw[1:]
    two = (lead == 0xC2) & (follow >= 0xA0)
    three = ((lead == 0xE2) & ((follow == 0x80) | (follow == 0x81))) | ((lead == 0xE3) & (follow == 0x80))
    four = (lead == 0xF0) & (follow == 0x9F)
    starts = two | three | four
    cut = np.zeros(raw.size, dtype=bool)
    cut[:-1] |= starts
    cut[1:] |= starts
    cut[2:] |= (three | four)[:-1]
    cut[3:] |= four[:-2]
    result: np.ndarray = word & ~cut
    return result


def _shingles(normal: np.ndarray, starts: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """32-bit shingle hashes and the text each belongs to, grouped by text, from three sources: word 3-grams,
    5-character pieces for texts under SHORT_WORDS words, and the words of texts under 5 characters."""
    lengths = np.diff(np.append(starts, normal.size))
    ends = np.flatnonzero(normal == _SPACE)  # every word is followed by exactly one space
    word_starts = np.zeros_like(ends)
    word_starts[1:] = ends[:-1] + 1
    word_owner = np.searchsorted(starts, word_starts, side="right") - 1
    words = np.bincount(word_owner, minlength=len(starts))
    eight = _eight_bytes(normal)
    hashes = _word_hashes(eight, word_starts, ends - word_starts)

    reach = WORD_GRAM - 1
    at = np.flatnonzero((words >= SHORT_WORDS)[word_owner[:-reach]] & (word_owner[:-reach] == word_owner[reach:]))
    combined = hashes[at] * _GRAM_MIX[0]
    for offset in range(1, WORD_GRAM):
        combined += hashes[at + offset] * _GRAM_MIX[offset]
    sources = [(_mix(combined), word_owner[at])]

    short = np.flatnonzero((words < SHORT_WORDS) & (lengths >= CHAR_GRAM))
    pieces = lengths[short] - (CHAR_GRAM - 1)
    first_piece = np.cumsum(pieces) - pieces
    at = np.arange(pieces.sum()) + np.repeat(starts[short] - first_piece, pieces)
    sources.append((_mix(eight[at] & _LOW_BYTES[CHAR_GRAM]), np.repeat(short, pieces)))

    tiny = np.flatnonzero((lengths < CHAR_GRAM)[word_owner])
    sources.append((hashes[tiny], word_owner[tiny]))
    return [((values >> np.uint64(32)).astype(np.uint32), owners) for values, owners in sources]


def _eight_bytes(normal: np.ndarray) -> np.ndarray:
    """The 8 bytes from each position on, read as one little-endian integer (zeros past the end)."""
    padded = np.zeros(normal.size + 8, dtype=np.uint8)
    padded[: normal.size] = normal
    return np.ndarray((normal.size + 1,), dtype="<u8", buffer=padded, strides=(1,))


def _word_hashes(eight: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each word from its first _WORD_BYTES bytes, 8 at a time, and for longer words their
    length and last 8 bytes. Words of up to 8 bytes (most) never collide before the final mixing."""
    hashes = eight[starts] & _LOW_BYTES[np.minimum(lengths, 8)]
    for offset in range(8, _WORD_BYTES + 8, 8):
        longer = np.flatnonzero(lengths > offset)
        if not longer.size:
            break
        if offset < _WORD_BYTES:
            more = eight[starts[longer] + offset] & _LOW_BYTES[np.minimum(lengths[longer] - offset, 8)]
        else:
            more = eight[starts[longer] + lengths[longer] - 8] ^ lengths[longer].astype(np.uint64)
        hashes[longer] = hashes[longer] * _GRAM_MIX[0] + more
    return _mix(hashes)


def _lower_into(signature: np.ndarray, shingles: np.ndarray, owners: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Lower each text's minima to those over these shingles (grouped by text). One row per hash function,
    so each minimum is taken over contiguous memory."""
    if not shingles.size:
        return
    hashed = np.multiply.outer(a, shingles)
    hashed += b[:, None]
    groups = np.flatnonzero(np.concatenate(([True], owners[1:] != owners[:-1])))
    rows = owners[groups]
    signature[:, rows] = np.minimum(signature[:, rows], np.minimum.reduceat(hashed, groups, axis=1))


def _mix(values: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finalizer: every input bit affects every output bit."""
    values = values ^ (values >> np.uint64(33))
    values *= np.uint64(0xFF51AFD7ED558CCD)
    values ^= values >> np.uint64(33)
    values *= np.uint64(0xC4CEB9FE1A85EC53)
    values ^= values >> np.uint64(33)
    return values


class _BandIndex:
    """Every band key seen so far and the first line that had it, as a few sorted runs (a log-structured set).

    A batch's new keys become a run; runs are merged while the newer one is at least half the size of the
    one before, so there are about log2(rows / batch) of them and each key is copied that often. A bit
    per key in an 8 MB filter spares the search for most keys never seen: at the MAX_ROWS cap (3.2 million
    keys) about 5% of new keys still need it.
    """

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []
        self._filter = np.zeros(1 << (_FILTER_BITS - 3), dtype=np.uint8)

    def match_and_add(self, keys: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """For each row (rows in file order), the earliest line sharing a band key with it, or _NONE; then
        remember the keys not seen before."""
        flat = keys.ravel()
        order = np.argsort(flat, kind="stable")  # within a key, rows stay in file order
        sorted_keys, owner = flat[order], order // keys.shape[1]
        earliest = np.full(len(lines), _NONE, dtype=np.uint32)
        known = np.zeros(flat.size, dtype=bool)
        byte, bit = self._slots(sorted_keys)
        maybe = np.flatnonzero((self._filter[byte] >> bit) & 1)
        candidates = sorted_keys[maybe]
        for run_keys, run_lines in self._runs:
            at = np.minimum(np.searchsorted(run_keys, candidates), run_keys.size - 1)
            hit = run_keys[at] == candidates
            known[maybe[hit]] = True
            np.minimum.at(earliest, owner[maybe[hit]], run_lines[at[hit]])
        first = np.ones(flat.size, dtype=bool)
        first[1:] = sorted_keys[1:] != sorted_keys[:-1]
        first_owner = owner[first][np.cumsum(first) - 1]  # the batch's earliest row with each key
        later = ~first
        np.minimum.at(earliest, owner[later], lines[first_owner[later]])
        new = np.flatnonzero(first & ~known)
        if new.size:
            np.bitwise_or.at(self._filter, byte[new], np.left_shift(1, bit[new], dtype=np.uint8))
            self._push(sorted_keys[new], lines[owner[new]])
        return earliest

    @staticmethod
    def _slots(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each key's bit is in the filter: byte and bit, from the key's top bits."""
        slot = keys >> np.uint64(64 - _FILTER_BITS)
        return (slot >> np.uint64(3)).astype(np.intp), (slot & np.uint64(7)).astype(np.uint8)

    def _push(self, keys: np.ndarray, lines: np.ndarray) -> None:
        self._runs.append((keys, lines))
        while len(self._runs) > 1 and self._runs[-2][0].size <= 2 * self._runs[-1][0].size:
            newer = self._runs.pop()
            self._runs.append(_merge(self._runs.pop(), newer))


def _merge(older: tuple[np.ndarray, np.ndarray], newer: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted runs (keys, lines) with no key in common as one, in linear time and without a sort's
    scratch arrays."""
    (keys_a, lines_a), (keys_b, lines_b) = older, newer
    at_b = np.searchsorted(keys_a, keys_b) + np.arange(keys_b.size)  # where the newer keys go
    from_a = np.ones(keys_a.size + keys_b.size, dtype=bool)
    from_a[at_b] = False
    keys = np.empty(from_a.size, dtype=keys_a.dtype)
    lines = np.empty(from_a.size, dtype=lines_a.dtype)
    keys[at_b], lines[at_b] = keys_b, lines_b
    keys[from_a], lines[from_a] = keys_a, lines_a
    return keys, lines
