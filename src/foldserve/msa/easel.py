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
    try:
        with MSAFile(io.BytesIO(data), format=EASEL_FORMATS[fmt]) as reader:
            alignment = reader.read()
    except ValueError as exc:
        raise MsaError(
            f"not valid {fmt}: {str(exc).removeprefix('Could not parse file: ')}",
            source=builder.source,
            fix=f"check the file is {fmt}, or name its format with --format",
        ) from None
    if alignment is None:
        return
    descriptions = alignment.descriptions if hasattr(alignment, "descriptions") else None
    for index, (name, row) in enumerate(zip(alignment.names, alignment.alignment, strict=True)):
        description = descriptions[index] if descriptions else ""
        builder.add(
            RawRow(
                name=_text(name),
                description=_text(description or ""),
                text=row.encode("ascii"),
                line=None,
            )
        )


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
