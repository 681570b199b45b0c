"""Scores of a model against a reference, over residue pairs already put in correspondence.

TM-align (through tmtools) finds alignments and TM-score superpositions; what no installed
library computes is written here by hand, vectorised with numpy:

- ``kabsch``: the least-RMSD superposition of paired points;
- ``tm_score_in_place``: the TM-score of coordinates scored where they stand (US-align ``-se``);
- ``gdt_ts``: GDT-TS with a seeded superposition search in the manner of LGA and the TM-score
  program (which no Python package on PyPI offers without a C++ build);
- ``lddt``: the superposition-free lDDT on CA atoms (Mariani et al. 2013), as pLDDT estimates it.

Arrays ``model`` and ``reference`` are ``(n, 3)`` CA coordinates of the n aligned pairs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Coords = npt.NDArray[np.float64]

GDT_CUTOFFS = (1.0, 2.0, 4.0, 8.0)
LDDT_RADIUS = 15.0
LDDT_THRESHOLDS = (0.5, 1.0, 2.0, 4.0)
GDT_MIN_FRAGMENT = 4
GDT_ITERATIONS = 10


def tm_d0(length: int) -> float:
    """TM-score's distance scale for a structure of ``length`` residues (TM-align's rule)."""
    if length <= 21:
        return 0.5
    return float(max(0.5, 1.24 * (length - 15) ** (1.0 / 3.0) - 1.8))


def tm_score_in_place(model: Coords, reference: Coords, length: int) -> float:
    """TM-score of paired coordinates without moving them, normalised by ``length``."""
    distances = np.linalg.norm(model - reference, axis=1)
    return float(np.sum(1.0 / (1.0 + (distances / tm_d0(length)) ** 2)) / length)


def kabsch(model: Coords, reference: Coords) -> tuple[Coords, Coords]:
    """Rotation ``u`` and translation ``t`` with ``model @ u.T + t`` closest to ``reference``."""
    mc, rc = model.mean(axis=0), reference.mean(axis=0)
    h = (model - mc).T @ (reference - rc)
    v, _, wt = np.linalg.svd(h)
    sign = np.sign(np.linalg.det(v @ wt)) or 1.0
    u = (v @ np.diag([1.0, 1.0, sign]) @ wt).T
    return u, rc - mc @ u.T


def rmsd(model: Coords, reference: Coords, *, superpose: bool = True) -> float:
    """Root-mean-square deviation of the pairs, after the least-RMSD superposition by default."""
    if superpose:
        u, t = kabsch(model, reference)
        model = model @ u.T + t
    return float(np.sqrt(np.mean(np.sum((model - reference) ** 2, axis=1))))


def _seed_sets(n: int) -> list[npt.NDArray[np.bool_]]:
    """Contiguous fragments of length n, n/2, n/4 … 4, each half-overlapping the next."""
    seeds = []
    length = n
    while length >= min(GDT_MIN_FRAGMENT, n):
        step = max(1, length // 2)
        for start in range(0, n - length + 1, step):
            mask = np.zeros(n, dtype=bool)
            mask[start : start + length] = True
            seeds.append(mask)
        if length == GDT_MIN_FRAGMENT or length < 2 * GDT_MIN_FRAGMENT:
            break
        length //= 2
    return seeds


def gdt_ts(
    model: Coords, reference: Coords, reference_length: int, start: Coords | None = None
) -> float:
    """GDT-TS in [0, 1]: the mean over 1, 2, 4, 8 Å of the largest fraction of the reference's
    ``reference_length`` residues that one superposition brings within the cutoff.

    The largest fraction is searched as LGA and the TM-score program do: superpose on a seed
    fragment, keep the pairs within the cutoff, superpose on those, repeat until the set stops
    changing; seeds are fragments of decreasing length, plus ``start`` (the model already
    superposed, e.g. by TM-align) scored as it stands.
    """
    n = len(model)
    if n == 0:
        return 0.0
    best = np.zeros(len(GDT_CUTOFFS))
    cutoffs = np.array(GDT_CUTOFFS)
    if start is not None:
        within = np.linalg.norm(start - reference, axis=1)[:, None] < cutoffs
        best = np.maximum(best, within.sum(axis=0))
    for seed in _seed_sets(n) if n >= 3 else []:
        u, t = kabsch(model[seed], reference[seed])
        seed_distances = np.linalg.norm(model @ u.T + t - reference, axis=1)
        for k, cutoff in enumerate(GDT_CUTOFFS):
            selected = seed_distances < cutoff
            for _ in range(GDT_ITERATIONS):
                best[k] = max(best[k], selected.sum())
                if selected.sum() < 3:
                    break
                u, t = kabsch(model[selected], reference[selected])
                now = np.linalg.norm(model @ u.T + t - reference, axis=1) < cutoff
                if np.array_equal(now, selected):
                    break
                selected = now
            best[k] = max(best[k], selected.sum())
    return float(np.mean(best) / reference_length)


def lddt(model: Coords, reference_index: npt.NDArray[np.intp], reference_all: Coords) -> float:
    """Global lDDT-CA in [0, 1] of a model against the reference, superposition-free.

    Pairs are those of the whole reference (``reference_all``, every residue, aligned or not)
    closer than 15 Å; a pair counts as preserved at threshold t when both residues are aligned
    (``reference_index[k]`` is the reference residue of ``model[k]``) and the model's
    distance differs by less than t. Unaligned reference residues thus lower the score.
    """
    full = np.linalg.norm(reference_all[:, None] - reference_all[None, :], axis=-1)
    considered = (full < LDDT_RADIUS) & ~np.eye(len(reference_all), dtype=bool)
    total = int(considered.sum())
    if total == 0:
        return 0.0
    ref_d = full[np.ix_(reference_index, reference_index)]
    model_d = np.linalg.norm(model[:, None] - model[None, :], axis=-1)
    pairs = considered[np.ix_(reference_index, reference_index)]
    error = np.abs(model_d - ref_d)[pairs]
    preserved = [(error < t).sum() for t in LDDT_THRESHOLDS]
    return float(np.mean(preserved) / total)
