"""``config.json`` of a prediction directory: how the run was made, and its own file list.

ColabFold writes a ``config.json`` of the run's settings beside its models; foldserve writes
one too, with the settings, the MSA the network saw, the weights (and their fingerprint), the
device and the versions, so a folder read months later still says what it holds. ``files``
lists every file the run wrote: readers (``report``, ``compare``) take the run's models from
it, never from a glob that could pick up a stranger's file.

A complex's record also lists its chains (id, entity, length, sequence), the model type that
ran, the resolved ranking metric and the templates each chain used. Every field added since the
format's first version has a default, so older records still read (as monomer runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from foldserve.errors import InputError
from foldserve.msa.search.results import SearchSummary

CONFIG_NAME = "config.json"
#: Amber relaxation of the predicted models (:mod:`foldserve.fold.relax`).
RelaxMode = Literal["none", "best", "all"]
#: Tells a foldserve ``config.json`` from ColabFold's (which has no such key).
FORMAT = "foldserve-run/1"


def check_relax(value: str, *, where: str) -> RelaxMode:
    """``value`` as a relax choice (none, best or all); an error naming ``where`` otherwise."""
    if value not in get_args(RelaxMode):
        raise InputError(
            f"unknown relax choice {value!r}", where=where, fix="use none, best or all"
        )
    return cast(RelaxMode, value)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RunMsa(_Frozen):
    """The alignment as the network saw it."""

    source: str
    format: str
    query_name: str
    query_length: int
    depth: int
    neff: float | None = None
    #: Cluster centres and extra rows the network reads (the rest of a deep MSA is unused).
    clusters: int
    extra: int
    #: Where the MSA came from when foldserve searched for it (tool, databases or server, hits).
    search: SearchSummary | None = None


class RunWeights(_Frozen):
    params_dir: str
    fingerprint: str
    test_weights: bool
    evoformer_blocks: int


class RunChain(_Frozen):
    """One chain of the predicted structure, in the models' order (``A`` first)."""

    id: str
    #: 1-based entity: copies of one sequence share it (the models' mmCIF ``entity_id``).
    entity: int
    length: int
    sequence: str


class RunTemplates(_Frozen):
    """The templates the models saw, by chain id, and where they came from."""

    used: dict[str, tuple[str, ...]] = {}
    #: The user's template files (``--templates PATH``).
    files: tuple[str, ...] = ()
    #: The folder of ColabFold server template hits (``--templates server``).
    server_dir: str | None = None
    #: YYYY-MM-DD: templates released later were dropped.
    max_template_date: str | None = None


class RunSettings(_Frozen):
    """The knobs, named as the job JSON and the command line name them."""

    models: tuple[int, ...]
    num_recycles: int
    recycle_early_stop_tolerance: float | None = None
    seed: int
    num_seeds: int
    rank_by: str
    #: As asked (``auto`` included); :attr:`RunConfig.model_type` is the one that ran.
    model_type: str = "monomer_ptm"
    #: Templates asked for (models 1 and 2 of the monomer models, every multimer model).
    templates: bool = False
    stop_at_score: float | None = None
    max_msa_clusters: int
    max_extra_msa: int
    #: Amber relaxation asked for (none, best or all) and the runs it relaxed, best first.
    relax: RelaxMode = "none"
    relaxed: tuple[str, ...] = ()
    #: OpenFold3's structures per seed (None for AlphaFold2).
    num_diffusion_samples: int | None = None


class RunConfig(_Frozen):
    format: str = FORMAT
    #: The engine that ran: alphafold2 or openfold3 (older records hold the network's name).
    engine: str
    #: The network that ran, as ColabFold names it: alphafold2_ptm, alphafold2_multimer_v3;
    #: openfold3 (None in older records: see ``engine``).
    network: str | None = None
    #: monomer_ptm or multimer: the AlphaFold2 model type that ran; openfold3 for OpenFold3.
    model_type: str = "monomer_ptm"
    #: The metric the models are ranked by, ``auto`` resolved (None in older records: see
    #: ``settings.rank_by``).
    rank_by: str | None = None
    #: The chains, ``A`` first; one for a monomer (empty in older records).
    chains: tuple[RunChain, ...] = ()
    #: None when the run used no templates.
    templates: RunTemplates | None = None
    created: str
    settings: RunSettings
    msa: RunMsa
    weights: RunWeights
    device: str
    precision: str
    #: The padded shape the compiled network ran at, and why that one.
    shape: dict[str, int]
    versions: dict[str, str]
    test_weights: bool
    #: Every file of the run, ``config.json`` included, relative to the directory.
    files: tuple[str, ...] = ()


def read_config(directory: Path) -> RunConfig | None:
    """The foldserve ``config.json`` of ``directory``; None when there is none or it is
    another tool's (ColabFold's has different keys)."""
    path = directory / CONFIG_NAME
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    if FORMAT not in text:
        return None
    try:
        return RunConfig.model_validate_json(text)
    except ValidationError as exc:
        raise InputError(
            f"not a readable foldserve run record ({exc.error_count()} problem(s))",
            where=str(path),
            fix="predict again into a new folder",
        ) from None
