"""Write a prediction in DeepMind's ``run_alphafold`` layout (DESIGN.md, "Prediction directory").

Tools written for AlphaFold's output keep working: ``ranked_{i}.pdb``/``.cif``,
``unrelaxed_{model}_pred_{seed}.pdb``, ``ranking_debug.json``, ``timings.json``, and per run the
AlphaFold DB's PAE and confidence JSON. ``scores.json`` has one line per run, and ``msa.a3m`` is
the alignment the network actually saw. Every JSON file carries ``test_weights``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from foldserve._version import __version__
from foldserve.files import copy_file, write_text
from foldserve.fold.results import ModelRun, Prediction
from foldserve.msa.writing import write as write_msa
from foldserve.structure.model_files import ModelCoordinates, to_mmcif, to_pdb

ENGINE = "alphafold2_ptm"
BEST_MODEL = "ranked_0.pdb"


def confidence_category(plddt: float) -> str:
    """AlphaFold DB's pLDDT bands: very high (H), confident (M), low (L), very low (D)."""
    if plddt >= 90:
        return "H"
    if plddt >= 70:
        return "M"
    if plddt >= 50:
        return "L"
    return "D"


def _coordinates(prediction: Prediction, run: ModelRun) -> ModelCoordinates:
    return ModelCoordinates(
        aatype=prediction.aatype,
        residue_index=prediction.residue_index + 1,
        positions=run.positions,
        atom_mask=run.atom_mask,
        plddt=run.plddt,
    )


def write_prediction(
    prediction: Prediction, out_dir: Path, *, best_model: Path | None = None
) -> dict[str, Path]:
    """Write every output file into ``out_dir``; return them by name.

    Each file appears whole or not at all. ``best_model`` names where a copy of the best model
    (``ranked_0.pdb``) goes too, e.g. the ``--output`` of ``foldserve predict``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def put(name: str, text: str) -> None:
        files[name] = write_text(out_dir / name, text)

    test = prediction.test_weights
    for rank, run in enumerate(prediction.ranked):
        coordinates = _coordinates(prediction, run)
        remarks = _remarks(prediction, run)
        pdb = to_pdb(coordinates, remarks=remarks, test_weights=test)
        put(f"unrelaxed_{run.name}.pdb", pdb)
        put(f"ranked_{rank}.pdb", pdb)
        cif = to_mmcif(coordinates, name=f"ranked_{rank}", remarks=remarks, test_weights=test)
        put(f"ranked_{rank}.cif", cif)
        put(f"pae_{run.name}.json", _dumps([_pae_record(run, test)]))
        put(f"confidence_{run.name}.json", _dumps(_confidence_record(run, test)))
    put("ranking_debug.json", _dumps(ranking_debug(prediction), indent=2))
    put("timings.json", _dumps({**_rounded(prediction.timings), "test_weights": test}, indent=2))
    put("scores.json", scores_json(prediction))
    msa_path = out_dir / "msa.a3m"
    write_msa(prediction.msa, msa_path, format="a3m")
    files["msa.a3m"] = msa_path
    if best_model is not None:
        copy_file(files[BEST_MODEL], best_model)
    return files


def ranking_debug(prediction: Prediction) -> dict[str, Any]:
    """DeepMind's ``ranking_debug.json`` for monomer models, with the pTMs beside the pLDDTs."""
    return {
        "plddts": {run.name: round(run.mean_plddt, 2) for run in prediction.ranked},
        "ptms": {run.name: round(run.ptm, 4) for run in prediction.ranked},
        "rank_by": prediction.options.rank_by,
        "order": [run.name for run in prediction.ranked],
        "test_weights": prediction.test_weights,
    }


def run_scores(rank: int, run: ModelRun) -> dict[str, Any]:
    """One run's place and scores, as ``scores.json`` and the job output list them."""
    return {
        "rank": rank,
        "model": run.model,
        "seed": run.seed,
        "mean_plddt": round(run.mean_plddt, 2),
        "ptm": round(run.ptm, 4),
        "max_pae": round(run.max_pae, 2),
        "recycles": run.recycles,
    }


def scores_json(prediction: Prediction) -> str:
    """A JSON array with one line per run, best first."""
    lines = [
        json.dumps({**run_scores(rank, run), "test_weights": prediction.test_weights})
        for rank, run in enumerate(prediction.ranked)
    ]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def _pae_record(run: ModelRun, test_weights: bool) -> dict[str, Any]:
    return {
        "predicted_aligned_error": np.round(run.pae.astype(float), 2).tolist(),
        "max_predicted_aligned_error": round(run.max_pae, 2),
        "test_weights": test_weights,
    }


def _confidence_record(run: ModelRun, test_weights: bool) -> dict[str, Any]:
    scores = np.round(run.plddt.astype(float), 2).tolist()
    return {
        "residueNumber": list(range(1, len(scores) + 1)),
        "confidenceScore": scores,
        "confidenceCategory": [confidence_category(s) for s in scores],
        "test_weights": test_weights,
    }


def _remarks(prediction: Prediction, run: ModelRun) -> list[str]:
    return [
        f"foldserve {__version__} {ENGINE} {run.model} seed {run.seed}",
        f"mean pLDDT {run.mean_plddt:.2f} pTM {run.ptm:.4f} recycles {run.recycles}",
        f"MSA {Path(prediction.msa.source).name}: {len(prediction.msa)} rows",
    ]


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 3) for key, value in values.items()}


def _dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent) + "\n"
