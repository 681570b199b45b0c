"""PDB and mmCIF text for a predicted model, pLDDT in the B-factor column.

The atom records come from AlphaFold's own writers (``alphafold.common.protein``), so files read
the same as DeepMind's and ColabFold's; this module adds the header remarks that say how the
model was made (and, loudly, when it was made with random test weights). PDB and mmCIF 1.1 hold
printable ASCII only, so anything else in a remark (a Unicode file or row name, a control
character) is written as a ``\\u`` escape; the A3M and JSON outputs keep the original text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

TEST_WEIGHTS_NOTICE = "made with random TEST WEIGHTS: not a protein structure"


@dataclass(frozen=True)
class ModelCoordinates:
    """One chain's atom37 coordinates with per-residue pLDDT; ``residue_index`` is 1-based."""

    aatype: npt.NDArray[np.int32]
    residue_index: npt.NDArray[np.int32]
    positions: npt.NDArray[np.float32]
    atom_mask: npt.NDArray[np.float32]
    plddt: npt.NDArray[np.float32]

    def _protein(self) -> object:
        from alphafold.common import protein

        return protein.Protein(
            atom_positions=self.positions,
            aatype=self.aatype,
            atom_mask=self.atom_mask,
            residue_index=self.residue_index,
            chain_index=np.zeros(len(self.aatype), dtype=np.int32),
            b_factors=self.plddt[:, None] * self.atom_mask,
        )


def to_pdb(model: ModelCoordinates, *, remarks: list[str], test_weights: bool) -> str:
    """PDB text: ``REMARK 1`` lines, then AlphaFold's ATOM records."""
    from alphafold.common import protein

    header = "".join(f"REMARK   1 {line[:69]}\n" for line in _header(remarks, test_weights))
    return header + str(protein.to_pdb(model._protein()))


def to_mmcif(model: ModelCoordinates, *, name: str, remarks: list[str], test_weights: bool) -> str:
    """mmCIF text from AlphaFold's writer, with the remarks as comments after ``data_``."""
    from alphafold.common import protein

    text = str(protein.to_mmcif(model._protein(), file_id=name, model_type="Monomer"))
    comments = "".join(f"# {line}\n" for line in _header(remarks, test_weights))
    first_line_end = text.index("\n") + 1
    return text[:first_line_end] + comments + text[first_line_end:]


def _header(remarks: list[str], test_weights: bool) -> list[str]:
    """The provenance lines, led by the test-weights notice when it applies, as printable ASCII."""
    lines = [TEST_WEIGHTS_NOTICE.upper(), *remarks] if test_weights else remarks
    return [printable_ascii(line) for line in lines]


def printable_ascii(text: str) -> str:
    """``text`` with every character outside printable ASCII escaped: ``☃`` → ``\\u2603``."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if c.isascii() and c.isprintable() else ascii(c)[1:-1] for c in text)
