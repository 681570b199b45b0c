"""Pairwise sequence identity between MSA rows, as dense float32 matrix products.

identity(i, j) = identical residues / columns where both rows have a residue (0 when they
share none). Rows are one-hot encoded over 21 residue states (gaps encode as all-zero), so the
number of identical residues of two blocks of rows is one BLAS matrix product; this is what
makes Neff and the identity filters run in seconds on tens of thousands of rows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from foldserve.msa.alphabet import GAP, GAP_STATE, STATE_OF

Floats = npt.NDArray[np.float32]
Selection = npt.NDArray[np.intp] | slice
RESIDUE_STATES = 21


class Encoded:
    """Rows one-hot encoded once, for repeated identity computations."""

    def __init__(self, residues: npt.NDArray[np.uint8]) -> None:
        n, length = residues.shape
        # Row GAP_STATE of this (22 x 21) table is all zeros: gaps match nothing.
        table = np.eye(GAP_STATE + 1, RESIDUE_STATES, dtype=np.float32)
        self.one_hot: Floats = table[STATE_OF[residues]].reshape(n, length * RESIDUE_STATES)
        self.present: Floats = (residues != GAP).astype(np.float32)

    def __len__(self) -> int:
        return int(self.one_hot.shape[0])

    def identity(self, rows: Selection, other_rows: Selection = slice(None)) -> Floats:
        """Identity of rows ``rows`` against rows ``other_rows`` (default: all rows)."""
        matches = self.one_hot[rows] @ self.one_hot[other_rows].T
        overlap = self.present[rows] @ self.present[other_rows].T
        with np.errstate(divide="ignore", invalid="ignore"):
            result = np.where(overlap > 0, matches / overlap, 0.0)
        return result.astype(np.float32, copy=False)
