"""Write a prediction in DeepMind's ``run_alphafold`` layout (DESIGN.md, "Prediction directory").

Tools written for AlphaFold's output keep working: ``ranked_{i}.pdb``/``.cif``,
``unrelaxed_{model}_pred_{seed}.pdb``, ``ranking_debug.json``, ``timings.json``, and per run the
AlphaFold DB's PAE and confidence JSON. ``scores.json`` has one line per run, ``msa.a3m`` is
the alignment the network actually saw, and ``config.json`` (:mod:`foldserve.fold.run_config`)
says how the run was made and lists its files. Every JSON file carries ``test_weights``.

A complex is written as ``run_alphafold`` writes a multimer prediction: chains ``A``, ``B``, …
in the models (copies of one sequence sharing an mmCIF entity), PAE and pLDDT over the whole
complex, chain after chain, and ``ranking_debug.json`` keyed ``iptm+ptm`` (AlphaFold-multimer's
ranking confidence, 0.8 ipTM + 0.2 pTM) instead of ``plddts``.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import json
import pickle
import platform
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from foldserve._version import __version__
from foldserve.errors import InputError
from foldserve.files import write_bytes, write_text
from foldserve.fold.alphafold2.features import msa_sizes
from foldserve.fold.results import ModelRun, Prediction
from foldserve.fold.run_config import (
    CONFIG_NAME,
    RunChain,
    RunConfig,
    RunMsa,
    RunSettings,
    RunTemplates,
    RunWeights,
)
from foldserve.msa.search.results import SearchSummary
from foldserve.msa.writing import write as write_msa
from foldserve.structure.model_files import ModelCoordinates, to_mmcif, to_pdb

if TYPE_CHECKING:  # relax.py relaxes the PDB text this module writes
    from foldserve.fold.relax import Relaxation, RelaxResult

#: The monomer network's name (a prediction's own is ``prediction.engine.network``).
ENGINE = "alphafold2_ptm"
#: ``ranking_debug.json``'s key for AlphaFold-multimer's ranking confidence (run_alphafold's).
MULTIMER_RANKING_KEY = "iptm+ptm"
BEST_MODEL = "ranked_0.pdb"
#: What the best model's file name may end in, and the ranked file each is made from.
BEST_MODEL_FORMATS = {
    ".pdb": "ranked_0.pdb",
    ".pdb.gz": "ranked_0.pdb",
    ".ent": "ranked_0.pdb",
    ".cif": "ranked_0.cif",
    ".mmcif": "ranked_0.cif",
    ".cif.gz": "ranked_0.cif",
    ".mmcif.gz": "ranked_0.cif",
}
_VERSIONED = ("alphafold-colabfold", "colabfold", "jax", "jaxlib", "numpy")


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
        chain_index=prediction.chain_index,
        entities=tuple(chain.entity for chain in prediction.chain_list),
    )


def unrelaxed_pdb(prediction: Prediction, run: ModelRun) -> str:
    """The PDB text of ``run`` as the network made it (``unrelaxed_{run}.pdb``)."""
    remarks = _remarks(prediction, run)
    return to_pdb(
        _coordinates(prediction, run), remarks=remarks, test_weights=prediction.test_weights
    )


def write_prediction(
    prediction: Prediction,
    out_dir: Path,
    *,
    neff: float | None = None,
    save_all: bool = False,
    search: SearchSummary | None = None,
    relaxation: Relaxation | None = None,
) -> dict[str, Path]:
    """Write every output file into ``out_dir``; return them by name.

    Each file appears whole or not at all; ``config.json`` comes last and lists them.
    ``neff`` (when the caller computed it) and ``search`` (where the MSA came from, when
    foldserve searched for it) go into ``config.json``; ``save_all`` writes each run's raw
    network outputs as DeepMind's ``result_{run}.pkl``. A run in ``relaxation`` gets its
    ``relaxed_{run}.pdb``, which is then its ``ranked_{i}`` model, as ``run_alphafold`` does.
    Where the templates came from (``prediction.template_source``) and their date limit go
    into ``config.json`` beside the templates each chain used.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def put(name: str, text: str) -> None:
        files[name] = write_text(out_dir / name, text)

    test = prediction.test_weights
    engine = prediction.engine.name
    relaxed = relaxation.models if relaxation else {}
    for rank, run in enumerate(prediction.ranked):
        coordinates = _coordinates(prediction, run)
        remarks = _remarks(prediction, run)
        pdb = unrelaxed_pdb(prediction, run)
        put(f"unrelaxed_{run.name}.pdb", pdb)
        result = relaxed.get(run.name)
        if result is not None:
            coordinates, remarks, pdb = _relaxed(coordinates, remarks, pdb, result)
            put(f"relaxed_{run.name}.pdb", pdb)
        put(f"ranked_{rank}.pdb", pdb)
        cif = to_mmcif(coordinates, name=f"ranked_{rank}", remarks=remarks, test_weights=test)
        put(f"ranked_{rank}.cif", cif)
        put(f"pae_{run.name}.json", _dumps([_pae_record(run, test, engine)]))
        put(f"confidence_{run.name}.json", _dumps(_confidence_record(run, test, engine)))
    put("ranking_debug.json", _dumps(ranking_debug(prediction), indent=2))
    timings = {**prediction.timings, **(relaxation.timings() if relaxation else {})}
    choice = prediction.shape_choice
    shape = {"shape": choice.as_json()} if choice is not None else {}
    put(
        "timings.json",
        _dumps({**_rounded(timings), **shape, "engine": engine, "test_weights": test}, indent=2),
    )
    put("scores.json", scores_json(prediction))
    msa_path = out_dir / "msa.a3m"
    write_msa(prediction.msa, msa_path, format="a3m")
    files["msa.a3m"] = msa_path
    if save_all:
        for run in prediction.ranked:
            if run.raw is not None:
                name = f"result_{run.name}.pkl"
                files[name] = write_bytes(out_dir / name, pickle.dumps(run.raw, protocol=4))
    config = run_config(prediction, neff=neff, search=search, relaxation=relaxation)
    files[CONFIG_NAME] = write_config(out_dir, config)
    return files


def _relaxed(
    coordinates: ModelCoordinates, remarks: list[str], unrelaxed: str, result: RelaxResult
) -> tuple[ModelCoordinates, list[str], str]:
    """The relaxed model's coordinates, remarks and PDB text (AlphaFold's, hydrogens
    included, under the unrelaxed file's ``REMARK`` header)."""
    note = (
        f"Amber-relaxed ({result.platform}): {result.violations_before} -> "
        f"{result.violations_after} residues in violation, moved {result.rmsd:.2f} A RMSD"
    )
    header = "".join(
        line for line in unrelaxed.splitlines(keepends=True) if line.startswith("REMARK   1 ")
    )
    relaxed = replace(coordinates, positions=result.positions, atom_mask=result.atom_mask)
    return relaxed, [*remarks, note], f"{header}REMARK   1 {note[:69]}\n{result.pdb}"


def run_config(
    prediction: Prediction,
    *,
    neff: float | None = None,
    search: SearchSummary | None = None,
    relaxation: Relaxation | None = None,
) -> RunConfig:
    """How ``prediction`` was made, for its ``config.json`` (files filled in when written)."""
    options, msa, engine = prediction.options, prediction.msa, prediction.engine
    clusters, extra = msa_sizes(len(msa), options.max_msa_clusters, options.max_extra_msa)
    return RunConfig(
        engine=engine.name,
        network=engine.network,
        model_type=_model_type(prediction),
        rank_by=prediction.rank_by,
        chains=tuple(
            RunChain(id=c.id, entity=c.entity, length=c.length, sequence=c.sequence)
            for c in prediction.chain_list
        ),
        templates=_run_templates(prediction),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        # Every option, by the name PredictOptions and the job JSON give it (a new option is
        # recorded without a line here); RunSettings ignores what it does not list.
        settings=RunSettings.model_validate(
            {
                **dataclasses.asdict(options),
                "relax": relaxation.mode if relaxation else "none",
                "relaxed": tuple(relaxation.models) if relaxation else (),
            }
        ),
        msa=RunMsa(
            source=msa.source,
            format=msa.format,
            query_name=msa.query_name,
            query_length=msa.query_length,
            depth=len(msa),
            neff=neff,
            clusters=clusters,
            extra=extra,
            search=search,
        ),
        weights=RunWeights(
            params_dir=engine.params_dir,
            fingerprint=engine.weights_fingerprint,
            test_weights=engine.test_weights,
            evoformer_blocks=engine.evoformer_blocks,
        ),
        device=engine.device,
        precision=engine.precision,
        shape=dataclasses.asdict(prediction.shape),
        versions=_versions(),
        test_weights=engine.test_weights,
    )


def _model_type(prediction: Prediction) -> str:
    """``multimer`` or ``monomer_ptm``: the model type that ran (the network's name tells);
    ``openfold3`` for OpenFold3, which has one network for every input."""
    if prediction.engine.name == "openfold3":
        return "openfold3"
    return "multimer" if "multimer" in prediction.engine.network else "monomer_ptm"


def _run_templates(prediction: Prediction) -> RunTemplates | None:
    """The templates each chain's models saw and where they came from; None without any."""
    source = prediction.template_source
    if not prediction.options.templates and source is None and not prediction.templates:
        return None
    return RunTemplates(
        used={chain: tuple(names) for chain, names in prediction.templates.items()},
        files=tuple(str(path) for path in source.files) if source else (),
        server_dir=str(source.server_dir) if source and source.server_dir else None,
        max_template_date=source.max_template_date if source else None,
    )


def write_config(out_dir: Path, config: RunConfig) -> Path:
    """Write ``config.json`` listing every file now in ``out_dir`` (itself included).

    Called again when a caller adds files (plots, the log) to a run it has staged.
    """
    names = sorted({p.name for p in out_dir.iterdir() if p.is_file()} | {CONFIG_NAME})
    listed = config.model_copy(update={"files": tuple(names)})
    return write_text(out_dir / CONFIG_NAME, listed.model_dump_json(indent=2) + "\n")


def best_model_source(destination: Path) -> str:
    """The ranked file a best-model path is made from, by its extension; an error up front
    for an extension that names no structure format."""
    name = destination.name.lower()
    for suffix, source in BEST_MODEL_FORMATS.items():
        if name.endswith(suffix):
            return source
    raise InputError(
        f"cannot tell a structure format from the name {destination.name!r}",
        where=str(destination),
        fix=f"end it in {', '.join(BEST_MODEL_FORMATS)}",
    )


def write_best_model(run_dir: Path, destination: Path) -> Path:
    """Copy the best model to ``destination`` in the format its extension names (gzip for
    ``.gz``), whole or not at all."""
    data = (run_dir / best_model_source(destination)).read_bytes()
    if destination.name.lower().endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    return write_bytes(destination, data)


def is_multimer(prediction: Prediction) -> bool:
    """Whether the multimer network made the runs (they have an ipTM)."""
    return any(run.iptm is not None for run in prediction.ranked)


def ranking_debug(prediction: Prediction) -> dict[str, Any]:
    """DeepMind's ``ranking_debug.json``: ``plddts`` (mean pLDDT) for monomer models,
    ``iptm+ptm`` (0.8 ipTM + 0.2 pTM) for multimer models, as ``run_alphafold`` keys them by
    whether the model gives an ipTM; then ``order``. foldserve adds each run's pTM (and ipTM and
    mean pLDDT for multimer runs), the metric ``order`` follows and ``test_weights``."""
    ranked = prediction.ranked
    ptms = {run.name: round(run.ptm, 4) for run in ranked}
    debug: dict[str, Any]
    if is_multimer(prediction):
        debug = {
            MULTIMER_RANKING_KEY: {run.name: round(run.ranking_confidence, 4) for run in ranked},
            "iptms": {run.name: round(run.iptm or 0.0, 4) for run in ranked},
            "ptms": ptms,
            "mean_plddts": {run.name: round(run.mean_plddt, 2) for run in ranked},
        }
    else:
        debug = {"plddts": {run.name: round(run.mean_plddt, 2) for run in ranked}, "ptms": ptms}
    if any(run.engine_score is not None for run in ranked):
        debug["ranking_scores"] = {run.name: round(run.score("engine"), 4) for run in ranked}
    return {
        **debug,
        "engine": prediction.engine.name,
        "rank_by": prediction.rank_by,
        "order": [run.name for run in ranked],
        "test_weights": prediction.test_weights,
    }


def run_scores(rank: int, run: ModelRun) -> dict[str, Any]:
    """One run's place and scores, as ``scores.json`` and the job output list them; a
    multimer run's also its ipTM and ranking confidence (0.8 ipTM + 0.2 pTM)."""
    scores: dict[str, Any] = {
        "rank": rank,
        "model": run.model,
        "seed": run.seed,
        "mean_plddt": round(run.mean_plddt, 2),
        "ptm": round(run.ptm, 4),
    }
    if run.iptm is not None:
        scores["iptm"] = round(run.iptm, 4)
        scores["ranking_confidence"] = round(run.ranking_confidence, 4)
    if run.engine_score is not None:
        scores["ranking_score"] = round(run.engine_score, 4)
    return {**scores, "max_pae": round(run.max_pae, 2), "recycles": run.recycles}


def scores_json(prediction: Prediction) -> str:
    """A JSON array with one line per run, best first."""
    lines = [
        json.dumps(
            {
                **run_scores(rank, run),
                "engine": prediction.engine.name,
                "test_weights": prediction.test_weights,
            }
        )
        for rank, run in enumerate(prediction.ranked)
    ]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def _pae_record(run: ModelRun, test_weights: bool, engine: str) -> dict[str, Any]:
    return {
        "predicted_aligned_error": np.round(run.pae.astype(float), 2).tolist(),
        "max_predicted_aligned_error": round(run.max_pae, 2),
        "engine": engine,
        "test_weights": test_weights,
    }


def _confidence_record(run: ModelRun, test_weights: bool, engine: str) -> dict[str, Any]:
    scores = np.round(run.plddt.astype(float), 2).tolist()
    return {
        "residueNumber": list(range(1, len(scores) + 1)),
        "confidenceScore": scores,
        "confidenceCategory": [confidence_category(s) for s in scores],
        "engine": engine,
        "test_weights": test_weights,
    }


def _remarks(prediction: Prediction, run: ModelRun) -> list[str]:
    scores = f"mean pLDDT {run.mean_plddt:.2f} pTM {run.ptm:.4f}"
    if run.iptm is not None:
        scores += f" ipTM {run.iptm:.4f} confidence {run.ranking_confidence:.4f}"
    remarks = [
        f"foldserve {__version__} {prediction.engine.network} {run.model} seed {run.seed}",
        f"{scores} recycles {run.recycles}",
        f"MSA {Path(prediction.msa.source).name}: {len(prediction.msa)} rows",
    ]
    if prediction.is_complex:
        remarks += [
            f"chain {c.id}: entity {c.entity}, {c.length} residues "
            f"(complex residues {c.start + 1}-{c.end})"
            for c in prediction.chain_list
        ]
    return remarks


def _versions() -> dict[str, str]:
    versions = {"foldserve": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 3) for key, value in values.items()}


def _dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent) + "\n"
