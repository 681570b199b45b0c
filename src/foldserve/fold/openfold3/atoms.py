"""OpenFold3's all-atom result on AlphaFold's atom37 layout, so every output is shared.

OpenFold3 predicts each heavy atom of each residue and a pLDDT per atom; foldserve's outputs,
compare and report read AlphaFold's ``(residues, 37, 3)`` positions with a per-residue pLDDT.
Standard amino acids' heavy atoms all have an atom37 slot (``OXT`` included), so nothing is
lost; the per-residue pLDDT is the mean over the residue's atoms (issue 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from foldserve.fold.results import FloatArray

if TYPE_CHECKING:
    from foldserve.fold.openfold3.query import OpenFold3Query


@dataclass(frozen=True)
class AllAtomSample:
    """One diffusion sample of one seed, as OpenFold3 returns it."""

    index: int
    #: biotite ``AtomArray`` of the query (chain ids, residue numbers, atom names).
    atom_array: Any
    positions: npt.NDArray[np.float32]  # (atoms, 3) Å
    atom_plddt: npt.NDArray[np.float32]  # (atoms,) 0-100
    pae: npt.NDArray[np.float32]  # (tokens, tokens) Å
    ptm: float
    iptm: float
    ranking_score: float


def to_atom37(
    sample: AllAtomSample, query: OpenFold3Query
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Positions ``(L, 37, 3)``, atom mask ``(L, 37)`` and per-residue pLDDT ``(L,)`` on
    foldserve's residue axis (chains in query order, residues in chain order)."""
    from alphafold.common.residue_constants import atom_order

    atoms = sample.atom_array
    starts = {chain.id: chain.start for chain in query.chains}
    residue = np.array(
        [starts[str(c)] + int(r) - 1 for c, r in zip(atoms.chain_id, atoms.res_id, strict=True)]
    )
    slot = np.array([atom_order.get(str(name), -1) for name in atoms.atom_name])
    kept = slot >= 0  # hydrogens, if any, have no atom37 slot
    length = query.length
    positions = np.zeros((length, 37, 3), dtype=np.float32)
    mask = np.zeros((length, 37), dtype=np.float32)
    positions[residue[kept], slot[kept]] = sample.positions[kept]
    mask[residue[kept], slot[kept]] = 1.0
    sums = np.bincount(residue, weights=sample.atom_plddt, minlength=length)
    counts = np.bincount(residue, minlength=length)
    plddt = (sums / np.maximum(counts, 1)).astype(np.float32)
    return positions, mask, plddt
