"""Streaming scanner for FASTA-style records (A3M, aligned FASTA, A2M).

The text arrives in blocks of any size; records are handed on in blocks of whole records of
about ``SCAN_SIZE`` bytes, each taken apart with numpy by
:func:`foldserve.msa.scan_block.parse_block`. They are views of the incoming block where they
can be: only a record cut by the end of a block is copied, joined with its end. A record may
span any number of incoming blocks (a header longer than a block, a sequence of megabytes):
its pieces are only joined once its end has arrived, so it costs one copy, not one a block.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from foldserve.errors import MsaError
from foldserve.msa.scan_block import Bytes, RecordBlock, parse_block

#: Bytes of text parsed at a time: large enough that numpy's fixed cost per call vanishes,
#: small enough that a block's temporaries stay in the cache. The first ``4 * SCAN_SIZE`` bytes
#: go in blocks half as large, so that a small file holds fewer temporaries beside itself.
SCAN_SIZE = 256 << 10

BOUNDARY = b"\n>"


def _prelude_lines(text: bytes, source: str, first_line: int) -> None:
    """Check what comes before the first '>': blank lines, ';' comments, '#' headers only."""
    for number, line in enumerate(text.split(b"\n"), start=first_line):
        stripped = line.strip()
        if stripped and not stripped.startswith((b";", b"#")):
            raise MsaError(
                f"expected a '>' header line, found {stripped[:40].decode(errors='replace')!r}",
                source=source,
                line=number,
                fix="FASTA/A3M records start with '>name'; check that this is an alignment file",
            )


def _first_record(text: bytes) -> int:
    """Where the first record starts ('>' at the start of a line), or -1."""
    if text.startswith(b">"):
        return 0
    found = text.find(BOUNDARY)
    return found + 1 if found >= 0 else -1


def _cut(text: bytes, start: int, size: int) -> int:
    """The end of the whole records of ``text`` from ``start`` (a record's '>') that make at
    least ``size`` bytes, or all of them when fewer; ``start`` when none is complete."""
    boundary = text.find(BOUNDARY, max(start, start + size - 1))
    if boundary < 0:
        boundary = text.rfind(BOUNDARY, start)
    return boundary + 1 if boundary >= 0 else start


def _whole_records(unfinished: list[bytes], block: bytes, size: int) -> Iterator[Bytes]:
    """Texts of whole records, about ``size`` bytes each, from ``unfinished`` (the pieces of a
    record not ended yet) and the next ``block``; what is left unfinished stays there.

    Only the first text is a copy (the unfinished record joined with the start of ``block``);
    the others are views of ``block``.
    """
    data = np.frombuffer(block, dtype=np.uint8)
    if unfinished:
        carried = sum(map(len, unfinished))
        joins = unfinished[-1].endswith(b"\n") and block.startswith(b">")
        ends_at = 0 if joins else block.find(BOUNDARY) + 1
        if not ends_at and not joins:
            unfinished.append(block)
            return
        start = max(ends_at, _cut(block, ends_at, size - carried - ends_at))
        yield np.frombuffer(b"".join([*unfinished, block[:start]]), dtype=np.uint8)
    else:
        start = 0
    while (end := _cut(block, start, size)) > start:
        yield data[start:end]
        start = end
    unfinished[:] = [block[start:]] if start < len(block) else []


def scan_records(
    blocks: Iterable[bytes], source: str, *, first_line: int = 1
) -> Iterator[RecordBlock]:
    """Yield the '>' records of the text in ``blocks``, a block of records at a time, each
    with the line numbers of its headers.

    ``first_line`` is the number of the text's first line in the file.
    """
    line = first_line
    prelude: bytes | None = b""  # the text before the first record, until it is found
    unfinished: list[bytes] = []
    parsed_bytes = 0
    for block in blocks:
        if prelude is not None:
            prelude += block
            first = _first_record(prelude)
            if first < 0:  # check the whole lines so far: junk is refused early
                _prelude_lines(prelude[: prelude.rfind(b"\n") + 1], source, first_line)
                continue
            _prelude_lines(prelude[:first], source, first_line)
            line += prelude.count(b"\n", 0, first)
            block, prelude = prelude[first:], None
        size = SCAN_SIZE if parsed_bytes >= 4 * SCAN_SIZE else SCAN_SIZE // 2
        for text in _whole_records(unfinished, block, size):
            parsed = parse_block(text, first_line=line, source=source, at_end=False)
            line += parsed.newlines
            parsed_bytes += len(text)
            yield parsed.block
    if prelude is not None:
        _prelude_lines(prelude, source, first_line)
        return
    if unfinished:
        text = np.frombuffer(b"".join(unfinished), dtype=np.uint8)
        yield parse_block(text, first_line=line, source=source, at_end=True).block
