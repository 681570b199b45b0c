"""Read back a prediction directory: foldserve's, ColabFold's or DeepMind AlphaFold's.

:func:`load` tells the three layouts apart and returns one :class:`PredictionDir`: the run's
models best first (each with its scores and where its PAE is), the MSA, and the run's
settings as label/value rows. The models come from the run's own record, never from a glob,
so a stale ``ranked_1.pdb`` left in a reused folder is not taken for one of the run's:

- **foldserve** (DESIGN.md, "Prediction directory"): ``config.json``'s ``files`` when it
  lists them, else ``ranking_debug.json``'s ``order`` (``ranked_{i}`` for each run in it);
- **alphafold** (DeepMind's ``run_alphafold``): ``ranking_debug.json``'s ``order``; PAE from
  ``pae_{model}.json`` when present (``result_model_*.pkl`` are pickles, which run code when
  read: they are never opened), no MSA (the merged one is in ``features.pkl``);
- **colabfold** (1.5): ``{job}_relaxed_rank_NNN_{model}.pdb`` (else ``_unrelaxed_``), ranks
  1 to ``num_models x num_seeds`` of its ``config.json``; scores and PAE from
  ``{job}_scores_rank_NNN_{model}.json``, the MSA from ``{job}.a3m``. A folder of several jobs
  needs the job named.

Complexes read from each layout: the chains from foldserve's ``config.json`` (else from the
best model's file), ipTM from foldserve's ``ranking_debug.json`` (``iptms``) and ColabFold's
scores (``iptm``), AlphaFold-multimer's ranking confidence from ``ranking_debug.json``'s
``iptm+ptm`` (ColabFold's computed as AlphaFold does, 0.8 ipTM + 0.2 pTM). An engine's own
ranking score (OpenFold3's) comes from foldserve's ``ranking_debug.json`` (``ranking_scores``).

A folder with ``ranked_{i}.pdb`` files and no record at all (e.g. a job downloaded with
``outputs: ["pdb"]``) is read as ``ranked_0``, ``ranked_1``, … up to the first gap, with a
warning that nothing says these are one run's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, ValidationError

from foldserve.errors import InputError
from foldserve.fold.results import ChainInfo
from foldserve.fold.run_config import RunConfig, read_config
from foldserve.msa.search.results import SearchSummary
from foldserve.structure.reading import read_chains

Layout = Literal["foldserve", "colabfold", "alphafold"]

RANKED = re.compile(r"ranked_(\d+)\.(pdb|cif)")
RANKING_DEBUG = "ranking_debug.json"
FOLDSERVE_MSA = "msa.a3m"
#: AlphaFold DB's PAE format (foldserve and DeepMind's ``pae_{model}.json``).
AFDB_PAE_KEY = "predicted_aligned_error"
#: ``ranking_debug.json``'s key for AlphaFold-multimer's ranking confidence.
MULTIMER_RANKING_KEY = "iptm+ptm"
#: ``ranking_debug.json``'s key for the engine's own ranking score (foldserve's, OpenFold3).
ENGINE_RANKING_KEY = "ranking_scores"
#: AlphaFold-multimer's ranking confidence: IPTM_WEIGHT x ipTM + (1 - IPTM_WEIGHT) x pTM.
IPTM_WEIGHT = 0.8
COLABFOLD_MODEL = re.compile(
    r"(?P<job>.+?)_(?P<state>relaxed|unrelaxed)_rank_(?P<rank>\d+)_(?P<name>.+)\.pdb"
)
NO_MODELS_FIX = (
    "give a prediction directory: the --out-dir of foldserve predict, a ColabFold result "
    "folder or an AlphaFold output folder"
)


@dataclass(frozen=True)
class PaeSource:
    """Where a model's predicted aligned error is: a JSON file and the key of its matrix."""

    path: Path
    key: str

    def read(self) -> npt.NDArray[np.float64]:
        record = _load_json(self.path)
        if isinstance(record, list):  # AlphaFold DB: a list of one record
            record = record[0] if record else {}
        matrix = record.get(self.key) if isinstance(record, dict) else None
        array = np.asarray(matrix if matrix is not None else [], dtype=np.float64)
        if array.ndim != 2 or array.shape[0] != array.shape[1] or array.size == 0:
            raise InputError(
                f"no square {self.key!r} matrix", where=str(self.path), fix="predict again"
            )
        return array


@dataclass(frozen=True)
class RankedModel:
    rank: int  # 0 is the best
    label: str  # ranked_{i} (foldserve, AlphaFold) or rank_NNN (ColabFold)
    path: Path
    name: str  # the run's name: model_1_ptm_pred_0, alphafold2_ptm_model_3_seed_000, …
    mean_plddt: float | None = None
    ptm: float | None = None
    iptm: float | None = None
    pae: PaeSource | None = None
    #: AlphaFold-multimer's ranking confidence, 0.8 ipTM + 0.2 pTM (multimer runs only).
    ranking_confidence: float | None = None
    #: The engine's own ranking score, where it has one (OpenFold3's sample ranking score).
    ranking_score: float | None = None

    def read_pae(self) -> npt.NDArray[np.float64] | None:
        return None if self.pae is None else self.pae.read()


@dataclass(frozen=True)
class SummaryRow:
    label: str
    value: str


@dataclass(frozen=True)
class RunSummary:
    """How the run was made, as the report's settings table shows it."""

    rows: tuple[SummaryRow, ...]


def _summary(rows: Iterable[tuple[str, str | None]]) -> RunSummary:
    """The rows that have a value."""
    return RunSummary(tuple(SummaryRow(label, value) for label, value in rows if value is not None))


@dataclass(frozen=True)
class PredictionDir:
    path: Path
    layout: Layout
    models: tuple[RankedModel, ...]
    msa: Path | None
    summary: RunSummary
    test_weights: bool
    job: str | None = None  # the ColabFold job read
    warnings: tuple[str, ...] = ()
    #: The chains of the models, ``A`` first; one for a monomer.
    chains: tuple[ChainInfo, ...] = ()

    @property
    def is_complex(self) -> bool:
        return len(self.chains) > 1


class ColabFoldConfig(BaseModel):
    """The keys of ColabFold's ``config.json`` the report shows (all optional: they vary by
    version)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: str | None = None
    commit: str | None = None
    model_type: str | None = None
    num_models: int | None = None
    model_order: tuple[int, ...] = ()
    num_recycles: int | None = None
    recycle_early_stop_tolerance: float | None = None
    num_seeds: int | None = None
    random_seed: int | None = None
    rank_by: str | None = None
    msa_mode: str | None = None
    pair_mode: str | None = None
    max_seq: int | None = None
    max_extra_seq: int | None = None
    use_templates: bool | None = None
    num_relax: int | None = None
    use_dropout: bool | None = None
    use_bfloat16: bool | None = None


def chains_in(path: Path) -> tuple[ChainInfo, ...]:
    """The protein chains of a model file, copies of one sequence sharing an entity."""
    entities: dict[str, int] = {}
    chains: list[ChainInfo] = []
    start = 0
    for chain in read_chains(path):
        entity = entities.setdefault(chain.sequence, len(entities) + 1)
        chains.append(ChainInfo(chain.chain_id, entity, chain.sequence, start))
        start += len(chain)
    return tuple(chains)


def _config_chains(config: RunConfig) -> tuple[ChainInfo, ...]:
    chains: list[ChainInfo] = []
    start = 0
    for chain in config.chains:
        chains.append(ChainInfo(chain.id, chain.entity, chain.sequence, start))
        start += chain.length
    return tuple(chains)


def chains_line(chains: tuple[ChainInfo, ...]) -> str:
    """``A, B: 141 residues (entity 1); C, D: 146 residues (entity 2)``."""
    by_entity: dict[int, list[ChainInfo]] = {}
    for chain in chains:
        by_entity.setdefault(chain.entity, []).append(chain)
    return "; ".join(
        f"{', '.join(c.id for c in group)}: {group[0].length} residues (entity {entity})"
        for entity, group in by_entity.items()
    )


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", where=str(path)) from None


def _sequences_in(path: Path) -> int:
    """Records of an A3M/FASTA file, counted without parsing it."""
    data = path.read_bytes()
    return data.count(b"\n>") + data.startswith(b">")


def load(directory: str | Path, *, job: str | None = None) -> PredictionDir:
    """The run in ``directory``, its models best first; ``job`` picks one ColabFold job of
    several. An error when it holds no models."""
    path = Path(directory)
    if not path.is_dir():
        raise InputError("not a directory", where=str(path), fix=NO_MODELS_FIX)
    config = read_config(path)
    colabfold_jobs = sorted({m["job"] for m in _colabfold_matches(path)}) if not config else []
    if colabfold_jobs:
        return _colabfold(path, colabfold_jobs, job)
    if job is not None:
        raise InputError(
            "--job picks a job in a ColabFold folder; this one has none",
            where=str(path),
            fix="leave --job out",
        )
    return _run_alphafold(path, config)


# --- foldserve and DeepMind AlphaFold: run_alphafold's layout ---------------------------------


def _run_alphafold(path: Path, config: RunConfig | None) -> PredictionDir:
    debug_path = path / RANKING_DEBUG
    listed = set(config.files) if config and config.files else None
    has_debug = debug_path.is_file() and (listed is None or RANKING_DEBUG in listed)
    debug = _load_json(debug_path) if has_debug else {}
    if not isinstance(debug, dict):
        raise InputError("not a ranking_debug.json (no JSON object)", where=str(debug_path))
    order = [str(name) for name in debug.get("order", [])]
    warnings: tuple[str, ...] = ()
    if listed is not None:
        files = _ranked_files(path, listed, f"{path / 'config.json'} lists it")
    elif order:
        names = {f"ranked_{rank}.{ext}" for rank in range(len(order)) for ext in ("pdb", "cif")}
        present = {name for name in names if (path / name).is_file()}
        files = _ranked_files(path, present, "")
        missing = [f"ranked_{rank}.pdb" for rank in range(len(order)) if rank not in files]
        if missing:
            raise InputError(
                f"{', '.join(missing)} missing: {RANKING_DEBUG} ranks {len(order)} model(s)",
                where=str(path),
                fix="copy the whole prediction directory, or predict again",
            )
    else:
        files = _unrecorded_ranked_files(path)
        if files:
            warnings = (
                f"no {RANKING_DEBUG} or config.json: took ranked_0 to ranked_{len(files) - 1} "
                "as the run's models; nothing says they are one run's",
            )
    if not files:
        raise InputError("no ranked_0.pdb or ranked_0.cif here", where=str(path), fix=NO_MODELS_FIX)
    foldserve = config is not None or "test_weights" in debug
    models = tuple(
        _ranked_model(path, rank, files[rank], order, debug, listed) for rank in sorted(files)
    )
    msa = path / FOLDSERVE_MSA
    keep_msa = foldserve and msa.is_file() and (listed is None or FOLDSERVE_MSA in listed)
    chains = _config_chains(config) if config and config.chains else chains_in(models[0].path)
    if config is not None:
        summary = _foldserve_summary(config, chains, models[0])
    else:
        summary = _ranking_summary(debug, msa if keep_msa else None, foldserve, chains, models[0])
    return PredictionDir(
        path=path,
        layout="foldserve" if foldserve else "alphafold",
        models=models,
        msa=msa if keep_msa else None,
        summary=summary,
        test_weights=config.test_weights if config else bool(debug.get("test_weights", False)),
        warnings=warnings,
        chains=chains,
    )


def _ranked_files(path: Path, names: set[str], listed_by: str) -> dict[int, Path]:
    """``ranked_{i}`` of ``names`` by rank (the PDB file when there are both)."""
    files: dict[int, Path] = {}
    for name in sorted(names, key=lambda n: not n.endswith(".pdb")):
        match = RANKED.fullmatch(name)
        if match is None:
            continue
        if not (path / name).is_file():
            raise InputError(
                f"{name} is missing ({listed_by})",
                where=str(path),
                fix="copy the whole prediction directory, or predict again",
            )
        files.setdefault(int(match.group(1)), path / name)
    return files


def _unrecorded_ranked_files(path: Path) -> dict[int, Path]:
    files: dict[int, Path] = {}
    while True:
        rank = len(files)
        found = [path / f"ranked_{rank}.{ext}" for ext in ("pdb", "cif")]
        present = [candidate for candidate in found if candidate.is_file()]
        if not present:
            return files
        files[rank] = present[0]


def _ranked_model(
    path: Path,
    rank: int,
    file: Path,
    order: list[str],
    debug: dict[str, Any],
    listed: set[str] | None,
) -> RankedModel:
    name = order[rank] if rank < len(order) else f"ranked_{rank}"
    pae_name = f"pae_{name}.json"
    has_pae = (path / pae_name).is_file() and (listed is None or pae_name in listed)
    return RankedModel(
        rank=rank,
        label=f"ranked_{rank}",
        path=file,
        name=name,
        mean_plddt=_number(_scores(debug, "plddts", name) or _scores(debug, "mean_plddts", name)),
        ptm=_number(_scores(debug, "ptms", name)),
        iptm=_number(_scores(debug, "iptms", name)),
        pae=PaeSource(path / pae_name, AFDB_PAE_KEY) if has_pae else None,
        ranking_confidence=_number(_scores(debug, MULTIMER_RANKING_KEY, name)),
        ranking_score=_number(_scores(debug, ENGINE_RANKING_KEY, name)),
    )


def _scores(debug: dict[str, Any], key: str, name: str) -> Any:
    """``debug[key][name]``; None when either is missing or ``debug[key]`` is no object."""
    values = debug.get(key)
    return values.get(name) if isinstance(values, dict) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _foldserve_summary(
    config: RunConfig, chains: tuple[ChainInfo, ...], best: RankedModel
) -> RunSummary:
    settings, msa, weights = config.settings, config.msa, config.weights
    version = config.versions.get("foldserve")
    recycles = str(settings.num_recycles)
    if settings.recycle_early_stop_tolerance is not None:
        recycles += f" (stop early below {settings.recycle_early_stop_tolerance} Å)"
    ranked_by = config.rank_by or settings.rank_by  # resolved (auto: by the chain count)
    if settings.stop_at_score is not None:
        ranked_by += f" (stop at {settings.stop_at_score})"
    neff = f", Neff {msa.neff:g}" if msa.neff is not None else ""
    fingerprint = f"fingerprint {weights.fingerprint}"
    network = config.network or config.engine  # older records name the network "engine"
    rows = [
        ("Engine", f"foldserve {version} ({network})" if version else network),
        ("Model type", f"{config.model_type} (asked: {settings.model_type})"),
        ("Chains", chains_line(chains) if len(chains) > 1 else None),
        ("Models", ", ".join(str(m) for m in settings.models)),
        ("Recycles", recycles),
        ("Seeds", f"{settings.num_seeds} per model, from seed {settings.seed}"),
        ("Ranked by", ranked_by),
        ("Best model", _best_line(best) if best.iptm is not None else None),
        ("Templates", _templates_line(config, chains)),
        ("Amber relax", _relax_line(settings.relax, settings.relaxed)),
        (
            "MSA",
            f"{msa.source} ({msa.format}): {msa.depth} sequences{neff}; query "
            f"{msa.query_name}, {msa.query_length} residues",
        ),
        ("MSA search", _search_line(msa.search)),
        (
            "MSA read by the network",
            f"{msa.clusters} cluster centres + {msa.extra} extra sequences "
            f"(at most {settings.max_msa_clusters} + {settings.max_extra_msa})",
        ),
        (
            "Weights",
            f"{weights.params_dir} ({fingerprint}"
            + (
                f"; random TEST WEIGHTS, {weights.evoformer_blocks} blocks)"
                if weights.test_weights
                else ")"
            ),
        ),
        ("Device", f"{config.device}, {config.precision}"),
        ("Compiled shape", ", ".join(f"{k} {v}" for k, v in config.shape.items())),
        ("Versions", ", ".join(f"{k} {v}" for k, v in config.versions.items())),
        ("Created", config.created),
    ]
    return _summary(rows)


def _best_line(model: RankedModel) -> str:
    """``model_1_multimer_v3_pred_0: ipTM 0.750, pTM 0.800, confidence 0.760``."""
    scores = [
        f"{name} {value:.3f}"
        for name, value in (
            ("ipTM", model.iptm),
            ("pTM", model.ptm),
            ("confidence", model.ranking_confidence),
        )
        if value is not None
    ]
    return f"{model.name}: {', '.join(scores)}"


def _templates_line(config: RunConfig, chains: tuple[ChainInfo, ...]) -> str | None:
    """``A: 1abc_A, 2def_B; B: none (before 2021-01-01)``; nothing when none were asked."""
    templates = config.templates
    if templates is None:
        return "none" if config.settings.templates is False else "asked, none recorded"
    ids = [c.id for c in chains] or list(templates.used)
    used = "; ".join(f"{i}: {', '.join(templates.used.get(i, ())) or 'none'}" for i in ids)
    sources = [*templates.files, *([templates.server_dir] if templates.server_dir else [])]
    line = used + (f" (from {', '.join(sources)})" if sources else "")
    if templates.max_template_date:
        line += f"; released by {templates.max_template_date}"
    return line


def _relax_line(mode: str, relaxed: tuple[str, ...]) -> str | None:
    """``best: model_1_ptm_pred_0``; nothing when the run was not relaxed."""
    if mode == "none":
        return None
    return f"{mode}: {', '.join(relaxed) or 'no model could be relaxed'}"


def _search_line(search: SearchSummary | None) -> str | None:
    """``jackhmmer of uniref90.fasta: uniref90.fasta 812 hits; 640 rows merged``."""
    if search is None:
        return None
    hits = "; ".join(f"{name} {count} hits" for name, count in search.hits.items())
    return f"{search.tool} of {search.source}: {hits}; {search.rows} rows merged"


def _ranking_summary(
    debug: dict[str, Any],
    msa: Path | None,
    foldserve: bool,
    chains: tuple[ChainInfo, ...],
    best: RankedModel,
) -> RunSummary:
    """What a folder without a settings record still tells: the runs, the chains, the
    MSA's depth."""
    engine = (
        "foldserve (no config.json: settings not recorded)"
        if foldserve
        else "AlphaFold (run_alphafold; no settings record)"
    )
    rows: list[tuple[str, str | None]] = [("Engine", engine)]
    if MULTIMER_RANKING_KEY in debug:
        rows.append(("Model type", "multimer"))
    if len(chains) > 1:
        rows.append(("Chains", chains_line(chains)))
    order = debug.get("order", [])
    if order:
        rows.append(("Models", ", ".join(str(name) for name in order)))
    if "rank_by" in debug or "plddts" in debug or "iptm+ptm" in debug:
        rows.append(
            ("Ranked by", debug.get("rank_by") or ("iptm+ptm" if "iptm+ptm" in debug else "plddt"))
        )
    if best.iptm is not None or best.ranking_confidence is not None:
        rows.append(("Best model", _best_line(best)))
    if msa is not None:
        rows.append(("MSA", f"{msa.name}: {_sequences_in(msa)} sequences"))
    elif not foldserve:
        rows.append(("MSA", "msas/ (the merged MSA is in features.pkl, a pickle: not read)"))
    return _summary(rows)


# --- ColabFold ----------------------------------------------------------------------------


def _colabfold_matches(path: Path) -> list[re.Match[str]]:
    return [
        match
        for candidate in sorted(path.iterdir())
        if (match := COLABFOLD_MODEL.fullmatch(candidate.name)) and candidate.is_file()
    ]


def _colabfold_config(path: Path) -> ColabFoldConfig | None:
    config_path = path / "config.json"
    if not config_path.is_file():
        return None
    try:
        return ColabFoldConfig.model_validate_json(config_path.read_bytes())
    except ValidationError as exc:
        raise InputError(
            f"not a readable ColabFold config.json ({exc.error_count()} problem(s))",
            where=str(config_path),
            fix="move it away: the models are read without it, the settings are not shown",
        ) from None


def _colabfold(path: Path, jobs: list[str], job: str | None) -> PredictionDir:
    if job is None and len(jobs) > 1:
        raise InputError(
            f"{len(jobs)} ColabFold jobs here: {', '.join(jobs)}",
            where=str(path),
            fix="pick one with --job NAME",
        )
    if job is not None and job not in jobs:
        raise InputError(
            f"no ColabFold job {job!r} here", where="--job", fix=f"pick one of {', '.join(jobs)}"
        )
    name = job or jobs[0]
    config = _colabfold_config(path)
    expected = None
    if config is not None and config.num_models:
        expected = config.num_models * (config.num_seeds or 1)
    # Per rank, the relaxed model when ColabFold relaxed it.
    picked: dict[int, re.Match[str]] = {}
    for match in _colabfold_matches(path):
        rank = int(match["rank"])
        if match["job"] != name or (expected is not None and rank > expected):
            continue
        if rank not in picked or match["state"] == "relaxed":
            picked[rank] = match
    if not picked:
        raise InputError(
            f"no model of job {name!r} within the {expected} its config.json runs",
            where=str(path),
            fix="copy the whole ColabFold result folder, or run it again",
        )
    models = tuple(
        _colabfold_model(path, name, index, picked[rank])
        for index, rank in enumerate(sorted(picked))
    )
    msa = path / f"{name}.a3m"
    chains = chains_in(models[0].path)
    return PredictionDir(
        path=path,
        layout="colabfold",
        models=models,
        msa=msa if msa.is_file() else None,
        summary=_colabfold_summary(config, msa if msa.is_file() else None, chains, models[0]),
        test_weights=False,
        job=name,
        chains=chains,
    )


def _colabfold_model(path: Path, job: str, index: int, match: re.Match[str]) -> RankedModel:
    rank_text = f"rank_{match['rank']}"
    scores_path = path / f"{job}_scores_{rank_text}_{match['name']}.json"
    scores = _load_json(scores_path) if scores_path.is_file() else {}
    if not isinstance(scores, dict):
        raise InputError("not a ColabFold scores file (no JSON object)", where=str(scores_path))
    plddt = scores.get("plddt")
    pae: PaeSource | None = None
    if "pae" in scores:
        pae = PaeSource(scores_path, "pae")
    elif index == 0 and (best := path / f"{job}_predicted_aligned_error_v1.json").is_file():
        pae = PaeSource(best, AFDB_PAE_KEY)
    ptm, iptm = _number(scores.get("ptm")), _number(scores.get("iptm"))
    return RankedModel(
        rank=index,
        label=rank_text,
        path=path / match.group(0),
        name=match["name"],
        mean_plddt=round(float(np.mean(plddt)), 2) if isinstance(plddt, list) and plddt else None,
        ptm=ptm,
        iptm=iptm,
        pae=pae,
        ranking_confidence=(
            None if ptm is None or iptm is None else IPTM_WEIGHT * iptm + (1 - IPTM_WEIGHT) * ptm
        ),
    )


def _colabfold_summary(
    config: ColabFoldConfig | None,
    msa: Path | None,
    chains: tuple[ChainInfo, ...],
    best: RankedModel,
) -> RunSummary:
    msa_depth = f"{msa.name}: {_sequences_in(msa)} sequences" if msa else "no MSA file"
    chains_row = ("Chains", chains_line(chains) if len(chains) > 1 else None)
    best_row = ("Best model", _best_line(best) if best.iptm is not None else None)
    if config is None:
        return _summary(
            [
                ("Engine", "ColabFold (no config.json: settings not recorded)"),
                chains_row,
                best_row,
                ("MSA", msa_depth),
            ]
        )
    engine = f"ColabFold {config.version or '(version not recorded)'}"
    if config.commit:
        engine += f" ({config.commit})"
    models = config.model_order[: config.num_models] if config.num_models else config.model_order
    recycles = str(config.num_recycles)
    if config.recycle_early_stop_tolerance is not None:
        recycles += f" (stop early below {config.recycle_early_stop_tolerance} Å)"
    msa_mode = config.msa_mode or "not recorded"
    if config.pair_mode and config.model_type and "multimer" in config.model_type:
        msa_mode += f", pairing {config.pair_mode}"
    return _summary(
        [
            ("Engine", engine),
            ("Model type", config.model_type),
            chains_row,
            ("Models", ", ".join(str(m) for m in models) if models else None),
            ("Recycles", recycles if config.num_recycles is not None else None),
            (
                "Seeds",
                f"{config.num_seeds or 1} per model, from seed {config.random_seed}"
                if config.random_seed is not None
                else None,
            ),
            ("Ranked by", config.rank_by),
            best_row,
            ("MSA", f"{msa_mode}; {msa_depth}"),
            (
                "MSA read by the network",
                f"at most {config.max_seq} cluster centres + {config.max_extra_seq} extra sequences"
                if config.max_seq is not None and config.max_extra_seq is not None
                else None,
            ),
            ("Templates", _yes_no(config.use_templates)),
            ("Relaxed models", str(config.num_relax) if config.num_relax is not None else None),
            (
                "Weights",
                f"{config.model_type or 'AlphaFold2'} parameters "
                "(ColabFold records no fingerprint)",
            ),
            (
                "Precision",
                None
                if config.use_bfloat16 is None
                else ("bfloat16" if config.use_bfloat16 else "float32"),
            ),
            ("Dropout", _yes_no(config.use_dropout)),
            ("Versions", f"ColabFold {config.version}" if config.version else None),
        ]
    )


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")
