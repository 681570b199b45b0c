"""``foldserve msa filter``: shrink an MSA to what the model can use, as hhfilter does.

All identity work is blocked matrix products (see :mod:`foldserve.msa.identity`); the only
Python loops run over blocks of rows or over a small in-block identity matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from foldserve.msa.alphabet import GAP
from foldserve.msa.identity import Encoded
from foldserve.msa.model import Msa
from foldserve.msa.stats import unique_rows

Indices = npt.NDArray[np.intp]
BLOCK_ROWS = 1024
PICK_BATCH = 64
#: Picks are made in about this many rounds: each round streams the whole one-hot matrix
#: through one matrix product, so fewer, larger rounds are what keeps big selections fast.
PICK_ROUNDS = 12
#: Each round looks at this many times as many candidates as it wants to pick, since
#: candidates too close to one another are skipped.
CANDIDATES_PER_PICK = 2


@dataclass(frozen=True)
class FilterSettings:
    """What to keep. Identities and coverages are fractions in [0, 1]."""

    remove_duplicates: bool = True
    max_seq_id: float | None = None
    min_coverage: float | None = None
    min_query_id: float | None = None
    max_seqs: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_seq_id", "min_coverage", "min_query_id"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.max_seqs is not None and self.max_seqs < 1:
            raise ValueError(f"max_seqs must be at least 1 (the query), got {self.max_seqs}")


@dataclass
class FilterReport:
    """Rows left after each step, in order."""

    steps: list[tuple[str, int]] = field(default_factory=list)


def filter_msa(msa: Msa, settings: FilterSettings) -> tuple[Msa, FilterReport]:
    """Apply ``settings`` in hhfilter's order; the query is always kept, first."""
    report = FilterReport(steps=[("input", len(msa))])
    keep: Indices = np.arange(len(msa))
    if settings.remove_duplicates:
        keep = unique_rows(msa)
        report.steps.append(("duplicates removed", len(keep)))
    if settings.min_coverage is not None:
        covered = (msa.residues[keep] != GAP).mean(axis=1)
        keep = keep[(covered >= settings.min_coverage) | (keep == 0)]
        report.steps.append((f"coverage >= {settings.min_coverage:.0%}", len(keep)))
    if settings.min_query_id is not None:
        encoded = Encoded(msa.residues[keep])
        to_query = encoded.identity(slice(0, 1))[0]
        keep = keep[(to_query >= settings.min_query_id) | (keep == 0)]
        report.steps.append((f"identity to query >= {settings.min_query_id:.0%}", len(keep)))
    if settings.max_seq_id is not None and settings.max_seq_id < 1.0:
        keep = keep[greedy_identity_filter(Encoded(msa.residues[keep]), settings.max_seq_id)]
        report.steps.append((f"pairwise identity <= {settings.max_seq_id:.0%}", len(keep)))
    if settings.max_seqs is not None and len(keep) > settings.max_seqs:
        keep = keep[most_diverse(Encoded(msa.residues[keep]), settings.max_seqs)]
        report.steps.append((f"most diverse {settings.max_seqs}", len(keep)))
    summary = " -> ".join(f"{count} ({step})" for step, count in report.steps)
    return msa.select(keep, warning=None if len(keep) == len(msa) else f"filtered: {summary}"), (
        report
    )


def greedy_identity_filter(encoded: Encoded, max_identity: float) -> Indices:
    """Walk the rows in order and keep a row unless it is more than ``max_identity`` identical
    to a row already kept (hhfilter -id). Row 0 is always kept."""
    kept = np.zeros(len(encoded), dtype=np.bool_)
    kept[0] = True
    for start in range(1, len(encoded), BLOCK_ROWS):
        block = np.arange(start, min(start + BLOCK_ROWS, len(encoded)))
        against_kept = encoded.identity(block, np.flatnonzero(kept[:start]))
        alive = block[against_kept.max(axis=1) <= max_identity]
        if len(alive) == 0:
            continue
        within = encoded.identity(alive, alive) > max_identity
        np.fill_diagonal(within, False)
        dropped = np.zeros(len(alive), dtype=np.bool_)
        for i in range(len(alive)):
            if not dropped[i]:
                dropped[i + 1 :] |= within[i, i + 1 :]
        kept[alive[~dropped]] = True
    return np.flatnonzero(kept)


def most_diverse(encoded: Encoded, count: int) -> Indices:
    """Pick ``count`` rows, query first, each as far as possible from those picked before.

    Farthest-point selection: repeatedly take the rows whose highest identity to the picked set
    is lowest, a batch at a time; within a batch a row is skipped when it is closer to another
    row of the same batch than to the picked set. Returned in the original row order.
    """
    picked = np.zeros(len(encoded), dtype=np.bool_)
    picked[0] = True
    closest = encoded.identity(slice(None), np.array([0]))[:, 0]
    closest[0] = np.inf
    total = 1
    batch = max(PICK_BATCH, count // PICK_ROUNDS)
    while total < count:
        want = min(batch, count - total)
        candidates = np.argsort(closest, kind="stable")[: CANDIDATES_PER_PICK * want]
        candidates = candidates[np.isfinite(closest[candidates])]
        mutual = encoded.identity(candidates, candidates)
        np.fill_diagonal(mutual, -1.0)
        chosen: list[int] = []
        for i in range(len(candidates)):
            if len(chosen) == want:
                break
            if not chosen or mutual[i, chosen].max() <= closest[candidates[i]]:
                chosen.append(i)
        new = candidates[chosen]
        picked[new] = True
        total += len(new)
        closest = np.maximum(closest, encoded.identity(slice(None), new).max(axis=1))
        closest[picked] = np.inf
    return np.flatnonzero(picked)
