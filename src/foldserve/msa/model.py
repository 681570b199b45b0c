"""The ``Msa`` type: an alignment projected onto its query, as AlphaFold consumes it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from foldserve.msa.alphabet import GAP, IS_GAP

#: Deletion counts are stored in 16 bits; AlphaFold squashes them with arctan(d / 3), so
#: anything past this cap is indistinguishable to the model.
MAX_DELETION = np.iinfo(np.uint16).max
#: Residues checked at a time: the check's temporaries stay in the cache (PF13354's 4,642 rows
#: by 198 are checked in 82 us in blocks of 1 << 18 cells, 107 us in blocks of 1 << 16 and
#: 680 us in one piece).
VALIDATE_CELLS = 1 << 18

_OLIGOMERS = {2: "dimer", 3: "trimer", 4: "tetramer", 5: "pentamer", 6: "hexamer"}


@dataclass(frozen=True)
class ComplexLayout:
    """The chains of a complex whose MSA is one A3M, as ColabFold lays it out.

    ``lengths[i]`` residues of chain ``i`` follow one another in the query row (each distinct
    chain once), and the complex holds ``copies[i]`` copies of chain ``i``: ColabFold's first
    line ``#31,31<TAB>1,1`` is a heteromer of two 31-residue chains, ``#31<TAB>2`` a homodimer.
    A single chain in one copy is no complex: an ``Msa`` of a monomer has ``complex=None``.
    """

    lengths: tuple[int, ...]
    copies: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.lengths) != len(self.copies):
            raise ValueError(
                f"{len(self.lengths)} chain lengths but {len(self.copies)} copy counts"
            )
        if not self.lengths or min(self.lengths) < 1 or min(self.copies) < 1:
            raise ValueError(
                f"chain lengths {self.lengths} and copies {self.copies} must be at least 1"
            )
        if self.copies == (1,):
            raise ValueError("a single chain in one copy is not a complex: use complex=None")

    @property
    def query_length(self) -> int:
        """Residues of the query row: each distinct chain once."""
        return sum(self.lengths)

    def describe(self) -> str:
        """In words, e.g. 'heteromer of 2 chains (31 + 31 residues)'."""
        if len(self.lengths) == 1:
            count = self.copies[0]
            kind = _OLIGOMERS.get(count, f"{count}-mer")
            return f"homo{kind} of a {self.lengths[0]}-residue chain"
        chains = f"{len(self.lengths)} chains ({' + '.join(map(str, self.lengths))} residues)"
        if set(self.copies) == {1}:
            return f"heteromer of {chains}"
        return f"complex of {chains}, copies {','.join(map(str, self.copies))}"


def _not_upper_or_gap(block: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """True where ``block`` holds neither an upper-case letter nor '-'.

    Two comparisons (a byte below 'A' wraps round to a large difference): several times
    faster than a lookup in a 256-entry table, which ``Msa`` would otherwise pay on every row.
    """
    bad = np.subtract(block, ord("A"), dtype=np.uint8) > ord("Z") - ord("A")
    bad &= block != GAP
    return bad


@dataclass(frozen=True)
class Msa:
    """A multiple sequence alignment in AlphaFold's A3M semantics.

    Row 0 is the query. Every row has exactly ``query_length`` columns, one per query residue:
    an upper-case residue or ``-``. Residues a row has in columns where the query has a gap are
    not columns; they are counted in ``deletions[row, col]`` against the next query column, as
    AlphaFold's ``parse_a3m`` / ``convert_stockholm_to_a3m`` do.

    ``residues`` is an ``(n_rows, query_length)`` ``uint8`` array of ASCII codes and
    ``deletions`` a ``uint16`` array of the same shape, so the model code turns an ``Msa`` into
    features without re-parsing text. ``insertions[row]`` holds the inserted residues themselves
    (lower-case, in order; ``deletions`` says where they go), so writing A3M or an aligned
    format back out loses nothing. Residues after a row's last column are dropped, as in
    AlphaFold.

    ``complex`` is the chain layout of a ColabFold complex A3M (its ``#lengths<TAB>copies``
    first line), None for a single chain.
    """

    names: tuple[str, ...]
    descriptions: tuple[str, ...]
    residues: npt.NDArray[np.uint8]
    deletions: npt.NDArray[np.uint16]
    insertions: tuple[bytes, ...]
    format: str = "a3m"
    source: str = "<memory>"
    warnings: tuple[str, ...] = field(default=())
    complex: ComplexLayout | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(self.descriptions) != n:
            raise ValueError(f"{len(self.descriptions)} descriptions for {n} names")
        if self.residues.ndim != 2 or self.residues.shape[0] != n:
            raise ValueError(f"residues has shape {self.residues.shape}, expected ({n}, L)")
        if self.deletions.shape != self.residues.shape:
            raise ValueError(
                f"deletions has shape {self.deletions.shape}, "
                f"residues has shape {self.residues.shape}"
            )
        if len(self.insertions) != n:
            raise ValueError(f"{len(self.insertions)} insertion strings for {n} rows")
        if self.residues.dtype != np.uint8 or self.deletions.dtype != np.uint16:
            raise ValueError(
                f"expected uint8 residues and uint16 deletions, "
                f"got {self.residues.dtype} and {self.deletions.dtype}"
            )
        if n == 0:
            raise ValueError("an MSA needs at least the query row")
        rows = max(1, VALIDATE_CELLS // max(1, self.residues.shape[1]))
        for start in range(0, n, rows):
            block = self.residues[start : start + rows]
            bad = _not_upper_or_gap(block)
            if bad.any():
                row, col = (int(i) for i in np.argwhere(bad)[0])
                raise ValueError(
                    f"row {start + row} column {col} holds {chr(block[row, col])!r}; "
                    "only upper-case residues and '-' are allowed"
                )
        if IS_GAP[self.residues[0]].any():
            raise ValueError("the query row may not contain gaps")
        if self.complex is not None and self.complex.query_length != self.query_length:
            raise ValueError(
                f"the chains of the complex hold {self.complex.query_length} residues, "
                f"the query {self.query_length}"
            )

    def __len__(self) -> int:
        """Number of rows, the query included."""
        return len(self.names)

    @property
    def query_length(self) -> int:
        return int(self.residues.shape[1])

    @property
    def query_name(self) -> str:
        return self.names[0]

    @property
    def query_sequence(self) -> str:
        return self.row(0)

    def row(self, index: int) -> str:
        """Row ``index`` as text (upper-case residues and '-')."""
        return str(self.residues[index].tobytes().decode("ascii"))

    def rows(self) -> Iterator[str]:
        for index in range(len(self)):
            yield self.row(index)

    @property
    def sequences(self) -> list[str]:
        """All rows as text, like ``alphafold.data.parsers.Msa.sequences``."""
        return list(self.rows())

    @property
    def deletion_matrix(self) -> list[list[int]]:
        """Deletion counts as nested lists, like ``alphafold.data.parsers.Msa.deletion_matrix``."""
        return [[int(v) for v in row] for row in self.deletions]

    def select(self, keep: npt.NDArray[np.intp], *, warning: str | None = None) -> Msa:
        """A new ``Msa`` with the rows ``keep`` (which must start with the query, 0)."""
        if len(keep) == 0 or keep[0] != 0:
            raise ValueError("a row selection must keep the query first")
        return Msa(
            names=tuple(self.names[i] for i in keep),
            descriptions=tuple(self.descriptions[i] for i in keep),
            residues=self.residues[keep],
            deletions=self.deletions[keep],
            insertions=tuple(self.insertions[i] for i in keep),
            format=self.format,
            source=self.source,
            warnings=self.warnings + ((warning,) if warning else ()),
            complex=self.complex,
        )
