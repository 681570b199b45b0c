"""Writing an ``Msa`` back out: A3M, aligned FASTA and Stockholm.

An ``Msa`` keeps its inserted residues, so nothing is lost: A3M gets them back as lower-case
letters; the aligned formats get insert columns (lower-case residues, '.' padding), the way
hmmalign lays out insert states, unless ``keep_insertions=False`` asks for query columns only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

import numpy as np

from foldserve.msa.alphabet import DOT
from foldserve.msa.model import Msa

CHUNK_ROWS = 4096


def a3m_row(msa: Msa, index: int) -> str:
    """Row ``index`` in A3M: query columns plus lower-case insertions before them."""
    text = msa.row(index)
    inserted = msa.insertions[index]
    if not inserted:
        return text
    counts = msa.deletions[index]
    pieces: list[str] = []
    previous = 0
    used = 0
    for column in np.flatnonzero(counts).tolist():
        count = int(counts[column])
        pieces.append(text[previous:column])
        pieces.append(inserted[used : used + count].decode("ascii"))
        previous, used = column, used + count
    pieces.append(text[previous:])
    return "".join(pieces)


def aligned_rows(msa: Msa, *, keep_insertions: bool = True) -> Iterator[str]:
    """Every row at one common width, insert columns laid out when ``keep_insertions``."""
    if not keep_insertions or not any(msa.insertions):
        yield from msa.rows()
        return
    widths = msa.deletions.max(axis=0).astype(np.int64)
    column_at = np.arange(msa.query_length) + np.cumsum(widths)
    insert_at = column_at - widths
    template = np.full(int(msa.query_length + widths.sum()), DOT, dtype=np.uint8)
    for start in range(0, len(msa), CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, len(msa))
        out = np.tile(template, (stop - start, 1))
        out[:, column_at] = msa.residues[start:stop]
        counts = msa.deletions[start:stop].astype(np.int64)
        rows, columns = np.nonzero(counts)
        per_cell = counts[rows, columns]
        offsets = np.arange(per_cell.sum()) - np.repeat(np.cumsum(per_cell) - per_cell, per_cell)
        out[np.repeat(rows, per_cell), np.repeat(insert_at[columns], per_cell) + offsets] = (
            np.frombuffer(b"".join(msa.insertions[start:stop]), dtype=np.uint8)
        )
        for row in out:
            yield row.tobytes().decode("ascii")


def _header(name: str, description: str) -> str:
    return f">{name} {description}\n" if description else f">{name}\n"


def write_a3m(msa: Msa, out: TextIO) -> None:
    for index, (name, description) in enumerate(zip(msa.names, msa.descriptions)):
        out.write(_header(name, description))
        out.write(a3m_row(msa, index))
        out.write("\n")


def write_fasta(msa: Msa, out: TextIO, *, keep_insertions: bool = True) -> None:
    rows = aligned_rows(msa, keep_insertions=keep_insertions)
    for name, description, row in zip(msa.names, msa.descriptions, rows):
        out.write(_header(name, description))
        out.write(row)
        out.write("\n")
