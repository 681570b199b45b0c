"""Read protein chains from a PDB or mmCIF file: CA traces, sequences and B-factors.

gemmi does the parsing. What this module decides is which atoms a comparison sees:

- the first model of a multi-model file (NMR ensembles), unless another is asked for;
- the first alternative conformation of each atom and residue (gemmi's ``first_conformer``,
  which is also what TM-align and most viewers use);
- amino-acid residues that have a CA, including modified ones (MSE → M); waters and ligands are
  skipped; residues with insertion codes are separate residues (``52A`` after ``52``);
- a chain without an id (blank column 22 in a PDB file) is named ``""`` and is still found by
  default; asking for it by name takes ``--chain ""``;
- :func:`read_chains` gives every protein chain (a complex), :func:`read_chain` one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gemmi
import numpy as np
import numpy.typing as npt

from foldserve.errors import InputError


@dataclass(frozen=True)
class Chain:
    """The CA atoms of one chain, in order, with their B-factors (pLDDT in predicted models)."""

    source: str
    label: str  # the file name, with ":chain" when the file has more than one protein chain
    chain_id: str
    sequence: str
    residue_ids: tuple[str, ...]
    ca: npt.NDArray[np.float64]
    b_factors: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.sequence)

    @property
    def plddt(self) -> npt.NDArray[np.float64] | None:
        """None when every B-factor is the same: an empty column reads as 0 or as gemmi's 20."""
        return None if bool(np.ptp(self.b_factors) == 0) else self.b_factors


def read_structure(path: str | Path) -> gemmi.Structure:
    """Parse a PDB or mmCIF file (gzip fine); one-line errors for unreadable ones."""
    source = str(path)
    if not Path(source).is_file():
        raise InputError("no such file", where=source, fix="give the path of a PDB or mmCIF file")
    try:
        structure = gemmi.read_structure(source)
    except (RuntimeError, ValueError) as exc:
        raise InputError(
            f"not a readable PDB or mmCIF file ({str(exc).splitlines()[0]})",
            where=source,
            fix="give a PDB (.pdb) or mmCIF (.cif) file",
        ) from None
    structure.remove_alternative_conformations()
    return structure


def _amino_acid_residues(chain: gemmi.Chain) -> list[tuple[gemmi.Residue, str]]:
    """Residues of ``chain`` that are amino acids with a CA, with their one-letter codes."""
    picked = []
    for residue in chain:
        info = gemmi.find_tabulated_residue(residue.name)
        if info is None or not info.is_amino_acid() or residue.find_atom("CA", "*") is None:
            continue
        code = info.one_letter_code.upper()
        picked.append((residue, code if code.isalpha() else "X"))
    return picked


def read_chain(path: str | Path, chain: str | None = None, *, model: int = 0) -> Chain:
    """The chain named ``chain`` (default: the first with amino acids) of model ``model``."""
    chains = read_chains(path, model=model)
    if chain is None:
        return chains[0]
    for found in chains:
        if found.chain_id == chain:
            return found
    names = ", ".join(repr(found.chain_id) for found in chains)
    raise InputError(
        f"no protein chain {chain!r}", where=str(path), fix=f"pick one of the chains {names}"
    )


def read_chains(path: str | Path, *, model: int = 0) -> tuple[Chain, ...]:
    """Every protein chain of model ``model``, in the file's order (a complex's chains)."""
    source = str(path)
    structure = read_structure(source)
    if model >= len(structure):
        raise InputError(
            f"model {model + 1} asked for, the file has {len(structure)}",
            where=source,
            fix=f"pick a model from 1 to {len(structure)}",
        )
    proteins = {c.name: residues for c in structure[model] if (residues := _amino_acid_residues(c))}
    if not proteins:
        raise InputError(
            "no amino-acid residues with a CA atom",
            where=source,
            fix="give a protein structure in PDB or mmCIF format",
        )
    name = Path(source).name
    return tuple(
        _chain(source, name if len(proteins) == 1 else f"{name}:{chain or '-'}", chain, residues)
        for chain, residues in proteins.items()
    )


def _chain(source: str, label: str, chain: str, residues: list[tuple[gemmi.Residue, str]]) -> Chain:
    atoms = [residue.find_atom("CA", "*") for residue, _ in residues]
    return Chain(
        source=source,
        label=label,
        chain_id=chain,
        sequence="".join(code for _, code in residues),
        residue_ids=tuple(str(residue.seqid).strip() for residue, _ in residues),
        ca=np.array([atom.pos.tolist() for atom in atoms], dtype=np.float64),
        b_factors=np.array([atom.b_iso for atom in atoms], dtype=np.float64),
    )
