"""``foldserve msa filter``: shrink an MSA to what the model can use, as hhfilter does.

All identity work is blocked matrix products (see :mod:`foldserve.msa.identity`); the only
Python loops run over blocks of rows or over a small in-block identity matrix. The rows are
encoded once, when the first identity step needs them, and each step hands the next the
positions of the rows it kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from foldserve.msa.alphabet import GAP
from foldserve.msa.identity import Closeness, Encoded, Floats, RowBuffer
from foldserve.msa.model import Msa
from foldserve.msa.stats import unique_rows

Indices = npt.NDArray[np.intp]
#: Rows a greedy walk checks against each other in one in-block identity matrix.
WALK_BLOCK = 512
#: ``--max-seqs`` picks in rounds of at most max(PICK_BATCH, count // PICK_ROUNDS) rows. These
#: three numbers are part of the selection rule: changing one changes which rows are picked.
PICK_BATCH = 64
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
    if _needs_identity(settings, len(keep)):
        keep = keep[_identity_steps(Encoded(msa.residues[keep]), settings, report)]
    summary = " -> ".join(f"{count} ({step})" for step, count in report.steps)
    return msa.select(keep, warning=None if len(keep) == len(msa) else f"filtered: {summary}"), (
        report
    )


def _needs_identity(settings: FilterSettings, rows: int) -> bool:
    return (
        settings.min_query_id is not None
        or (settings.max_seq_id is not None and settings.max_seq_id < 1.0)
        or (settings.max_seqs is not None and rows > settings.max_seqs)
    )


def _identity_steps(encoded: Encoded, settings: FilterSettings, report: FilterReport) -> Indices:
    """The identity-based steps on all rows of ``encoded`` (row 0 the query); returns the rows
    kept."""
    rows: Indices = np.arange(len(encoded))
    if settings.min_query_id is not None:
        query = RowBuffer(encoded, 1)
        query.append(rows[:1])
        to_query = query.highest_identity(rows)
        rows = rows[(to_query >= settings.min_query_id) | (rows == 0)]
        report.steps.append((f"identity to query >= {settings.min_query_id:.0%}", len(rows)))
    if settings.max_seq_id is not None and settings.max_seq_id < 1.0:
        rows = greedy_identity_filter(encoded, rows, settings.max_seq_id)
        report.steps.append((f"pairwise identity <= {settings.max_seq_id:.0%}", len(rows)))
    if settings.max_seqs is not None and len(rows) > settings.max_seqs:
        rows = most_diverse(encoded, rows, settings.max_seqs)
        report.steps.append((f"most diverse {settings.max_seqs}", len(rows)))
    return rows


def greedy_walk(
    encoded: Encoded, rows: Indices, limits: Floats, most: int | None = None
) -> Indices:
    """Walk ``rows`` in order and keep each one unless its identity to a row kept before it
    exceeds its own limit (``limits``, one per row); the first row is always kept. Stops once
    ``most`` rows are kept. Returns positions into ``rows``, ascending.

    hhfilter's -id is this walk with one limit for every row; each round of farthest-point
    selection walks its candidates with their identity to the picked set as their limits.
    """
    most = len(rows) if most is None else min(most, len(rows))
    kept = RowBuffer(encoded, most)
    positions: list[int] = []
    for start in range(0, len(rows), WALK_BLOCK):
        block = np.arange(start, min(start + WALK_BLOCK, len(rows)))
        features = encoded.encode(rows[block])
        alive = kept.highest_identity_of(features) <= limits[block]
        block, features = block[alive], features[alive]
        # within[i, j]: row j is more identical to row i than row j's limit allows.
        within = encoded.identity_of(features, features) > limits[block]
        dropped = np.zeros(len(block), dtype=np.bool_)
        new: list[int] = []
        for i in range(len(block)):
            if dropped[i]:
                continue
            new.append(int(block[i]))
            if len(positions) + len(new) == most:
                break
            dropped[i + 1 :] |= within[i, i + 1 :]
        kept.append(rows[new])
        positions.extend(new)
        if len(positions) == most:
            break
    return np.array(positions, dtype=np.intp)


def greedy_identity_filter(encoded: Encoded, rows: Indices, max_identity: float) -> Indices:
    """The rows of ``rows`` (rows of ``encoded``) that hhfilter -id keeps: walking them in order,
    each is kept unless it is more than ``max_identity`` identical to a row already kept. The
    first row is always kept."""
    limits = np.full(len(rows), max_identity, dtype=np.float32)
    return rows[greedy_walk(encoded, rows, limits)]


def most_diverse(encoded: Encoded, rows: Indices, count: int) -> Indices:
    """Pick ``count`` of ``rows`` (rows of ``encoded``), the first row (the query) first, each as
    far as possible from those picked before; returns the picked rows, ascending.

    Farthest-point selection: repeatedly take the rows whose highest identity to the picked set
    is lowest (ties: the earlier row), a batch at a time; within a batch a row is skipped when it
    is closer to another row of the same batch than to the picked set. The identities to the
    picked set are kept lazily (:class:`~foldserve.msa.identity.Closeness`), which makes the same
    choices as updating every row after every batch with a fraction of the products.
    """
    count = min(count, len(rows))
    closeness = Closeness(encoded, rows, first=0, capacity=count)
    batch = max(PICK_BATCH, count // PICK_ROUNDS)
    while len(closeness) < count:
        want = min(batch, count - len(closeness))
        candidates = closeness.smallest(CANDIDATES_PER_PICK * want)
        chosen = greedy_walk(encoded, rows[candidates], closeness.value[candidates], want)
        closeness.pick(candidates[chosen])
    return np.sort(closeness.picked)
