"""Scores of a model against a reference, over residue pairs already put in correspondence.

TM-align (through tmtools) finds alignments and TM-score superpositions and biotite computes
lDDT; what no installed library offers is written here with numpy:

- ``tm_score_in_place`` and ``rmsd_in_place``: coordinates scored where they stand (US-align
  ``-se``);
- ``gdt_ts``: GDT-TS as the TM-score program computes it (Zhang & Skolnick 2004; ``TMscore.cpp``
  and ``TMscore.h`` of US-align), which no Python package offers without a C++ build;
- ``lddt``: the superposition-free lDDT on CA atoms (Mariani et al. 2013) with AlphaFold's
  settings, computed by ``biotite.structure.lddt``.

Arrays ``model`` and ``reference`` are ``(n, 3)`` CA coordinates of the n aligned pairs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

Coords = npt.NDArray[np.float64]
Masks = npt.NDArray[np.bool_]

GDT_CUTOFFS = (1.0, 2.0, 4.0, 8.0)
LDDT_RADIUS = 15.0
LDDT_THRESHOLDS = (0.5, 1.0, 2.0, 4.0)
#: The TM-score program's superposition search: fragments down to 4 pairs, at most 20
#: extensions of each, a selection of at least 3 pairs (the radius grows by 0.5 Å until then).
GDT_MIN_FRAGMENT = 4
GDT_HALVINGS = 5
GDT_ITERATIONS = 20
GDT_MIN_PAIRS = 3
GDT_RELAX_STEP = 0.5
#: Superpositions evaluated at once: bounds memory to about CHUNK * n * 24 bytes.
CHUNK = 256


def tm_d0(length: int) -> float:
    """TM-score's distance scale for a structure of ``length`` residues (TM-align's rule)."""
    if length <= 21:
        return 0.5
    return float(max(0.5, 1.24 * (length - 15) ** (1.0 / 3.0) - 1.8))


def tm_score_in_place(model: Coords, reference: Coords, length: int) -> float:
    """TM-score of paired coordinates without moving them, normalised by ``length``."""
    distances = np.linalg.norm(model - reference, axis=1)
    return float(np.sum(1.0 / (1.0 + (distances / tm_d0(length)) ** 2)) / length)


def rmsd_in_place(model: Coords, reference: Coords) -> float:
    """Root-mean-square deviation of the pairs where they stand."""
    return float(np.sqrt(np.mean(np.sum((model - reference) ** 2, axis=1))))


def _within_cutoffs(distances: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Per GDT cutoff, the most pairs closer than it in any row of ``distances`` ``(m, n)``."""
    within = (distances[..., None] < np.array(GDT_CUTOFFS)).sum(axis=-2)
    return np.asarray(within.reshape(-1, len(GDT_CUTOFFS)).max(axis=0), dtype=np.int64)


def gdt_ts_in_place(model: Coords, reference: Coords, reference_length: int) -> float:
    """GDT-TS of paired coordinates without moving them."""
    counts = _within_cutoffs(np.linalg.norm(model - reference, axis=1))
    return float(np.mean(counts) / reference_length)


def _superposed_distances(model: Coords, reference: Coords, masks: Masks) -> Coords:
    """Distances ``(m, n)`` of every pair after each least-RMSD superposition (Kabsch) of the
    pairs a row of ``masks`` selects."""
    weights = masks.astype(np.float64)
    counts = weights.sum(axis=1, keepdims=True)
    model_centre, reference_centre = weights @ model / counts, weights @ reference / counts
    centred = model[None] - model_centre[:, None]
    covariance = np.swapaxes(centred * weights[..., None], 1, 2) @ (
        reference[None] - reference_centre[:, None]
    )
    v, _, wt = np.linalg.svd(covariance)
    v[:, :, 2] *= np.where(np.linalg.det(v @ wt) < 0, -1.0, 1.0)[:, None]
    moved = centred @ (v @ wt) + reference_centre[:, None]  # the rotation is (v @ wt).T
    return np.asarray(np.linalg.norm(moved - reference[None], axis=-1))


def _select(distances: Coords, radius: float) -> Masks:
    """Pairs closer than ``radius``; a row with fewer than 3 widens it by 0.5 Å steps until it
    has them (the TM-score program's ``score_fun8``)."""
    selected = distances < radius
    if distances.shape[1] > GDT_MIN_PAIRS:
        few = selected.sum(axis=1) < GDT_MIN_PAIRS
        if few.any():
            third = np.sort(distances[few], axis=1)[:, GDT_MIN_PAIRS - 1]
            steps = np.floor((third - radius) / GDT_RELAX_STEP) + 1
            selected[few] = distances[few] < (radius + GDT_RELAX_STEP * steps)[:, None]
    return selected


def _fragment_seeds(n: int) -> Iterator[Masks]:
    """Every contiguous fragment of n, n/2, n/4 … pairs and of 4 pairs, in chunks of rows."""
    shortest = min(GDT_MIN_FRAGMENT, n)
    lengths = [n >> h for h in range(GDT_HALVINGS) if n >> h > shortest] + [shortest]
    starts = [(length, start) for length in lengths for start in range(n - length + 1)]
    positions = np.arange(n)
    for first in range(0, len(starts), CHUNK):
        length, start = np.array(starts[first : first + CHUNK]).T
        yield (positions >= start[:, None]) & (positions < (start + length)[:, None])


def _search_radius(model_length: int, reference_length: int) -> float:
    """The TM-score program's ``d0_search`` (its ``parameter_set4search``)."""
    shorter = min(model_length, reference_length)
    d0 = 0.168 if shorter <= 19 else 1.24 * (shorter - 15) ** (1.0 / 3.0) - 1.8
    return float(np.clip(d0 + 0.8, 4.5, 8.0))


def gdt_ts(model: Coords, reference: Coords, model_length: int, reference_length: int) -> float:
    """GDT-TS in [0, 1]: the mean over 1, 2, 4, 8 Å of the most pairs one superposition brings
    within the cutoff, over the reference's ``reference_length`` residues.

    The superpositions are those the TM-score program tries while it searches for the best
    TM-score, where it counts GDT: one on every fragment seed (see ``_fragment_seeds``); from
    each, the pairs within ``d0_search - 1`` Å are superposed, then repeatedly (up to 20 times,
    until the set repeats) the pairs within ``d0_search + 1`` Å. It agrees with the program's
    ``GDT-TS-score`` to its 4 printed decimals (tests/test_compare.py). GDT-TS is a maximum
    over all superpositions and every program searches some of them: a further search per
    cutoff (as LGA's) finds a pair or two more on some pairs of 1L2Y's NMR models.
    """
    n = len(model)
    if n == 0:
        return 0.0
    radius = _search_radius(model_length, reference_length)
    best = np.zeros(len(GDT_CUTOFFS), dtype=np.int64)
    for seeds in _fragment_seeds(n):
        distances = _superposed_distances(model, reference, seeds)
        best = np.maximum(best, _within_cutoffs(distances))
        selected = _select(distances, radius - 1.0)
        for _ in range(GDT_ITERATIONS):
            # Rows that reach the same set continue alike: keep one of each.
            selected = np.unique(selected[selected.sum(axis=1) >= GDT_MIN_PAIRS], axis=0)
            if len(selected) == 0:
                break
            distances = _superposed_distances(model, reference, selected)
            best = np.maximum(best, _within_cutoffs(distances))
            extended = _select(distances, radius + 1.0)
            selected = extended[(extended != selected).any(axis=1)]
    return float(np.mean(best) / reference_length)


def lddt(model: Coords, reference_index: npt.NDArray[np.intp], reference_all: Coords) -> float:
    """Global lDDT-CA in [0, 1] of a model against the reference, superposition-free.

    As AlphaFold's ``lddt`` (and ColabFold's) computes it: the pairs are those of the whole
    reference (``reference_all``, every residue, aligned or not) closer than 15 Å; each scores
    the fraction of the thresholds 0.5, 1, 2, 4 Å that the model's distance is within.
    ``reference_index[k]`` is the reference residue of ``model[k]``; pairs with an unaligned
    residue score 0, so unaligned reference residues lower the score.
    """
    # biotite.structure imports matplotlib and networkx (about a second): load it on use.
    import biotite.structure  # type: ignore[import-untyped]  # biotite ships no py.typed

    reference = biotite.structure.AtomArray(len(reference_all))
    reference.coord = reference_all
    reference.res_id = np.arange(1, len(reference_all) + 1)
    subject = np.full_like(reference_all, np.nan)
    subject[reference_index] = model
    score = biotite.structure.lddt(
        reference, subject, inclusion_radius=LDDT_RADIUS, distance_bins=LDDT_THRESHOLDS
    )
    return 0.0 if np.isnan(score) else float(score)
