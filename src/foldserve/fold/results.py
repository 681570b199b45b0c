"""What a prediction asks for and what it gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from foldserve.errors import InputError
from foldserve.fold.alphafold2.features import MAX_EXTRA_MSA, MAX_MSA_CLUSTERS, InputShape
from foldserve.fold.alphafold2.shape_policy import ShapeChoice
from foldserve.fold.weights import MODEL_NUMBERS
from foldserve.msa.model import Msa

#: ``auto``: AlphaFold's multimer confidence for a complex, mean pLDDT for one chain.
#: ``multimer``: AlphaFold-multimer's ranking confidence, 0.8 ipTM + 0.2 pTM.
#: ``engine``: the engine's own score (OpenFold3's sample ranking score; for AlphaFold2 the
#: multimer confidence, or mean pLDDT for one chain, as ``auto``).
RankBy = Literal["auto", "plddt", "ptm", "iptm", "multimer", "engine"]
RANK_BY_CHOICES: tuple[RankBy, ...] = ("auto", "plddt", "ptm", "iptm", "multimer", "engine")
#: Which AlphaFold2 network: ``auto`` takes the multimer models for more than one chain or
#: copy and the monomer pTM models for one chain.
ModelType = Literal["auto", "monomer_ptm", "multimer"]
MODEL_TYPES: tuple[ModelType, ...] = ("auto", "monomer_ptm", "multimer")
#: The network each model type runs, as ColabFold names it (``--model-type``).
NETWORK_NAMES = {"monomer_ptm": "alphafold2_ptm", "multimer": "alphafold2_multimer_v3"}
FloatArray = npt.NDArray[np.float32]
#: The structure predictors foldserve drives (:mod:`foldserve.fold.engine`).
EngineName = Literal["alphafold2", "openfold3"]
ENGINE_NAMES: tuple[EngineName, ...] = ("alphafold2", "openfold3")
#: The most diffusion samples per seed an OpenFold3 job may ask for.
MAX_DIFFUSION_SAMPLES = 100

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
    rank_by: RankBy = "auto"
    model_type: ModelType = "auto"
    #: Use templates in the models that take them (monomer models 1 and 2, every multimer model).
    templates: bool = False
    #: Stop running further models once one scores above this (ColabFold's --stop-at-score):
    #: mean pLDDT, or pTM x 100 when ranking by pTM.
    stop_at_score: float | None = None
    max_msa_clusters: int = MAX_MSA_CLUSTERS
    max_extra_msa: int = MAX_EXTRA_MSA
    #: OpenFold3 only: structures sampled by the diffusion module per seed; None is
    #: OpenFold3's own default (5).
    num_diffusion_samples: int | None = None

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
        if self.rank_by not in RANK_BY_CHOICES:
            raise bad(
                "rank_by", f"unknown ranking {self.rank_by!r}", f"use {', '.join(RANK_BY_CHOICES)}"
            )
        if self.model_type in ("monomer", "monomer_casp14"):
            raise bad(
                "model_type",
                f"the {self.model_type} preset (DeepMind's weights without the PAE head) is not "
                "offered: it gives no PAE or pTM to rank, plot or compare by",
                "use monomer_ptm, the same network with its PAE head (ColabFold's default)",
            )
        if self.model_type not in MODEL_TYPES:
            raise bad(
                "model_type",
                f"unknown model type {self.model_type!r}",
                f"use {', '.join(MODEL_TYPES)}",
            )
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

        samples = self.num_diffusion_samples
        if samples is not None and not 1 <= samples <= MAX_DIFFUSION_SAMPLES:
            raise bad(
                "num_diffusion_samples",
                f"{samples} diffusion samples is outside 1..{MAX_DIFFUSION_SAMPLES}",
                "use 5 (OpenFold3's default) or fewer for speed",
            )

    def network_for(self, is_complex: bool) -> ModelType:
        """The model type that runs: ``auto`` resolved by whether the input is a complex."""
        if self.model_type != "auto":
            return self.model_type
        return "multimer" if is_complex else "monomer_ptm"

    def ranking_for(self, is_complex: bool) -> RankBy:
        """The ranking metric: ``auto`` resolved as ColabFold resolves it."""
        if self.rank_by != "auto":
            return self.rank_by
        return "multimer" if is_complex else "plddt"


def sibling_field(where: str, field_name: str) -> str:
    """The place of another field where ``where`` names one: ``input.models`` →
    ``input.model_type``, ``--models`` → ``--model-type``."""
    if where.startswith("--"):
        return "--" + field_name.replace("_", "-")
    prefix, _, _ = where.rpartition(".")
    return f"{prefix}.{field_name}" if prefix else field_name


#: ``--templates server`` / ``templates = "server"``: the ColabFold server's template hits.
SERVER_TEMPLATES: Literal["server"] = "server"


@dataclass(frozen=True)
class TemplateSource:
    """Where a prediction's templates come from: the user's structure files, or the folder
    ColabFold server template hits were fetched into (``templates_{101+i}/`` for distinct chain
    ``i``, as ``colabfold_server.fetch_server_templates`` writes it; a chain the server found
    nothing for has no folder).

    The predictor aligns them to each chain (:mod:`foldserve.fold.alphafold2.templates`);
    models that take templates use up to four per chain.
    """

    files: tuple[Path, ...] = ()
    server_dir: Path | None = None
    #: YYYY-MM-DD: templates released later are dropped, when their mmCIF gives the date.
    max_template_date: str | None = None

    @property
    def given(self) -> bool:
        return bool(self.files) or self.server_dir is not None

    def server_chain_dirs(self, chains: int) -> list[Path | None]:
        """Each distinct chain's folder of server hits, or None."""
        assert self.server_dir is not None
        folders = [self.server_dir / f"templates_{101 + i}" for i in range(chains)]
        return [folder if folder.is_dir() else None for folder in folders]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a running prediction, for progress bars and job status."""

    stage: Literal["features", "templates", "compile", "predict", "done"]
    elapsed: float
    model: str | None = None
    seed: int | None = None
    recycle: int | None = None
    num_recycles: int | None = None
    run_index: int = 0
    num_runs: int = 0
    mean_plddt: float | None = None
    ptm: float | None = None
    iptm: float | None = None


ProgressCallback = Callable[[ProgressEvent], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class ModelRun:
    """One model with one seed: coordinates and confidences, unpadded.

    Residue axes run over the whole complex, chain after chain (:attr:`Prediction.chains`).
    """

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
    #: Interface pTM: the multimer models' confidence in how the chains sit together.
    iptm: float | None = None
    #: The engine's own ranking score when it has one (OpenFold3's ``sample_ranking_score``:
    #: 0.8 ipTM + 0.2 pTM + 0.5 disorder - 100 clash).
    engine_score: float | None = None

    @property
    def ranking_confidence(self) -> float:
        """AlphaFold-multimer's ``ranking_confidence``, 0.8 ipTM + 0.2 pTM (pTM without ipTM)."""
        return self.ptm if self.iptm is None else 0.8 * self.iptm + 0.2 * self.ptm

    def score(self, rank_by: RankBy) -> float:
        """The ranking score: mean pLDDT (0-100) or a 0-1 confidence."""
        if rank_by in ("plddt", "auto"):
            return self.mean_plddt
        if rank_by == "ptm":
            return self.ptm
        if rank_by == "iptm":
            return self.ptm if self.iptm is None else self.iptm
        if rank_by == "engine" and self.engine_score is not None:
            return self.engine_score
        if rank_by == "engine" and self.iptm is None:
            return self.mean_plddt
        return self.ranking_confidence

    def score_100(self, rank_by: RankBy) -> float:
        """The ranking score on a 0-100 scale, as ``stop_at_score`` reads it."""
        score = self.score(rank_by)
        on_plddt_scale = rank_by in ("plddt", "auto") or (
            rank_by == "engine" and self.engine_score is None and self.iptm is None
        )
        return score if on_plddt_scale else 100 * score


@dataclass(frozen=True)
class ChainInfo:
    """One chain of the predicted structure: chain ``A`` is the first ``length`` residues."""

    id: str
    #: 1-based entity: copies of one sequence share it (the mmCIF ``entity_id``).
    entity: int
    sequence: str
    #: Offset of the chain's first residue on the prediction's residue axis.
    start: int

    @property
    def length(self) -> int:
        return len(self.sequence)

    @property
    def end(self) -> int:
        return self.start + self.length


def chains_of(sequences: tuple[str, ...], copies: tuple[int, ...]) -> tuple[ChainInfo, ...]:
    """Chains ``A``, ``B``, … for distinct sequences each in ``copies`` copies, in that order
    (the order of ColabFold's header and of AlphaFold's ``PDB_CHAIN_IDS``)."""
    from alphafold.common.protein import PDB_CHAIN_IDS

    chains: list[ChainInfo] = []
    start = 0
    for entity, (sequence, count) in enumerate(zip(sequences, copies, strict=True), start=1):
        for _ in range(count):
            chains.append(ChainInfo(PDB_CHAIN_IDS[len(chains)], entity, sequence, start))
            start += len(sequence)
    return tuple(chains)


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
    #: The network that ran, as ColabFold names it: ``alphafold2_ptm``, ``alphafold2_multimer_v3``;
    #: ``openfold3`` for OpenFold3.
    network: str = "alphafold2_ptm"
    #: The engine that ran.
    name: EngineName = "alphafold2"


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
    #: The chains on the residue axis; a monomer has one, ``A``. Empty means one chain ``A``
    #: holding the whole query (use :attr:`chain_list`).
    chains: tuple[ChainInfo, ...] = ()
    #: The metric ``ranked`` is sorted by, ``auto`` resolved.
    rank_by: RankBy = "plddt"
    #: Templates the models saw, by chain id (names such as ``1abc_A``).
    templates: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Where the templates came from, when the prediction had any.
    template_source: TemplateSource | None = None
    #: What the user should know about the inputs, e.g. templates that were not used.
    warnings: tuple[str, ...] = ()
    #: The shape the network ran at and why (``timings.json`` records it); None for an engine
    #: that chooses no shapes.
    shape_choice: ShapeChoice | None = None

    @property
    def chain_list(self) -> tuple[ChainInfo, ...]:
        if self.chains:
            return self.chains
        return (ChainInfo("A", 1, self.msa.query_sequence, 0),)

    @property
    def is_complex(self) -> bool:
        return len(self.chain_list) > 1

    @property
    def chain_index(self) -> npt.NDArray[np.int32]:
        """Per residue, the 0-based index of its chain in :attr:`chain_list`."""
        return np.concatenate(
            [np.full(c.length, i, dtype=np.int32) for i, c in enumerate(self.chain_list)]
        )

    @property
    def best(self) -> ModelRun:
        return self.ranked[0]

    @property
    def test_weights(self) -> bool:
        return self.engine.test_weights

    @property
    def evoformer_blocks(self) -> int:
        return self.engine.evoformer_blocks
