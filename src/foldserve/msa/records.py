"""Streaming scanner for FASTA-style records (A3M, aligned FASTA, A2M).

Works on large blocks with C-level ``bytes`` operations (split, translate) rather than a Python
loop per line, so a 300,000-row alignment is split into records in well under a second while
only a few megabytes of text are held at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from foldserve.errors import MsaError
from foldserve.msa.builder import RawRow

_WHITESPACE = b" \t\n\x0b\x0c"


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


def _parse_record(chunk: bytes, line: int, source: str, at_end: bool) -> RawRow:
    header, newline, body = chunk.partition(b"\n")
    header_text = header.decode("utf-8", errors="replace").strip()
    if not newline and at_end:
        raise MsaError(
            f"the file ends inside the header of record {header_text[:40]!r}",
            source=source,
            line=line,
            fix="the file looks truncated; download or export it again",
        )
    name, description = [*header_text.split(None, 1), ""][:2] if header_text else ("", "")
    if b"\n;" in b"\n" + body:
        body = b"\n".join(x for x in body.split(b"\n") if not x.startswith(b";"))
    sequence = body.translate(None, _WHITESPACE)
    if sequence.endswith(b"*"):
        sequence = sequence[:-1]
    return RawRow(name=name, description=description.strip(), text=sequence, line=line)


def scan_records(blocks: Iterable[bytes], source: str, *, first_line: int = 1) -> Iterator[RawRow]:
    """Yield one ``RawRow`` per '>' record, with the line number of its header.

    ``first_line`` is the number of the text's first line in the file.
    """
    pending = b""
    line = first_line
    started = False
    for block in blocks:
        pending += block
        if not started:
            if pending.startswith(b">"):
                first = 0
            elif (newline := pending.find(b"\n>")) >= 0:
                first = newline + 1
            else:
                _prelude_lines(pending, source, first_line)
                continue
            _prelude_lines(pending[:first], source, first_line)
            line += pending.count(b"\n", 0, first)
            pending = pending[first + 1 :]
            started = True
        cut = pending.rfind(b"\n>")
        if cut < 0:
            continue
        complete, pending = pending[:cut], pending[cut + 2 :]
        for chunk in complete.split(b"\n>"):
            yield _parse_record(chunk, line, source, at_end=False)
            line += chunk.count(b"\n") + 1
    if not started:
        _prelude_lines(pending, source, first_line)
        return
    yield _parse_record(pending, line, source, at_end=True)
