"""Pairwise sequence identity between MSA rows, as dense matrix products.

identity(i, j) = identical residues / columns where both rows have a residue (0 when they
share none). Both counts come out of one BLAS matrix product: each residue becomes 22 numbers,
a one-hot of its 21 states followed by a weight w (a gap is all zeros), so the product of two
rows is matches + w**2 * overlap. With w**2 a power of two above the row length, the two
counts separate exactly: overlap = floor(product / w**2), matches = the remainder. This is
what makes Neff and the identity filters run in seconds on tens of thousands of rows.

Every number in those products is a whole number below 2**24 (the float32 significand; longer
rows are encoded in float64), so products are exact, and an identity is one correctly rounded
float32 division of two exact counts. An identity is therefore the same float32 however the
products are blocked or batched, which lets the filters compute each identity once, in
whatever batch suits them, and still make exactly the choices a plain row-by-row loop makes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from foldserve.msa.alphabet import GAP_STATE, STATE_OF

Floats = npt.NDArray[np.float32]
Features = npt.NDArray[np.floating]
Indices = npt.NDArray[np.intp]
Selection = Indices | slice
RESIDUE_STATES = 21
#: Most rows in one matrix product against a run of collected rows. Large, since each product
#: has a fixed cost of its own (on a busy machine, the BLAS threads waiting for each other).
BLOCK_ROWS = 4096
#: ``Closeness.smallest(k)`` brings up to date the stale rows among the lowest
#: ``REFRESH_AHEAD * k`` bounds in one pass, not just those among the lowest ``k``: every pass
#: sorts the bounds again, and a row refreshed a little early costs almost nothing extra, since
#: it would mostly be refreshed a round or two later anyway, against even more picks.
REFRESH_AHEAD = 4
#: A refresh compares each stale row with the picks after its bound, in one product per
#: distinct starting pick; starts closer than this are merged (some rows then meet again picks
#: their bound already covers, which cannot change a maximum), so that the products stay few.
MIN_SEGMENT = 128
_EXACT_FLOAT32 = 2**24


class Encoded:
    """Rows kept as residue states, encoded a block at a time when a product needs them.

    The full encoding would be 88 bytes per residue (630 MB for 36,000 rows of 200 columns);
    encoding only the rows a product reads keeps memory at a block, and costs no more than
    copying those rows out of a full matrix would.
    """

    def __init__(self, residues: npt.NDArray[np.uint8]) -> None:
        self.states: npt.NDArray[np.uint8] = STATE_OF[residues]
        length = int(residues.shape[1])
        weight = 1
        while weight * weight <= length:
            weight *= 2
        #: w**2: what one shared residue adds to the product of two rows.
        self.scale = weight * weight
        exact = length * (self.scale + 1) < _EXACT_FLOAT32
        self.dtype = np.dtype(np.float32 if exact else np.float64)
        # Rows 0-20 of this (22 x 22) table: a state's one-hot, then the weight; row
        # GAP_STATE is all zeros, so a gap neither matches nor overlaps.
        self._table = np.zeros((GAP_STATE + 1, RESIDUE_STATES + 1), dtype=self.dtype)
        self._table[:RESIDUE_STATES, :RESIDUE_STATES] = np.eye(RESIDUE_STATES)
        self._table[:RESIDUE_STATES, RESIDUE_STATES] = weight

    def __len__(self) -> int:
        return int(self.states.shape[0])

    @property
    def width(self) -> int:
        """Numbers per encoded row."""
        return int(self.states.shape[1]) * (RESIDUE_STATES + 1)

    def encode(self, rows: Selection) -> Features:
        """Rows ``rows`` encoded for :meth:`identity_of`."""
        states = self.states[rows]
        return self._table[states].reshape(len(states), self.width)

    def identity_of(self, encoded: Features, other_encoded: Features) -> Floats:
        """Identity of every encoded row in ``encoded`` against every one in ``other_encoded``."""
        product = encoded @ other_encoded.T
        overlap = np.floor(product / self.scale)
        matches = (product - overlap * self.scale).astype(np.float32)
        # Rows that share no residue have no matches either, so 0 / 1 gives their identity, 0.
        result: Floats = matches / np.maximum(overlap, 1).astype(np.float32)
        return result

    def identity(self, rows: Selection, other_rows: Selection = slice(None)) -> Floats:
        """Identity of rows ``rows`` against rows ``other_rows`` (default: all rows)."""
        return self.identity_of(self.encode(rows), self.encode(other_rows))


class RowBuffer:
    """Rows of an encoding collected one batch after another, stored contiguously.

    Products against a run of collected rows then read a slice of this buffer instead of
    gathering a fresh copy of those rows from the encoding each time.
    """

    def __init__(self, encoded: Encoded, capacity: int) -> None:
        self._encoded = encoded
        self._features: Features = np.empty((capacity, encoded.width), dtype=encoded.dtype)
        self._rows: Indices = np.empty(capacity, dtype=np.intp)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def rows(self) -> Indices:
        """The rows collected, in the order they came."""
        return self._rows[: self._size]

    def append(self, rows: Indices) -> None:
        """Collect ``rows`` (rows of the encoding) after those collected so far."""
        end = self._size + len(rows)
        self._features[self._size : end] = self._encoded.encode(rows)
        self._rows[self._size : end] = rows
        self._size = end

    def highest_identity(self, rows: Indices, starts: Indices | int = 0) -> Floats:
        """For each of ``rows`` (rows of the encoding), its highest identity to the rows
        collected from position ``starts`` (one per row, or one for all) on; -inf if none.

        Rows are taken in order of their start, a block at a time; a block's products run as
        a staircase (the rows starting earliest meet the earliest collected rows alone), so
        every row meets exactly the collected rows it asks for, each block in a few products.
        """
        first = np.broadcast_to(np.asarray(starts, dtype=np.intp), rows.shape)
        order = np.argsort(first, kind="stable")
        result = np.full(len(rows), -np.inf, dtype=np.float32)
        for block in range(0, len(rows), BLOCK_ROWS):
            members = order[block : block + BLOCK_ROWS]
            features = self._encoded.encode(rows[members])
            begins = first[members]
            best = result[members]
            steps = np.unique(begins[begins < self._size])
            for begin, end in zip(steps, [*steps[1:], self._size], strict=True):
                upto = int(np.searchsorted(begins, begin, side="right"))
                values = self._highest(features[:upto], slice(begin, end))
                np.maximum(best[:upto], values, out=best[:upto])
            result[members] = best
        return result

    def highest_identity_of(self, features: Features) -> Floats:
        """For each row already encoded in ``features``, its highest identity to all the rows
        collected; -inf if there are none."""
        if self._size == 0:
            return np.full(len(features), -np.inf, dtype=np.float32)
        return self._highest(features, slice(0, self._size))

    def _highest(self, features: Features, collected: slice) -> Floats:
        result: Floats = self._encoded.identity_of(features, self._features[collected]).max(axis=1)
        return result


class Closeness:
    """Each member row's highest identity to a growing set of picked members, kept lazily.

    For farthest-point selection, which only ever asks for the members farthest from the picks
    (lowest highest identity). A member's value is a lower bound: its highest identity to the
    picks made up to its last refresh. It is brought up to date, against the picks made since,
    only when the member could be among those asked for. New picks can only raise a value, so
    a member whose bound is already above what is asked for is left alone, for many rounds if it
    is close to an early pick. Members are positions into ``rows``, rows of ``encoded``.
    """

    def __init__(self, encoded: Encoded, rows: Indices, first: int, capacity: int) -> None:
        """Start with member ``first`` picked and every other member compared with it."""
        self._rows = rows
        self._picks = RowBuffer(encoded, capacity)
        self.value: Floats = np.full(len(rows), -np.inf, dtype=np.float32)
        self._seen: Indices = np.zeros(len(rows), dtype=np.intp)
        self._picked = np.zeros(len(rows), dtype=np.bool_)
        self.pick(np.array([first], dtype=np.intp))
        self._refresh(np.flatnonzero(~self._picked))

    def __len__(self) -> int:
        return len(self._picks)

    @property
    def picked(self) -> Indices:
        """The picked rows (rows of the encoding), in the order they were picked."""
        return self._picks.rows

    def pick(self, members: Indices) -> None:
        """Add ``members`` to the picked set; a picked member's value is +inf."""
        self._picks.append(self._rows[members])
        self._picked[members] = True
        self.value[members] = np.inf

    def smallest(self, count: int) -> Indices:
        """The ``count`` unpicked members farthest from the picks (all, if fewer are left), in
        order of value, ties by position; their values are exact."""
        while True:
            order = self._lowest(REFRESH_AHEAD * count)
            stale = (self._seen[order] < len(self._picks)) & ~self._picked[order]
            if not stale[:count].any():
                head = order[:count]
                return head[~self._picked[head]]
            self._refresh(order[stale])

    def _lowest(self, count: int) -> Indices:
        """The ``count`` members with the lowest values, in order of value, ties by position."""
        if count >= len(self.value):
            return np.argsort(self.value, kind="stable")
        cut = np.partition(self.value, count - 1)[count - 1]
        within = np.flatnonzero(self.value <= cut)
        return within[np.argsort(self.value[within], kind="stable")][:count]

    def _refresh(self, members: Indices) -> None:
        """Bring the values of ``members`` up to date with every pick."""
        if len(members) == 0:
            return
        starts = _coarsen(self._seen[members])
        newer = self._picks.highest_identity(self._rows[members], starts)
        self.value[members] = np.maximum(self.value[members], newer)
        self._seen[members] = len(self._picks)


def _coarsen(starts: Indices) -> Indices:
    """``starts`` lowered onto a subset of their values at least MIN_SEGMENT apart."""
    kept: list[int] = []
    for step in np.unique(starts).tolist():
        if not kept or step - kept[-1] >= MIN_SEGMENT:
            kept.append(step)
    grid = np.array(kept, dtype=np.intp)
    return grid[np.searchsorted(grid, starts, side="right") - 1]
