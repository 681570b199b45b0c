"""One block of FASTA-style records (A3M, aligned FASTA, A2M) taken apart with numpy.

The positions of the newlines say where every line starts, and the byte there what the line is:
'>' a header, ';' a comment, anything else sequence. The header texts are gathered with one
index array and split into names with one ``split``; the header and comment lines are then
overwritten with newlines in a copy of the block, and one ``bytes.translate`` deletes every
newline, leaving the sequences one after another. The same call maps any byte that is no
letter, '-' or '.' onto a newline, so a block without such bytes (nearly every block) is known
to be valid without another pass. No Python code runs per record or per line.

The result is what the old record-at-a-time scanner gave: a record's sequence is its lines
after the header, without whitespace and ';' lines, and without one final '*'.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from foldserve.errors import MsaError
from foldserve.msa.alphabet import LOWER_AND_DOT, UPPER_AND_GAP
from foldserve.msa.builder import RawRow
from foldserve.msa.scan_headers import split_headers

NEWLINE = ord("\n")
HEADER = ord(">")
COMMENT = ord(";")
STOP = ord("*")
LAST_UPPER = ord("Z")
#: Whitespace that may sit inside a sequence line (newlines end lines; CR is gone already).
INLINE_SPACE = b" \t\x0b\x0c"
_INLINE_SPACE_CODES = np.frombuffer(INLINE_SPACE, dtype=np.uint8)
#: ``bytes.translate`` table: letters, '-' and '.' stay, every other byte becomes a newline.
_LETTERS_OR_NEWLINE = bytes(
    c if c in UPPER_AND_GAP + LOWER_AND_DOT else NEWLINE for c in range(256)
)

Index = npt.NDArray[np.int64]
Bytes = npt.NDArray[np.uint8]
#: What the sequences of a block hold: upper case and '-' only; letters, '-' and '.' (lower
#: case and '.' to re-letter or skip); or other bytes as well (the builder's checks say which).
Charset = Literal["upper", "letters", "other"]


@dataclass(frozen=True)
class RecordBlock:
    """Consecutive records: ``sequences`` holds their sequences one after another (as ASCII
    codes), ``lengths[i]`` for record ``i``, whose header is on line ``lines[i]`` of the file."""

    names: list[str]
    descriptions: list[str]
    lines: Index
    sequences: Bytes
    lengths: Index
    charset: Charset

    def __len__(self) -> int:
        return len(self.names)

    def tail(self, start: int) -> RecordBlock:
        """The records from ``start`` on (``charset`` still describes them all)."""
        skipped = int(self.lengths[:start].sum())
        return RecordBlock(
            names=self.names[start:],
            descriptions=self.descriptions[start:],
            lines=self.lines[start:],
            sequences=self.sequences[skipped:],
            lengths=self.lengths[start:],
            charset=self.charset,
        )

    def rows(self) -> Iterator[RawRow]:
        """The records one at a time, as the builder's row-by-row path takes them."""
        end = np.cumsum(self.lengths).tolist()
        start = [0, *end[:-1]]
        for name, description, line, a, b in zip(
            self.names, self.descriptions, self.lines.tolist(), start, end, strict=True
        ):
            text = self.sequences[a:b].tobytes()
            yield RawRow(name=name, description=description, text=text, line=line)


class ParsedText(NamedTuple):
    block: RecordBlock
    newlines: int  # in the text, for the line numbers of the text that follows


def parse_block(data: Bytes, *, first_line: int, source: str, at_end: bool) -> ParsedText:
    """The records of the text ``data``, which starts with '>' and holds whole records only.

    ``first_line`` is the file's line number of the text's first line. ``at_end``: the text
    ends the file, so its last line may lack a newline (but not when it is a header).
    """
    newlines = np.flatnonzero(data == NEWLINE)
    # Line k + 1 starts after newline k: its first byte says what the line is.
    starting = data[np.minimum(newlines + 1, len(data) - 1)]
    after = np.flatnonzero(starting == HEADER)
    records = len(after) + 1
    # Each record's header line and where it starts, and after the last record the line and
    # byte where the next would (so that a record's extent is a difference of neighbours).
    header_lines = np.empty(records + 1, dtype=np.int64)
    header_lines[0], header_lines[records] = 0, len(newlines)
    np.add(after, 1, out=header_lines[1:records])
    header_at = np.empty(records + 1, dtype=np.int64)
    header_at[0], header_at[records] = 0, len(data)
    np.add(newlines[after], 1, out=header_at[1:records])
    if at_end and header_lines[records - 1] == len(newlines):
        line = first_line + int(header_lines[records - 1])
        _raise_truncated(data[header_at[records - 1] + 1 :].tobytes(), source, line)
    header_ends = newlines[header_lines[:records]]
    # A record's sequence: the bytes after its header line, less the newlines among them.
    per_record = (header_at[1:] - header_lines[1:]) - (header_ends - header_lines[:records])
    header_at, header_lines = header_at[:records], header_lines[:records]
    in_headers = _ranges(header_at + 1, header_ends - header_at)  # the texts, newlines ending
    names, descriptions = split_headers(data[in_headers].tobytes())

    blanked = bytearray(data)
    blanked_view = np.frombuffer(blanked, dtype=np.uint8)
    blanked_view[np.subtract(in_headers, 1, out=in_headers)] = NEWLINE  # each '>' and text
    comments = np.flatnonzero(starting == COMMENT)
    if len(comments):
        per_record = _blank_comments(blanked_view, newlines, comments, header_lines, per_record)
    kept = blanked.translate(_LETTERS_OR_NEWLINE, b"\n")
    charset: Charset
    if b"\n" in kept:  # a byte that is no letter, '-' or '.': look closer
        sequences, per_record = _exact_sequences(blanked, header_at, per_record)
        charset = _charset(sequences)
    else:
        sequences = np.frombuffer(kept, dtype=np.uint8)
        plain = not len(sequences) or (sequences.max() <= LAST_UPPER and b"." not in kept)
        charset = "upper" if plain else "letters"

    block = RecordBlock(
        names=names,
        descriptions=descriptions,
        lines=header_lines + first_line,
        sequences=sequences,
        lengths=per_record,
        charset=charset,
    )
    return ParsedText(block, len(newlines))


def _blank_comments(
    blanked: Bytes, newlines: Index, after: Index, header_lines: Index, lengths: Index
) -> Index:
    """Overwrite the ';' lines that start after the given newlines; the records' lengths
    without them."""
    lines = after + 1
    starts = newlines[after] + 1
    ends = np.append(newlines, len(blanked))[lines]
    blanked[_ranges(starts, ends - starts)] = NEWLINE
    record = np.searchsorted(header_lines, lines, side="right") - 1
    removed = np.bincount(record, weights=ends - starts, minlength=len(lengths))
    return lengths - removed.astype(np.int64)


def _ranges(starts: Index, lengths: Index) -> Index:
    """Concatenated ``range(start, start + length)`` for every pair, without a Python loop."""
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))


def _exact_sequences(
    blanked: bytearray, record_starts: Index, lengths: Index
) -> tuple[Bytes, Index]:
    """Sequences and lengths when the sequence lines hold more than letters, '-' and '.':
    spaces and tabs are removed, as is one '*' at the end of a record; any other byte stays
    for the builder to report."""
    sequences = blanked.translate(None, b"\n")
    if any(space in sequences for space in INLINE_SPACE):
        is_space = np.isin(np.frombuffer(blanked, dtype=np.uint8), _INLINE_SPACE_CODES)
        spaces = np.flatnonzero(is_space)
        lengths = lengths - np.diff(np.searchsorted(spaces, record_starts), append=len(spaces))
        sequences = sequences.translate(None, INLINE_SPACE)
    return _drop_final_stops(np.frombuffer(sequences, dtype=np.uint8), lengths)


def _charset(sequences: Bytes) -> Charset:
    others = sequences.tobytes().translate(None, UPPER_AND_GAP)
    if not others:
        return "upper"
    return "other" if others.translate(None, LOWER_AND_DOT) else "letters"


def _drop_final_stops(sequences: Bytes, lengths: Index) -> tuple[Bytes, Index]:
    """Remove one '*' that ends a record's sequence (a translated stop codon)."""
    last = np.cumsum(lengths) - 1
    stops = (lengths > 0) & (sequences[np.maximum(last, 0)] == STOP)
    if not stops.any():
        return sequences, lengths
    keep = np.ones(len(sequences), dtype=np.bool_)
    keep[last[stops]] = False
    return sequences[keep], lengths - stops


def _raise_truncated(header: bytes, source: str, line: int) -> None:
    text = header.decode("utf-8", errors="replace").strip()
    raise MsaError(
        f"the file ends inside the header of record {text[:40]!r}",
        source=source,
        line=line,
        fix="the file looks truncated; download or export it again",
    )
