"""What a prediction asks for and what it gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from foldserve.errors import InputError
from foldserve.fold.features import MAX_EXTRA_MSA, MAX_MSA_CLUSTERS, InputShape
from foldserve.fold.weights import MODEL_NUMBERS
from foldserve.msa.model import Msa

RankBy = Literal["plddt", "ptm"]
FloatArray = npt.NDArray[np.float32]

#: The largest seed: JAX's PRNG keys and numpy's RandomState take 32 bits.
MAX_SEED = 2**32 - 1
MAX_RECYCLES = 48
MAX_SEEDS = 1000
#: The most cluster centres and extra rows foldserve lets a job ask the network to read.
LIMIT_MSA_CLUSTERS = 2048
LIMIT_EXTRA_MSA = 20480


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
    #: Stop running further models once one scores above this (ColabFold's --stop-at-score):
    #: mean pLDDT, or pTM x 100 when ranking by pTM.
    stop_at_score: float | None = None
    max_msa_clusters: int = MAX_MSA_CLUSTERS
    max_extra_msa: int = MAX_EXTRA_MSA

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
        if self.stop_at_score is not None and not 0 <= self.stop_at_score <= 100:
            raise bad(
                "stop_at_score",
                f"{self.stop_at_score} is outside 0..100",
                "give a pLDDT-scale score such as 85 (pTM x 100 when ranking by pTM)",
            )
        if not 1 <= self.max_msa_clusters <= LIMIT_MSA_CLUSTERS:
            raise bad(
                "max_msa_clusters",
                f"{self.max_msa_clusters} cluster centres is outside 1..{LIMIT_MSA_CLUSTERS}",
                f"use {MAX_MSA_CLUSTERS} (AlphaFold2's default) or fewer for speed",
            )
        if not 1 <= self.max_extra_msa <= LIMIT_EXTRA_MSA:
            raise bad(
                "max_extra_msa",
                f"{self.max_extra_msa} extra rows is outside 1..{LIMIT_EXTRA_MSA}",
                f"use {MAX_EXTRA_MSA} (AlphaFold2's default) or fewer for speed",
            )
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

    #: Every array the network returned for the last recycle, unpadded (``--save-all``).
    raw: dict[str, Any] | None = field(default=None, repr=False)

    def score(self, rank_by: RankBy) -> float:
        return self.mean_plddt if rank_by == "plddt" else self.ptm

    def score_100(self, rank_by: RankBy) -> float:
        """The ranking score on a 0-100 scale, as ``stop_at_score`` reads it."""
        return self.mean_plddt if rank_by == "plddt" else 100 * self.ptm


@dataclass(frozen=True)
class EngineInfo:
    """What made a prediction: the weights, the device and the arithmetic."""

    params_dir: str
    #: A short hash of the weights (:func:`foldserve.fold.weights.fingerprint`).
    weights_fingerprint: str
    test_weights: bool
    evoformer_blocks: int
    device: str
    precision: Literal["bfloat16", "float32"]


@dataclass(frozen=True)
class Prediction:
    """All runs of one job, best first."""

    msa: Msa
    aatype: npt.NDArray[np.int32]
    residue_index: npt.NDArray[np.int32]
    ranked: tuple[ModelRun, ...]
    options: PredictOptions
    shape: InputShape
    engine: EngineInfo
    timings: dict[str, float] = field(default_factory=dict)
    #: Runs not made because an earlier one reached ``options.stop_at_score``.
    skipped_runs: int = 0

    @property
    def best(self) -> ModelRun:
        return self.ranked[0]

    @property
    def test_weights(self) -> bool:
        return self.engine.test_weights

    @property
    def evoformer_blocks(self) -> int:
        return self.engine.evoformer_blocks
