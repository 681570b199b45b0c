"""Byte-level lookup tables shared by the readers, the writers and the statistics.

Rows are kept as ASCII bytes in numpy ``uint8`` arrays; these 256-entry tables classify or map
every byte in one vectorised indexing step instead of a Python loop per character.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

GAP = ord("-")
DOT = ord(".")

BoolTable = npt.NDArray[np.bool_]
ByteTable = npt.NDArray[np.uint8]


def _table(chars: bytes) -> BoolTable:
    table = np.zeros(256, dtype=np.bool_)
    table[np.frombuffer(chars, dtype=np.uint8)] = True
    return table


UPPER_LETTERS = bytes(range(ord("A"), ord("Z") + 1))
LOWER_LETTERS = bytes(range(ord("a"), ord("z") + 1))

IS_UPPER: BoolTable = _table(UPPER_LETTERS)
IS_LOWER: BoolTable = _table(LOWER_LETTERS)
IS_RESIDUE: BoolTable = IS_UPPER | IS_LOWER
IS_GAP: BoolTable = _table(b"-.")
IS_VALID: BoolTable = IS_RESIDUE | IS_GAP
IS_UPPER_OR_GAP: BoolTable = IS_UPPER | _table(b"-")
IS_NUCLEOTIDE: BoolTable = _table(b"ACGTUNacgtun")

# Map any aligned character onto the canonical alphabet of a query-projected row:
# residues upper-cased, both gap characters to '-'.
TO_CANONICAL: ByteTable = np.arange(256, dtype=np.uint8)
TO_CANONICAL[IS_LOWER] -= 32
TO_CANONICAL[DOT] = GAP

# Residue index used for identity computations: 20 amino acids, X for anything else, gap last.
AMINO_ACIDS = b"ARNDCQEGHILKMFPSTWYV"
GAP_STATE = 21
STATE_OF: ByteTable = np.full(256, 20, dtype=np.uint8)
STATE_OF[np.frombuffer(AMINO_ACIDS, dtype=np.uint8)] = np.arange(20, dtype=np.uint8)
STATE_OF[GAP] = GAP_STATE

TO_LOWER: ByteTable = np.arange(256, dtype=np.uint8)
TO_LOWER[IS_UPPER] += 32

# The same classes as byte strings, for ``bytes.translate``, which runs in C at memory speed on
# a whole block (a numpy table lookup costs several times more per byte).
UPPER_AND_GAP = UPPER_LETTERS + b"-"
LOWER_AND_DOT = LOWER_LETTERS + b"."
TO_LOWER_BYTES = TO_LOWER.tobytes()
TO_CANONICAL_BYTES = TO_CANONICAL.tobytes()
