"""What a prediction asks for and what it gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from foldserve.errors import InputError
from foldserve.fold.features import InputShape
from foldserve.fold.weights import MODEL_NUMBERS
from foldserve.msa.model import Msa

RankBy = Literal["plddt", "ptm"]
FloatArray = npt.NDArray[np.float32]

#: The largest seed: JAX's PRNG keys and numpy's RandomState take 32 bits.
MAX_SEED = 2**32 - 1
MAX_RECYCLES = 48
MAX_SEEDS = 1000


@dataclass(frozen=True)
class PredictOptions:
    """The knobs of one prediction; field names match the job JSON (DESIGN.md)."""

    models: tuple[int, ...] = MODEL_NUMBERS
    num_recycles: int = 3
    recycle_early_stop_tolerance: float | None = None
    seed: int = 0
    num_seeds: int = 1
    rank_by: RankBy = "plddt"
    templates: bool = False

    def __post_init__(self) -> None:
        def bad(name: str, problem: str, fix: str) -> InputError:
            return InputError(problem, where=name, fix=fix)

        if not self.models:
            raise bad("models", "no model chosen", "give one or more of 1,2,3,4,5")
        unknown = sorted(set(self.models) - set(MODEL_NUMBERS))
        if unknown:
            raise bad(
                "models", f"no AlphaFold2 model {unknown[0]}", "choose among 1, 2, 3, 4 and 5"
            )
        if len(set(self.models)) != len(self.models):
            raise bad("models", "a model is listed twice", "list each model once")
        if not 0 <= self.num_recycles <= MAX_RECYCLES:
            raise bad(
                "num_recycles",
                f"{self.num_recycles} recycles is outside 0..{MAX_RECYCLES}",
                f"use 3 (AlphaFold's default) or up to {MAX_RECYCLES}",
            )
        tolerance = self.recycle_early_stop_tolerance
        if tolerance is not None and tolerance < 0:
            raise bad(
                "recycle_early_stop_tolerance",
                f"tolerance {tolerance} is negative",
                "give a distance in Å such as 0.5, or leave it out",
            )
        if not 1 <= self.num_seeds <= MAX_SEEDS:
            raise bad(
                "num_seeds", f"{self.num_seeds} seeds", f"give between 1 and {MAX_SEEDS} seeds"
            )
        last_seed = self.seed + self.num_seeds - 1
        if not 0 <= self.seed <= last_seed <= MAX_SEED:
            raise bad(
                "seed",
                f"seeds {self.seed} to {last_seed} are outside 0..{MAX_SEED}",
                f"give a seed from 0 to {MAX_SEED - self.num_seeds + 1} (32 bits, as JAX takes)",
            )
        if self.rank_by not in ("plddt", "ptm"):
            raise bad("rank_by", f"unknown ranking {self.rank_by!r}", "use plddt or ptm")
        if self.templates:
            raise bad(
                "templates",
                "templates are not supported yet",
                "leave templates off; foldserve predicts from the MSA alone for now",
            )


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a running prediction, for progress bars and job status."""

    stage: Literal["features", "compile", "predict", "done"]
    elapsed: float
    model: str | None = None
    seed: int | None = None
    recycle: int | None = None
    num_recycles: int | None = None
    run_index: int = 0
    num_runs: int = 0
    mean_plddt: float | None = None
    ptm: float | None = None


ProgressCallback = Callable[[ProgressEvent], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class ModelRun:
    """One model with one seed: coordinates and confidences, unpadded."""

    model: str
    seed: int
    positions: FloatArray  # (L, 37, 3) Å
    atom_mask: FloatArray  # (L, 37)
    plddt: FloatArray  # (L,)
    pae: FloatArray  # (L, L) Å
    max_pae: float
    ptm: float
    mean_plddt: float
    recycles: int
    tolerance: float | None
    seconds: float

    @property
    def name(self) -> str:
        """DeepMind's name for this run, e.g. ``model_1_ptm_pred_0``."""
        return f"{self.model}_pred_{self.seed}"

    def score(self, rank_by: RankBy) -> float:
        return self.mean_plddt if rank_by == "plddt" else self.ptm


@dataclass(frozen=True)
class Prediction:
    """All runs of one job, best first."""

    msa: Msa
    aatype: npt.NDArray[np.int32]
    residue_index: npt.NDArray[np.int32]
    ranked: tuple[ModelRun, ...]
    options: PredictOptions
    shape: InputShape
    test_weights: bool
    evoformer_blocks: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def best(self) -> ModelRun:
        return self.ranked[0]
