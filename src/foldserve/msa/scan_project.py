"""A whole block of rows projected onto the query in a few numpy and ``bytes`` steps.

The same projection as :class:`foldserve.msa.builder.MsaBuilder` does a chunk at a time (see
there for the two column rules), for a block that is known to be well formed; anything else
(an invalid character, a row of the wrong width) gives None, and the caller hands the rows to
the builder one by one, whose checks say what is wrong.

What makes it fast: the scanner has classified the block's characters already; an aligned
block is one ``(rows, width)`` view of the bytes; the inserted residues of every row come out
of one ``translate`` + ``split``, each row ended by a newline; deletion counts come from where
the separators fall among those residues (aligned) or from the distances between kept columns
(A3M), not from cumulative sums over every byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from foldserve.msa.alphabet import (
    DOT,
    GAP,
    TO_CANONICAL_BYTES,
    TO_LOWER,
    TO_LOWER_BYTES,
    UPPER_AND_GAP,
)
from foldserve.msa.builder import ColumnRule, Projected
from foldserve.msa.model import MAX_DELETION
from foldserve.msa.scan_block import Bytes, Charset, Index

NEWLINE = ord("\n")
TAB = ord("\t")  # with NEWLINE, the only bytes below the letters among inserted residues
LAST_UPPER = ord("Z")
#: Bytes that are no residue; ``translate`` deletes them from the inserted residues.
NOT_RESIDUES = b"-."
COLUMNS_AND_DOTS = UPPER_AND_GAP + b"."

Bytes2D = npt.NDArray[np.uint8]  # rows by columns
Cell = TypeVar("Cell", bound=np.generic)


@dataclass(frozen=True)
class QueryColumns:
    """The query's columns, as every block is projected onto them: worked out once a file.

    ``width`` is the row width (aligned) or the number of columns (A3M); ``kept`` the columns
    the query has a residue in; ``runs`` every run of dropped columns before a kept one,
    ``(target, start, stop)`` when columns ``start`` to ``stop - 1`` are dropped and ``stop``
    is kept column number ``target``.
    """

    width: int
    kept: Index
    runs: tuple[tuple[int, int, int], ...]

    @classmethod
    def of(cls, width: int, keep: npt.NDArray[np.bool_]) -> QueryColumns:
        kept = np.flatnonzero(keep)
        start = np.concatenate(([0], kept[:-1] + 1))
        targets = np.flatnonzero(kept > start)
        runs = zip(targets.tolist(), start[targets].tolist(), kept[targets].tolist(), strict=True)
        return cls(width=width, kept=kept, runs=tuple(runs))


def project_block(
    sequences: Bytes,
    lengths: Index,
    *,
    charset: Charset,
    rule: ColumnRule,
    query: QueryColumns,
) -> Projected | None:
    """Residues, deletion counts and insertions of the rows in ``sequences`` (``lengths[i]``
    ASCII codes for row ``i``), or None when a row is malformed.

    ``charset`` says what the rows hold; ``query`` is the columns the builder found.
    """
    if charset == "other":
        return None  # invalid characters
    if charset == "upper" or rule == "aligned":
        # Rows of upper case and '-' only read the same under both rules: one column a byte.
        if not (lengths == query.width).all():
            return None
        columns = sequences.reshape(len(lengths), query.width)
        return project_columns(columns, query, canonical=charset != "upper")
    return project_a3m(sequences, lengths, query)


def project_columns(columns: Bytes2D, query: QueryColumns, *, canonical: bool) -> Projected:
    """Project aligned rows (letters, '-' and '.') onto the query's kept columns.

    Residues in dropped columns are inserted before the next kept column; residues after the
    last kept column are dropped. ``canonical``: the rows may hold lower case or '.', which
    kept columns show as upper case and '-'.
    """
    runs = query.runs
    residues = _select(columns, query.kept)
    if canonical:
        converted = residues.tobytes().translate(TO_CANONICAL_BYTES)
        residues = np.frombuffer(converted, dtype=np.uint8).reshape(residues.shape)
    if not runs:
        return residues, None, [b""] * len(columns)
    # The dropped columns side by side, a tab after each run and a newline after the last:
    # once the gaps are deleted, a row's inserted residues lie between its separators.
    framed = np.empty((len(columns), sum(stop - start + 1 for _, start, stop in runs)), np.uint8)
    offset = 0
    for _, start, stop in runs:
        framed[:, offset : offset + stop - start] = columns[:, start:stop]
        offset += stop - start + 1
        framed[:, offset - 1] = TAB
    framed[:, -1] = NEWLINE
    inserted = framed.tobytes().translate(TO_LOWER_BYTES, NOT_RESIDUES)
    if len(inserted) == framed.shape[0] * len(runs):
        return residues, None, [b""] * len(columns)  # separators only
    separators = np.flatnonzero(np.frombuffer(inserted, dtype=np.uint8) <= NEWLINE)
    counts = np.diff(separators, prepend=-1).reshape(len(columns), len(runs)) - 1
    deletions = np.zeros(residues.shape, dtype=np.uint16)
    deletions[:, [target for target, _, _ in runs]] = _capped(counts)
    if len(runs) > 1:
        inserted = inserted.translate(None, b"\t")
    return residues, deletions, inserted.split(b"\n")[:-1]


def project_a3m(data: Bytes, lengths: Index, query: QueryColumns) -> Projected | None:
    """Project A3M rows (letters, '-' and '.'; lower case is inserted) onto the query's kept
    columns; None when a row does not have the query's number of columns.

    Columns the query has a gap in are inserted as well: their residues count, and are kept
    (in lower case), with the inserted residues before the next kept column.
    """
    starts = np.cumsum(lengths) - lengths
    column_at = np.flatnonzero((data <= LAST_UPPER) & (data != DOT))  # upper case and '-'
    per_row = np.diff(np.searchsorted(column_at, starts), append=len(column_at))
    if (per_row != query.width).any():
        return None
    positions = column_at.reshape(len(lengths), query.width)
    at = _select(positions, query.kept)
    last = at[:, -1]

    # Bytes between a kept column and the one before it (the row start, for the first):
    # lower case, '.', and dropped columns. All but the '.' and the dropped gaps are residues.
    counts = np.empty_like(at)
    np.subtract(at[:, 1:], at[:, :-1], out=counts[:, 1:])
    counts[:, 0] = at[:, 0] - starts + 1
    counts -= 1
    dots = np.flatnonzero(data == DOT)
    if len(dots):
        dots_before = np.searchsorted(dots, at)
        counts -= np.diff(dots_before, axis=1, prepend=np.searchsorted(dots, starts)[:, None])
    runs = query.runs
    for target, start, stop in runs:
        counts[:, target] -= np.count_nonzero(data[positions[:, start:stop]] == GAP, axis=1)
    residues = data[at]
    if not counts.any():
        return residues, None, [b""] * len(lengths)

    # What is left of a row once its columns, gaps and dots are deleted is its inserted
    # residues: residues of dropped columns in lower case first, a newline on the last kept
    # column to end the row, and nothing of what follows that column.
    marked = data.copy()
    for _, start, stop in runs:
        dropped = positions[:, start:stop]
        marked[dropped] = TO_LOWER[marked[dropped]]
    marked[last] = NEWLINE
    tails = starts + lengths - last - 1
    if tails.any():
        marked = marked[_runs_mask(np.stack([last + 1 - starts, tails], axis=1).ravel())]
    insertions = marked.tobytes().translate(None, COLUMNS_AND_DOTS).split(b"\n")
    if lengths.max() > MAX_DELETION:
        np.minimum(counts, MAX_DELETION, out=counts)
    return residues, counts.astype(np.uint16), insertions[: len(lengths)]


def _select(columns: npt.NDArray[Cell], index: Index) -> npt.NDArray[Cell]:
    """``columns[:, index]``; a view when the columns are consecutive (no copy, no gather)."""
    if index[-1] - index[0] + 1 == len(index):
        return columns[:, index[0] : index[-1] + 1]
    return columns[:, index]


def _capped(counts: Index) -> npt.NDArray[np.uint16]:
    return np.minimum(counts, MAX_DELETION).astype(np.uint16)


def _runs_mask(runs: Index) -> npt.NDArray[np.bool_]:
    """True for the first of every two runs of the given lengths, False for the second."""
    return np.repeat(np.resize(np.array([True, False]), len(runs)), runs)
