"""Amber relaxation of predicted models: AlphaFold's own protocol, as ColabFold runs it.

``alphafold.relax.relax.AmberRelaxation`` adds hydrogens and missing atoms (pdbfixer), then runs
restrained Amber99sb minimisations in OpenMM until no residue violates AlphaFold's bond and clash
checks (or ``max_outer_iterations`` is spent), lifting the restraints of the residues that still
do. The settings are ColabFold's (``colabfold.relax``): 2,000 L-BFGS steps at most per round
(AlphaFold's "unlimited" can take very long), tolerance 2.39 kcal/mol, restraint stiffness 10
kcal/mol/Å², 3 rounds. pLDDT stays in the B-factor column, as AlphaFold writes it.

OpenMM and pdbfixer are an optional extra (``foldserve[relax]``): :func:`check_relax_available`
says so in one line, and callers ask it before any prediction starts.

``--relax best`` relaxes the best run only and ``all`` every run, as ``run_alphafold``'s
``models_to_relax``; the relaxed model then takes its run's ``ranked_{i}`` place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from foldserve.errors import InputError
from foldserve.fold.outputs import unrelaxed_pdb
from foldserve.fold.results import ModelRun, Prediction
from foldserve.fold.run_config import RelaxMode

RELAX_EXTRA = "pip install 'foldserve[relax]'"


@dataclass(frozen=True)
class RelaxSettings:
    """AmberRelaxation's knobs, at ColabFold's defaults (``colabfold.relax``)."""

    max_iterations: int = 2000
    tolerance: float = 2.39
    stiffness: float = 10.0
    max_outer_iterations: int = 3


@dataclass(frozen=True)
class RelaxResult:
    """One relaxed model: AlphaFold's relaxed PDB (hydrogens included) and what it cost."""

    pdb: str
    #: Heavy-atom coordinates of the relaxed model in atom37 order (for the mmCIF file).
    positions: npt.NDArray[np.float32]
    atom_mask: npt.NDArray[np.float32]
    seconds: float
    platform: str
    #: Residues AlphaFold's violation checks flag (bond lengths and angles, clashes).
    violations_before: int
    violations_after: int
    #: Heavy-atom RMSD between the input and the relaxed model, no superposition (Å).
    rmsd: float
    initial_energy: float
    final_energy: float


@dataclass(frozen=True)
class Relaxation:
    """The relaxed runs of one prediction, by run name (``model_1_ptm_pred_0``).

    A run AlphaFold could not relax (every minimisation attempt failed: atoms on top of each
    other, as random test weights make them) is in ``failed`` with the reason, and keeps its
    unrelaxed model: the prediction is not lost for it.
    """

    mode: RelaxMode
    platform: str
    models: dict[str, RelaxResult]
    failed: dict[str, str] = field(default_factory=dict)

    def warnings(self) -> tuple[str, ...]:
        return tuple(
            f"{name} could not be relaxed ({reason}); its model is the unrelaxed one"
            for name, reason in self.failed.items()
        )

    def timings(self) -> dict[str, float]:
        """``run_alphafold``'s ``timings.json`` keys: ``relax_{model}``."""
        return {f"relax_{name}": result.seconds for name, result in self.models.items()}


def check_relax_available(*, where: str, use_gpu: bool | None = None) -> str:
    """The OpenMM platform relax will use (``CUDA`` when there is one, else ``CPU``); an
    :class:`InputError` naming ``where`` when OpenMM or pdbfixer is not installed, or
    ``use_gpu`` asks for a CUDA platform OpenMM does not have."""
    try:
        import openmm
        import pdbfixer  # noqa: F401  # AlphaFold's cleanup step needs it
    except ImportError:
        raise InputError(
            "relax asked without OpenMM available (openmm and pdbfixer are not installed)",
            where=where,
            fix=f"{RELAX_EXTRA}, or leave relax at none",
        ) from None
    names = {
        openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())
    }
    if use_gpu is None:
        return "CUDA" if "CUDA" in names else "CPU"
    if use_gpu and "CUDA" not in names:
        raise InputError(
            "relax on the GPU asked, but OpenMM has no CUDA platform",
            where=where,
            fix="pip install 'openmm[cuda12]', or relax on the CPU",
        )
    return "CUDA" if use_gpu else "CPU"


def relax_model(
    pdb_text: str, *, use_gpu: bool | None = None, settings: RelaxSettings = RelaxSettings()
) -> RelaxResult:
    """Relax one model given as PDB text (one chain or several, heavy atoms; B-factors kept).

    ``use_gpu`` None picks OpenMM's CUDA platform when it has one. Raises :class:`InputError`
    when OpenMM is missing, and AlphaFold's ``ValueError`` for a structure it cannot relax
    (a residue without atoms, or every minimisation attempt failing).
    """
    platform = check_relax_available(where="relax", use_gpu=use_gpu)
    from alphafold.common import protein
    from alphafold.relax import amber_minimize, relax

    started = time.perf_counter()
    unrelaxed = protein.from_pdb_string(pdb_text)
    before = _violations(amber_minimize, unrelaxed)
    relaxer = relax.AmberRelaxation(
        max_iterations=settings.max_iterations,
        tolerance=settings.tolerance,
        stiffness=settings.stiffness,
        exclude_residues=[],
        max_outer_iterations=settings.max_outer_iterations,
        use_gpu=platform == "CUDA",
    )
    relaxed_pdb, debug, violations = relaxer.process(prot=unrelaxed)
    seconds = time.perf_counter() - started
    relaxed = protein.from_pdb_string(relaxed_pdb)
    common = (unrelaxed.atom_mask > 0) & (relaxed.atom_mask > 0)
    moved = relaxed.atom_positions[common] - unrelaxed.atom_positions[common]
    return RelaxResult(
        pdb=relaxed_pdb,
        positions=relaxed.atom_positions.astype(np.float32),
        atom_mask=relaxed.atom_mask.astype(np.float32),
        seconds=seconds,
        platform=platform,
        violations_before=before,
        violations_after=int(np.sum(violations)),
        rmsd=float(np.sqrt(np.mean(np.sum(moved**2, axis=-1)))),
        initial_energy=float(debug["initial_energy"]),
        final_energy=float(debug["final_energy"]),
    )


def _violations(amber_minimize: Any, prot: Any) -> int:
    """Residues in violation, by the checks AlphaFold's relax loop runs (on the CPU, as
    ``run_pipeline`` does: some JAX versions fail at them on a GPU)."""
    import jax

    with jax.default_device(jax.devices("cpu")[0]):
        return int(amber_minimize.get_violation_metrics(prot)["num_residue_violations"])


def runs_to_relax(prediction: Prediction, mode: RelaxMode) -> tuple[ModelRun, ...]:
    """``best``: the top-ranked run; ``all``: every run; ``none``: no run."""
    if mode == "best":
        return prediction.ranked[:1]
    if mode == "all":
        return prediction.ranked
    return ()


#: Told ``(run name, index from 1, count)`` before each run is relaxed.
RelaxProgress = Callable[[str, int, int], None]


def relax_prediction(
    prediction: Prediction,
    mode: RelaxMode,
    *,
    use_gpu: bool | None = None,
    settings: RelaxSettings = RelaxSettings(),
    progress: RelaxProgress | None = None,
) -> Relaxation:
    """Relax the runs ``mode`` names, best first; a run AlphaFold cannot relax is noted in
    ``failed`` (AlphaFold raises ``ValueError`` for it) and the others go on."""
    platform = check_relax_available(where="relax", use_gpu=use_gpu) if mode != "none" else "-"
    runs = runs_to_relax(prediction, mode)
    models: dict[str, RelaxResult] = {}
    failed: dict[str, str] = {}
    for index, run in enumerate(runs, start=1):
        if progress is not None:
            progress(run.name, index, len(runs))
        pdb = unrelaxed_pdb(prediction, run)
        try:
            models[run.name] = relax_model(pdb, use_gpu=platform == "CUDA", settings=settings)
        except ValueError as exc:
            failed[run.name] = str(exc)
    return Relaxation(mode=mode, platform=platform, models=models, failed=failed)
