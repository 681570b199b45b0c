"""The fold job's output (DESIGN.md, "Fold job output"): its model, and building it from a
written prediction.

Files go inline while the serialised output stays under the inline limit, the most wanted first
(the best model, then the scores); the rest are referenced by URL when the caller can serve
them (the self-hosted endpoint's results route, or a bucket's presigned URL), and otherwise
left out with a warning that lists them; the best model (``ranked_0``) is never left out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator

from foldserve._version import __version__
from foldserve.fold.alphafold2.features import msa_sizes
from foldserve.fold.outputs import run_scores
from foldserve.fold.results import ENGINE_NAMES, Prediction
from foldserve.jobs.input import OutputKind
from foldserve.jobs.wire import WireModel

DEFAULT_INLINE_LIMIT = 2 << 20

#: ``url_for(name, path)``: where a file that does not fit inline can be fetched, or None.
UrlFor = Callable[[str, Path], str | None]

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256, hex")]


class ChainSummary(WireModel):
    """One chain of the predicted complex, in the structure's order."""

    id: str
    """The chain's id in the models (PDB and mmCIF): A, B, … in order, copies one after
    another."""
    entity: int
    """1-based: copies of one sequence share it (one entity per entry of the input's chains)."""
    length: int
    sequence: str
    name: str | None = None
    """The input's ``chains[i].id`` of this chain's entity, when given."""


class QuerySummary(WireModel):
    name: str
    """The query row's name (a complex MSA's: the chains' names)."""
    length: int
    """Residues of the query row: each distinct chain once."""
    sequence: str
    chains: tuple[ChainSummary, ...] = ()
    """For a complex (or a job sent as chains): every chain of the structure."""


class MsaSummary(WireModel):
    depth: int
    """Rows of the MSA the job was given."""
    used: int
    """Rows the model read (cluster centres and extra sequences)."""


class RankingEntry(WireModel):
    """One model run, best first; the same fields as a line of ``scores.json``."""

    rank: int
    model: str
    seed: int
    mean_plddt: float
    ptm: float
    iptm: float | None = None
    """Interface pTM, from the multimer models; absent (null) for a monomer model."""
    ranking_confidence: float | None = None
    """AlphaFold-multimer's ranking confidence, 0.8 ipTM + 0.2 pTM; with ``iptm`` only."""
    max_pae: float
    recycles: int
    ranking_score: float | None = None
    """The engine's own score of the run (OpenFold3's sample ranking score); absent for
    AlphaFold2."""


class InlineFile(WireModel):
    """A file in the output itself, as text."""

    data: str
    """The file's text."""
    sha256: Sha256


class LinkedFile(WireModel):
    """A file too large to go inline, fetched from ``url``."""

    url: str
    """Where to GET the file (the endpoint's results route, or a presigned bucket URL)."""
    sha256: Sha256
    bytes: Annotated[int, Field(ge=0)]
    """The file's size."""


FileEntry = InlineFile | LinkedFile


class JobOutput(WireModel):
    """What a COMPLETED fold job returns."""

    foldserve_version: str
    engine: str
    """The engine that ran: alphafold2 or openfold3. (Outputs of foldserve before OpenFold3
    held the network's name here; they are read with it as ``network``.)"""
    network: str | None = None
    """The network that ran, as ColabFold names it: alphafold2_ptm, alphafold2_multimer_v3;
    openfold3."""
    model_type: str | None = None
    """The model type that ran (the input's ``auto`` resolved): monomer_ptm or multimer;
    openfold3 for OpenFold3 (one network for every input)."""
    rank_by: str | None = None
    """The metric ``ranking`` is sorted by (the input's ``auto`` resolved)."""
    test_weights: bool
    """True when the weights were random test weights: the models are not protein structures."""
    query: QuerySummary
    msa: MsaSummary
    ranking: tuple[RankingEntry, ...]
    files: dict[str, FileEntry]
    """File name -> its content, or where to fetch it."""
    timings: dict[str, float]
    """Seconds per step: parse, features, compile, predict, relax (when asked), total."""
    templates: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Templates the models used, by chain id (e.g. ``{"A": ["1abc_A"]}``); absent without."""
    left_out: tuple[str, ...] = ()
    """Files that neither fit inline nor had a place to go (``warnings`` says so)."""
    warnings: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _network_in_engine(cls, data: Any) -> Any:
        """An output of a foldserve before OpenFold3 named the AlphaFold2 network in
        ``engine``: read as engine alphafold2 with that network."""
        if isinstance(data, dict) and "network" not in data:
            engine = data.get("engine")
            if isinstance(engine, str) and engine not in ENGINE_NAMES:
                return {**data, "engine": "alphafold2", "network": engine}
        return data


_KIND_PATTERNS: dict[OutputKind, re.Pattern[str]] = {
    "pdb": re.compile(r"ranked_\d+\.pdb"),
    "cif": re.compile(r"ranked_\d+\.cif"),
    "scores": re.compile(r"(ranking_debug|scores|timings)\.json|confidence_.+\.json"),
    "pae": re.compile(r"pae_.+\.json"),
    "msa": re.compile(r"msa\.a3m"),
}


#: Files a prediction folder gets beside the job's outputs: each run's unrelaxed (and relaxed)
#: model, ``config.json``, ``log.txt``, the raw outputs of ``--save-all``, the plots drawn after
#: a download, a search's raw hits. A relaxed model goes out as its ``ranked_{i}.pdb``.
_RUN_EXTRAS = re.compile(
    r"(un)?relaxed_.+\.pdb|config\.json|log\.txt|result_.+\.pkl|(plddt|pae|coverage)\.png"
    r"|hits_.+\.a3m"
)


def is_run_file(name: str) -> bool:
    """Whether ``name`` is a file a prediction writes (any output kind, or the extras): such
    a file left from an earlier job in a reused folder is stale, not the user's."""
    return bool(_RUN_EXTRAS.fullmatch(name)) or any(
        pattern.fullmatch(name) for pattern in _KIND_PATTERNS.values()
    )


def _priority(name: str) -> tuple[int, int, str]:
    """Best model first, then the small score files, then the rest by rank."""
    rank = re.search(r"ranked_(\d+)", name)
    if name == "ranked_0.pdb":
        return (0, 0, name)
    if name in ("ranking_debug.json", "scores.json", "timings.json"):
        return (1, 0, name)
    if rank:
        return (2, int(rank.group(1)), name)
    if name.startswith("confidence_"):
        return (3, 0, name)
    return (4, 0, name)


def select_files(files: dict[str, Path], outputs: list[OutputKind]) -> dict[str, Path]:
    """The files the job asked for, in the order they should be inlined."""
    wanted = {
        name: path
        for name, path in files.items()
        if any(_KIND_PATTERNS[kind].fullmatch(name) for kind in outputs)
    }
    return dict(sorted(wanted.items(), key=lambda item: _priority(item[0])))


def ranking(prediction: Prediction) -> tuple[RankingEntry, ...]:
    """The prediction's runs, best first, as the job output and ``scores.json`` list them;
    a multimer run's with its ipTM and ranking confidence."""
    return tuple(
        RankingEntry(**run_scores(rank, run)) for rank, run in enumerate(prediction.ranked)
    )


def query_summary(prediction: Prediction, chain_names: tuple[str | None, ...] = ()) -> QuerySummary:
    """The query, and for a complex (or a job sent as ``chains``) each chain of the structure:
    ``chain_names[entity - 1]`` is the input's label of each chain's entity."""
    msa = prediction.msa
    chains: tuple[ChainSummary, ...] = ()
    if prediction.is_complex or chain_names:
        chains = tuple(
            ChainSummary(
                id=chain.id,
                entity=chain.entity,
                length=chain.length,
                sequence=chain.sequence,
                name=chain_names[chain.entity - 1] if chain.entity <= len(chain_names) else None,
            )
            for chain in prediction.chain_list
        )
    return QuerySummary(
        name=msa.query_name, length=msa.query_length, sequence=msa.query_sequence, chains=chains
    )


def model_type(prediction: Prediction) -> str:
    """The model type that ran: AlphaFold2's (the input's ``auto`` resolved), or openfold3."""
    if prediction.engine.name == "openfold3":
        return "openfold3"
    return prediction.options.network_for(prediction.is_complex)


def rows_used(prediction: Prediction) -> int:
    """MSA rows the network read: AlphaFold2's cluster centres and extra rows, or the rows
    OpenFold3 featurised."""
    depth = len(prediction.msa)
    if prediction.engine.name == "openfold3":
        return min(depth, prediction.shape.clusters)
    options = prediction.options
    clusters, extra = msa_sizes(depth, options.max_msa_clusters, options.max_extra_msa)
    return min(depth, clusters + extra)


def build_output(
    prediction: Prediction,
    files: dict[str, Path],
    outputs: list[OutputKind],
    *,
    timings: dict[str, float],
    inline_limit: int = DEFAULT_INLINE_LIMIT,
    url_for: UrlFor | None = None,
    warnings: tuple[str, ...] = (),
    chain_names: tuple[str | None, ...] = (),
) -> JobOutput:
    """The output: summary, ranking, and each requested file inline or as a URL; ``warnings``
    are the caller's (a model that could not be relaxed), before the output's own.
    ``chain_names`` label the distinct chains (the input's ``chains[i].id``)."""
    msa = prediction.msa
    engine = prediction.engine
    summary = JobOutput(
        foldserve_version=__version__,
        engine=engine.name,
        network=engine.network,
        model_type=model_type(prediction),
        rank_by=prediction.rank_by,
        test_weights=prediction.test_weights,
        query=query_summary(prediction, chain_names),
        msa=MsaSummary(depth=len(msa), used=rows_used(prediction)),
        ranking=ranking(prediction),
        files={},
        templates=dict(prediction.templates),
        timings={key: round(value, 3) for key, value in timings.items()},
    )
    size = _json_size(summary.to_wire())
    entries: dict[str, FileEntry] = {}
    left_out: list[str] = []
    selected = select_files(files, outputs)
    best = next((name for name in selected if name.startswith("ranked_0.")), None)
    for name, path in selected.items():
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        inline = InlineFile(data=data.decode("utf-8"), sha256=digest)
        entry_size = _entry_size(name, inline)
        fits = size + entry_size <= inline_limit
        url = None if fits or url_for is None else url_for(name, path)
        # Without a place for large files, the best model still comes back, over the limit.
        if fits or (url is None and name == best):
            entries[name] = inline
            size += entry_size
            continue
        if url is None:
            left_out.append(name)
            continue
        reference = LinkedFile(url=url, sha256=digest, bytes=len(data))
        entries[name] = reference
        size += _entry_size(name, reference)
    if left_out:
        warnings += (
            f"{len(left_out)} file(s) left out: the output would exceed the "
            f"{inline_limit / (1 << 20):g} MB inline limit and no storage for larger results "
            f"is configured ({', '.join(left_out)})",
        )
    return summary.model_copy(
        update={"files": entries, "left_out": tuple(left_out), "warnings": warnings}
    )


def _entry_size(name: str, entry: FileEntry) -> int:
    return _json_size({name: entry.to_wire()})


def _json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON."""
    return len(json.dumps(value, separators=(",", ":")).encode("utf-8"))
