"""A2M and Clustal through pyhmmer's Easel parsers (C code, well kept, used by HMMER).

Easel expands A2M insert states into explicit columns, which is what the query projection
needs when the query itself has inserted residues; for Clustal it handles the conservation
lines and interleaved blocks.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from foldserve.errors import MsaError
from foldserve.msa.builder import MsaBuilder, RawRow

EASEL_FORMATS = {"a2m": "a2m", "clustal": "clustal"}


def read_with_easel(blocks: Iterable[bytes], builder: MsaBuilder, fmt: str) -> None:
    from pyhmmer.easel import MSAFile  # here, not at the top: pyhmmer costs 65 ms to import

    data = b"".join(blocks)
    if fmt == "a2m":
        _refuse_empty_records(data, builder.source)
    try:
        with MSAFile(io.BytesIO(data), format=EASEL_FORMATS[fmt]) as reader:
            alignment = reader.read()
        if alignment is None:
            return
        # Easel decodes names when they are read: a name that is not UTF-8 fails here.
        names = list(alignment.names)
        rows = list(alignment.alignment)
        descriptions = (
            list(alignment.descriptions)
            if hasattr(alignment, "descriptions")
            else [""] * len(names)
        )
    except ValueError as exc:  # UnicodeDecodeError included
        raise MsaError(
            f"not valid {fmt}: {str(exc).removeprefix('Could not parse file: ')}",
            source=builder.source,
            fix=f"check the file is {fmt} text (UTF-8), or name its format with --format",
        ) from None
    for name, row, description in zip(names, rows, descriptions, strict=True):
        builder.add(
            RawRow(
                name=_text(name),
                description=_text(description or ""),
                text=row.encode("ascii"),
                line=None,
            )
        )


def _refuse_empty_records(data: bytes, source: str) -> None:
    """Refuse an A2M record with no sequence line before Easel sees it.

    pyhmmer 0.12's A2M reader crashes the whole process (SIGSEGV) on such a record, and the
    server parses MSAs in its own process; found by tests/test_fuzz_msa.py.
    """
    header: tuple[int, bytes] | None = None  # the record being read: its line and title
    empty: tuple[int, bytes] | None = None
    has_residues = False
    for number, line in enumerate(data.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(b">"):
            if header is not None and not has_residues:
                empty = header
                break
            header, has_residues = (number, stripped[1:]), False
        elif stripped:
            has_residues = True
    else:
        empty = header if header is not None and not has_residues else None
    if empty is None:
        return
    number, title = empty
    name = title.split(maxsplit=1)[0].decode("utf-8", errors="replace") if title.split() else ""
    raise MsaError(
        f"record {name!r} has no sequence",
        source=source,
        line=number,
        fix="give every record its aligned sequence, or delete the empty record",
    )


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
