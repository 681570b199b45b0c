"""Turning raw alignment rows into an ``Msa``, a chunk of rows at a time.

Readers hand over rows as bytes; the builder validates them and projects them onto the query
with numpy, a few thousand rows per step, so memory stays near the size of the result and no
Python loop runs per character. Two column rules exist:

* ``aligned`` (Stockholm, aligned FASTA, Clustal, expanded A2M): every row has the same width;
  columns where the query has a gap ('-' or '.') become insertions.
* ``a3m``: upper-case letters and '-' are columns, lower-case letters are insertions before the
  next column, '.' is padding. Columns where the query has '-' become insertions as well.

Both end in AlphaFold's representation: one upper-case residue or '-' per query residue plus a
deletion count (see :class:`foldserve.msa.model.Msa`).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from foldserve.errors import MsaError, TooLarge
from foldserve.msa.alphabet import (
    DOT,
    GAP,
    IS_GAP,
    IS_LOWER,
    IS_NUCLEOTIDE,
    IS_RESIDUE,
    IS_UPPER_OR_GAP,
    IS_VALID,
    TO_CANONICAL,
    TO_LOWER,
)
from foldserve.msa.colabfold import ColabFoldHeader
from foldserve.msa.model import MAX_DELETION, Msa

ColumnRule = Literal["aligned", "a3m"]

CHUNK_ROWS = 2048

#: Running counts of a bool array: numpy sums bool (or int8) into int64 through a slow
#: buffered cast, about 5x slower than into int32, which holds any count of a chunk's bytes.
CUMSUM_DTYPE = np.int32

#: Rows HH-suite adds to its alignments that are annotations, not sequences.
ANNOTATION_ROWS = frozenset({"ss_pred", "ss_conf", "ss_dssp", "sa_dssp", "Consensus"})

UNALIGNED_FIX = (
    "align the sequences first (hmmalign, mafft, clustalo or jackhmmer -A) "
    "and give the aligned file"
)


@dataclass(frozen=True)
class MsaLimits:
    """The most an MSA may hold: reading stops as soon as it is past either."""

    max_rows: int
    max_query_length: int


class RawRow(NamedTuple):
    """One row as a reader found it (a tuple: one is made per row of a 300,000-row file)."""

    name: str
    description: str
    text: bytes
    line: int | None


#: Residues, deletion counts (None: all zero) and inserted residues of a chunk of rows.
Projected = tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint16] | None, list[bytes]]


class RowStore:
    """Growable ``(rows, length)`` arrays for the result.

    Sized from the file's size when it is known, so a plain file never re-grows (no second
    copy at the end). Rows past the end and deletion pages of chunks without insertions are
    never written, so they cost address space, not memory (the deletion counts are
    :func:`untouched_zeros`).
    """

    def __init__(self, length: int, capacity: int) -> None:
        self.residues = np.empty((max(capacity, 1), length), dtype=np.uint8)
        self.deletions: npt.NDArray[np.uint16] | None = None
        self.count = 0

    def append(
        self, residues: npt.NDArray[np.uint8], deletions: npt.NDArray[np.uint16] | None
    ) -> None:
        end = self.count + len(residues)
        if end > len(self.residues):
            self._grow(max(2 * len(self.residues), end))
        self.residues[self.count : end] = residues
        if deletions is not None:
            if self.deletions is None:
                self.deletions = untouched_zeros(self.residues.shape)
            self.deletions[self.count : end] = deletions
        self.count = end

    def arrays(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint16]]:
        residues = self.residues[: self.count]
        if self.deletions is None:
            return residues, untouched_zeros(residues.shape)
        return residues, self.deletions[: self.count]

    def _grow(self, capacity: int) -> None:
        residues = np.empty((capacity, self.residues.shape[1]), dtype=np.uint8)
        residues[: self.count] = self.residues[: self.count]
        self.residues = residues
        if self.deletions is not None:
            deletions = untouched_zeros(residues.shape)
            deletions[: self.count] = self.deletions[: self.count]
            self.deletions = deletions


def untouched_zeros(shape: tuple[int, int]) -> npt.NDArray[np.uint16]:
    """Zero deletion counts in fresh anonymous memory, which the kernel zeroes a page at a time
    when it is first used. ``np.zeros`` gets its memory from the C allocator, which after a
    large free hands out heap memory and zeroes all of it at once: 1.8 MiB of writes (415
    page faults) for PF13354's 1 MiB file, whose deletion counts are all zero."""
    size = max(1, shape[0] * shape[1]) * np.dtype(np.uint16).itemsize
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(memory, dtype=np.uint16, count=shape[0] * shape[1]).reshape(shape)


def split_rows(values: npt.NDArray[np.uint8], counts: npt.NDArray[np.int64]) -> list[bytes]:
    """Cut a flat byte array into consecutive pieces of the given lengths."""
    ends = np.cumsum(counts)
    data = values.tobytes()
    return [
        data[end - count : end] for end, count in zip(ends.tolist(), counts.tolist(), strict=True)
    ]


def project_onto_query(columns: npt.NDArray[np.uint8], keep: npt.NDArray[np.bool_]) -> Projected:
    """Drop the columns not in ``keep`` (query gaps); their residues become insertions.

    The count lands on the next kept column; residues after the last kept column are dropped,
    exactly as AlphaFold's Stockholm parser and ``convert_stockholm_to_a3m`` do.
    """
    kept = np.flatnonzero(keep)
    inserted = IS_RESIDUE[columns] & ~keep
    inserted[:, kept[-1] :] = False
    running = np.cumsum(inserted, axis=1, dtype=CUMSUM_DTYPE)[:, kept]
    counts = np.diff(running, axis=1, prepend=0)
    np.minimum(counts, MAX_DELETION, out=counts)
    insertions = split_rows(TO_LOWER[columns[inserted]], inserted.sum(axis=1))
    return TO_CANONICAL[columns[:, kept]], counts.astype(np.uint16), insertions


class MsaBuilder:
    """Collects rows from a reader and builds the ``Msa`` at the end."""

    def __init__(
        self,
        *,
        source: str,
        format: str,
        rule: ColumnRule,
        query: str | None = None,
        size_hint: int | None = None,
        limits: MsaLimits | None = None,
        first_line: int | None = None,
    ) -> None:
        """``size_hint``: bytes of text to come, when known; bounds the number of rows.

        ``first_line``: the line this alignment starts on, for a file that holds several;
        errors that have no line of their own name it.
        """
        self.source = source
        self.format = format
        self.rule = rule
        self.wanted_query = query
        self.limits = limits
        self.first_line = first_line
        #: ColabFold's first line, when the reader found one: checked against the query.
        self.header: ColabFoldHeader | None = None
        self._rows = 0
        self.warnings: list[str] = []
        self._pending: list[RawRow] = []
        self._query: RawRow | None = None
        self._width = 0
        self._keep: npt.NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self._names: list[str] = []
        self._descriptions: list[str] = []
        self._size_hint = size_hint
        self._store: RowStore | None = None
        self._insertions: list[bytes] = []
        self._skipped_annotations: dict[str, int] = {}

    # -- feeding -------------------------------------------------------------------------------
    def add(self, row: RawRow) -> None:
        if row.name in ANNOTATION_ROWS:
            self._skipped_annotations[row.name] = self._skipped_annotations.get(row.name, 0) + 1
            return
        if not row.text:
            raise MsaError(
                f"record {row.name!r} has no sequence",
                source=self.source,
                line=row.line,
                fix="the file looks truncated or damaged; remove the empty record or re-export it",
            )
        self._rows += 1
        if self.limits is not None and self._rows > self.limits.max_rows:
            raise TooLarge(
                f"holds more than {self.limits.max_rows:,} rows",
                where=self._where,
                fix="keep the rows the model can use: "
                "`foldserve msa filter --max-seqs 5632` (it reads at most 5,632)",
            )
        if self._query is None:
            if self.wanted_query is None or row.name == self.wanted_query:
                self._set_query(row)
                self._pending.insert(0, row)
            else:
                self._pending.append(row)
                return
        else:
            self._pending.append(row)
        if len(self._pending) >= CHUNK_ROWS:
            self._flush()

    def finish(self) -> Msa:
        if self._query is None:
            if self.wanted_query is not None and self._pending:
                raise MsaError(
                    f"no sequence named {self.wanted_query!r}",
                    source=self.source,
                    line=self.first_line,
                    fix=f"give one of the names in the file, e.g. {self._pending[0].name!r}",
                )
            raise MsaError(
                "the file holds no sequences"
                if self.first_line is None
                else "the alignment holds no sequences",
                source=self.source,
                line=self.first_line,
                fix="give an MSA whose first record is the query sequence",
            )
        self._flush()
        if self._skipped_annotations:
            listed = ", ".join(f"{n} ({c})" for n, c in sorted(self._skipped_annotations.items()))
            self.warnings.append(
                f"skipped HH-suite annotation rows that are not sequences: {listed}"
            )
        assert self._store is not None  # set with the query
        residues, deletions = self._store.arrays()
        if self.header is not None:
            self.header.check(residues.shape[1], self.source)
        return Msa(
            names=tuple(self._names),
            descriptions=tuple(self._descriptions),
            residues=residues,
            deletions=deletions,
            insertions=tuple(self._insertions),
            format=self.format,
            source=self.source,
            warnings=tuple(self.warnings),
            complex=self.header.complex if self.header is not None else None,
        )

    @property
    def _where(self) -> str:
        return self.source if self.first_line is None else f"{self.source}:{self.first_line}"

    # -- the query ------------------------------------------------------------------------------
    def _set_query(self, row: RawRow) -> None:
        text = np.frombuffer(row.text, dtype=np.uint8)
        self._check_block([row], text)
        if self.rule == "aligned":
            self._width = len(text)
            self._keep = ~IS_GAP[text]
        else:
            lower = int(IS_LOWER[text].sum())
            if lower:
                raise MsaError(
                    f"the query {row.name!r} has {lower} lower-case (inserted) residues; "
                    "in A3M the query cannot have insertions",
                    source=self.source,
                    line=row.line,
                    fix="if the file is A2M, read it with --format a2m; otherwise choose "
                    "the file's first sequence as the query",
                )
            columns = text[IS_UPPER_OR_GAP[text]]
            self._width = len(columns)
            self._keep = columns != GAP
        residues = text[IS_RESIDUE[text]]
        if len(residues) == 0:
            raise MsaError(
                f"the query {row.name!r} is all gaps",
                source=self.source,
                line=row.line,
                fix="the first record must be the query sequence itself; "
                "move it to the top or name it with --query",
            )
        nucleotide_share = np.count_nonzero(IS_NUCLEOTIDE[residues]) / len(residues)
        if len(residues) >= 10 and nucleotide_share >= 0.9:
            raise MsaError(
                f"the query {row.name!r} looks like DNA/RNA "
                f"({nucleotide_share:.0%} of its residues are A, C, G, T, U or N)",
                source=self.source,
                line=row.line,
                fix="foldserve predicts proteins: give a protein alignment "
                "(translate the sequences first)",
            )
        if self.limits is not None and len(residues) > self.limits.max_query_length:
            raise TooLarge(
                f"the query {row.name!r} has {len(residues):,} residues, more than the "
                f"{self.limits.max_query_length:,} this endpoint predicts",
                where=self._where,
                fix=f"predict a part of at most {self.limits.max_query_length:,} residues "
                "(a domain), cutting the MSA's columns to match",
            )
        self._query = row

    # -- chunks ---------------------------------------------------------------------------------
    def _flush(self) -> None:
        rows, self._pending = self._pending, []
        if not rows:
            return
        if self.rule == "aligned":
            residues, deletions, insertions = self._project_aligned(rows)
        else:
            residues, deletions, insertions = self._project_a3m(rows)
        self._names.extend(r.name for r in rows)
        self._descriptions.extend(r.description for r in rows)
        self._insertions.extend(insertions)
        if self._store is None:
            # Every row takes at least its columns plus '>', a name and two newlines.
            capacity = self._size_hint // (self._width + 3) + 1 if self._size_hint else CHUNK_ROWS
            self._store = RowStore(int(self._keep.sum()), capacity)
        self._store.append(residues, deletions)

    def _project_aligned(self, rows: list[RawRow]) -> Projected:
        for row in rows:
            if len(row.text) != self._width:
                raise self._unaligned(row, len(row.text), "columns")
        flat = np.frombuffer(b"".join(r.text for r in rows), dtype=np.uint8)
        self._check_block(rows, flat)
        return project_onto_query(flat.reshape(len(rows), self._width), self._keep)

    def _project_a3m(self, rows: list[RawRow]) -> Projected:
        lengths = np.fromiter((len(r.text) for r in rows), dtype=np.int64, count=len(rows))
        flat = np.frombuffer(b"".join(r.text for r in rows), dtype=np.uint8)
        self._check_block(rows, flat)
        if self._keep.all() and (lengths == self._width).all() and IS_UPPER_OR_GAP[flat].all():
            # No insertion anywhere in this chunk (common in aligned FASTA): rows are columns.
            return flat.reshape(len(rows), self._width), None, [b""] * len(rows)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        positions = self._column_positions(rows, flat, starts, self._width)
        if not self._keep.all():
            # Columns where the query has '-' are insertions: re-letter them and look again.
            flat = flat.copy()
            dropped = positions[:, ~self._keep]
            flat[dropped] = np.where(flat[dropped] == GAP, DOT, TO_LOWER[flat[dropped]])
            positions = self._column_positions(rows, flat, starts, int(self._keep.sum()))
        is_lower = IS_LOWER[flat]
        lower_before = np.concatenate(([0], np.cumsum(is_lower, dtype=CUMSUM_DTYPE)))
        counts = np.empty(positions.shape, dtype=np.int64)
        counts[:, 0] = lower_before[positions[:, 0]] - lower_before[starts]
        counts[:, 1:] = lower_before[positions[:, 1:]] - lower_before[positions[:, :-1]]
        np.minimum(counts, MAX_DELETION, out=counts)
        row_of = np.repeat(np.arange(len(rows)), lengths)
        inserted = is_lower & (np.arange(len(flat)) < positions[row_of, -1])
        per_row = np.bincount(row_of[inserted], minlength=len(rows)).astype(np.int64)
        insertions = split_rows(flat[inserted], per_row)
        return flat[positions], counts.astype(np.uint16), insertions

    def _column_positions(
        self,
        rows: list[RawRow],
        flat: npt.NDArray[np.uint8],
        starts: npt.NDArray[np.int64],
        width: int,
    ) -> npt.NDArray[np.intp]:
        """Index into ``flat`` of every A3M column (upper-case or '-'), one row per record."""
        is_column = IS_UPPER_OR_GAP[flat]
        per_row = np.add.reduceat(is_column, starts).astype(np.int64)
        wrong = np.flatnonzero(per_row != width)
        if len(wrong):
            raise self._unaligned(rows[int(wrong[0])], int(per_row[wrong[0]]), "aligned columns")
        return np.flatnonzero(is_column).reshape(len(rows), width)

    # -- validation -----------------------------------------------------------------------------
    def _check_block(self, rows: list[RawRow], flat: npt.NDArray[np.uint8]) -> None:
        bad = np.flatnonzero(~IS_VALID[flat])
        if not len(bad):
            return
        position = int(bad[0])
        for row in rows:
            if position < len(row.text):
                self._raise_invalid(row, np.frombuffer(row.text, dtype=np.uint8), position)
            position -= len(row.text)

    def _raise_invalid(self, row: RawRow, text: npt.NDArray[np.uint8], position: int) -> None:
        char = chr(int(text[position]))
        raise MsaError(
            f"invalid character {char!r} at position {position + 1} of record {row.name!r}",
            source=self.source,
            line=row.line,
            fix="sequences may hold only letters and the gaps '-' and '.'; "
            "remove or replace the character (X for an unknown residue)",
        )

    def _unaligned(self, row: RawRow, found: int, what: str) -> MsaError:
        return MsaError(
            f"record {row.name!r} has {found} {what} but the query has {self._width}: "
            "rows of different lengths, the file looks unaligned",
            source=self.source,
            line=row.line,
            fix=UNALIGNED_FIX,
        )
