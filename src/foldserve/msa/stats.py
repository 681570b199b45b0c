"""What ``foldserve msa inspect`` reports: depth, diversity (Neff), coverage and warnings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from foldserve.msa.alphabet import GAP
from foldserve.msa.identity import Encoded
from foldserve.msa.model import ComplexLayout, Msa

#: AlphaFold2 reads at most this many rows: 512 cluster centres plus 5,120 extra sequences.
MODEL_MAX_ROWS = 512 + 5120
NEFF_IDENTITY = 0.8
NEFF_EXACT_ROWS = 10_000
BLOCK_ROWS = 2048
SHALLOW_NEFF = 30
LOW_COVERAGE = 0.3


@dataclass(frozen=True)
class Coverage:
    """Per query position: the share of rows (query included) with a residue there."""

    min: float
    mean: float
    max: float
    low_positions: int  # positions covered by fewer than LOW_COVERAGE of the rows
    per_position: list[float] = field(repr=False)


@dataclass(frozen=True)
class MsaReport:
    source: str
    format: str
    query_name: str
    query_length: int
    query_sequence: str
    depth: int
    unique: int
    neff: float
    neff_rows: int  # rows Neff was computed on (all, or a random sample of a deep MSA)
    coverage: Coverage
    warnings: list[str]
    complex: ComplexLayout | None = None  # the chains of a ColabFold complex A3M

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def unique_rows(msa: Msa) -> npt.NDArray[np.intp]:
    """Indices of the first occurrence of every distinct row (columns and deletions), sorted."""
    combined = np.concatenate(
        [msa.residues, msa.deletions.view(np.uint8).reshape(len(msa), -1)], axis=1
    )
    keys = np.ascontiguousarray(combined).view(np.dtype((np.void, combined.shape[1]))).ravel()
    _, first = np.unique(keys, return_index=True)
    return np.sort(first)


def neff(
    msa: Msa, *, identity: float = NEFF_IDENTITY, max_rows: int = NEFF_EXACT_ROWS, seed: int = 0
) -> tuple[float, int]:
    """Effective number of sequences: sum over rows of 1 / (rows at >= ``identity`` to it).

    Deeper MSAs are estimated on a random sample of ``max_rows`` rows (the query always in);
    the second value says how many rows were used.
    """
    rows = np.arange(len(msa))
    if len(msa) > max_rows:
        rng = np.random.default_rng(seed)
        rows = np.concatenate(([0], np.sort(rng.choice(rows[1:], max_rows - 1, replace=False))))
    encoded = Encoded(msa.residues[rows])
    neighbours = np.zeros(len(rows), dtype=np.int64)
    for start in range(0, len(rows), BLOCK_ROWS):
        block = slice(start, min(start + BLOCK_ROWS, len(rows)))
        neighbours[block] = (encoded.identity(block) >= identity).sum(axis=1)
    return float((1.0 / np.maximum(neighbours, 1)).sum()), len(rows)


def coverage(msa: Msa) -> Coverage:
    per_position = (msa.residues != GAP).mean(axis=0)
    return Coverage(
        min=float(per_position.min()),
        mean=float(per_position.mean()),
        max=float(per_position.max()),
        low_positions=int((per_position < LOW_COVERAGE).sum()),
        per_position=[round(float(v), 4) for v in per_position],
    )


def inspect(msa: Msa) -> MsaReport:
    unique = len(unique_rows(msa))
    effective, neff_rows = neff(msa)
    cover = coverage(msa)
    warnings = list(msa.warnings)
    if unique < len(msa):
        warnings.append(
            f"{len(msa) - unique} duplicate row(s); `foldserve msa filter` removes them"
        )
    if effective < SHALLOW_NEFF:
        warnings.append(
            f"shallow MSA (Neff {effective:.1f} < {SHALLOW_NEFF}): expect low-confidence models"
        )
    if len(msa) > MODEL_MAX_ROWS:
        warnings.append(
            f"{len(msa)} rows; AlphaFold2 uses at most {MODEL_MAX_ROWS}: "
            f"`foldserve msa filter --max-seqs {MODEL_MAX_ROWS}` keeps the most diverse"
        )
    if cover.low_positions:
        warnings.append(
            f"{cover.low_positions} query position(s) covered by fewer than "
            f"{LOW_COVERAGE:.0%} of the rows"
        )
    return MsaReport(
        source=msa.source,
        format=msa.format,
        query_name=msa.query_name,
        query_length=msa.query_length,
        query_sequence=msa.query_sequence,
        depth=len(msa),
        unique=unique,
        neff=round(effective, 2),
        neff_rows=neff_rows,
        coverage=cover,
        warnings=warnings,
        complex=msa.complex,
    )
