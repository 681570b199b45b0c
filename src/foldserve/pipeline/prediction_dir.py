"""Read back a prediction directory (DESIGN.md, "Prediction directory"; written by
:func:`foldserve.fold.outputs.write_prediction`): ranked models, their PAE, scores and MSA.

Only ``ranked_{i}.pdb`` (or ``.cif``) files are required, so a directory from DeepMind's
``run_alphafold`` or from another tool that keeps its layout is read too; what is missing
(PAE, scores, the MSA) is simply left out of the report.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from foldserve.errors import InputError

RANKED = re.compile(r"ranked_(\d+)\.(pdb|cif)$")


@dataclass(frozen=True)
class RankedModel:
    rank: int
    path: Path
    name: str  # DeepMind's run name, e.g. model_1_ptm_pred_0, or ranked_{i} when unknown
    mean_plddt: float | None
    ptm: float | None

    @property
    def label(self) -> str:
        return f"ranked_{self.rank}"

    def pae(self, directory: Path) -> npt.NDArray[np.float64] | None:
        """The model's PAE matrix from ``pae_{name}.json`` (AlphaFold DB format), if present."""
        path = directory / f"pae_{self.name}.json"
        if not path.is_file():
            return None
        record = _load_json(path)
        if isinstance(record, list):
            record = record[0] if record else {}
        matrix = record.get("predicted_aligned_error") if isinstance(record, dict) else None
        if matrix is None:
            raise InputError(
                "no predicted_aligned_error", where=str(path), fix="rewrite the prediction"
            )
        return np.asarray(matrix, dtype=np.float64)


@dataclass(frozen=True)
class PredictionDir:
    path: Path
    models: tuple[RankedModel, ...]
    test_weights: bool

    @property
    def msa(self) -> Path | None:
        path = self.path / "msa.a3m"
        return path if path.is_file() else None


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", where=str(path)) from None


def load(directory: str | Path) -> PredictionDir:
    """The ranked models of ``directory``, best first; an error when it holds none."""
    path = Path(directory)
    if not path.is_dir():
        raise InputError(
            "not a directory", where=str(path), fix="give the --out-dir of foldserve predict"
        )
    files: dict[int, Path] = {}
    for candidate in sorted(path.iterdir(), key=lambda p: p.suffix != ".pdb"):
        match = RANKED.match(candidate.name)
        if match:
            files.setdefault(int(match.group(1)), candidate)
    if not files:
        raise InputError(
            "no ranked_0.pdb or ranked_0.cif here",
            where=str(path),
            fix="give a prediction directory (the --out-dir of foldserve predict)",
        )
    debug_path = path / "ranking_debug.json"
    debug = _load_json(debug_path) if debug_path.is_file() else {}
    order = debug.get("order", [])
    models = []
    for rank in sorted(files):
        name = order[rank] if rank < len(order) else f"ranked_{rank}"
        plddt = debug.get("plddts", {}).get(name)
        ptm = debug.get("ptms", {}).get(name)
        models.append(RankedModel(rank, files[rank], name, plddt, ptm))
    return PredictionDir(path, tuple(models), bool(debug.get("test_weights", False)))
