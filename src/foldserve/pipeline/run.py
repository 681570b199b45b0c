"""``foldserve pipeline run``: MSA check → predictions → comparison → report, resumable.

Each step is skipped when its record in ``DIR/.steps`` matches the hash of its inputs
(:mod:`foldserve.pipeline.cache`): the predict step's covers the MSA (for a complex each
chain's MSA, copies and paired MSA), the options (model type and ranking among them), the
templates by content and their date, the engine and its weights and the relax choice. Outputs
in ``DIR``::

    msa.a3m            the checked MSA, as the predictor reads it (a complex's: ColabFold's
                       complex A3M, its chains paired)
    prediction/        the prediction directory (DESIGN.md), written whole or not at all
    comparison.json    every ranked model against every other and the reference
    report.html        the offline report, with report_figures/*.png

With several engines (``engines = ["alphafold2", "openfold3"]``) each engine predicts on the
same MSA in a step of its own (``predict-alphafold2``, …) into its own directory
(``prediction-alphafold2/``, …), each engine loaded once; ``comparison.json`` then compares the
engines' best models with each other and the reference
(:class:`~foldserve.pipeline.comparison.EnginesComparison`), and the report shows them
superposed side by side.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict

from foldserve.errors import InputError
from foldserve.files import write_text
from foldserve.fold import run_dir
from foldserve.fold.engine import Engines, weights_identity
from foldserve.fold.results import EngineName
from foldserve.fold.run_config import RelaxMode
from foldserve.fold.run_dir import StagedRun
from foldserve.fold.weights import resolve_param_dir
from foldserve.jobs.output import QuerySummary, RankingEntry
from foldserve.jobs.progress import JobProgress
from foldserve.msa.pairing import ChainMsa, pair_chains
from foldserve.msa.reading import read as read_msa
from foldserve.msa.search.results import SearchSummary, hits_file_name
from foldserve.msa.search.settings import SearchSettings
from foldserve.msa.writing import write as write_msa
from foldserve.pipeline import prediction_dir, viewer_js
from foldserve.pipeline.cache import StepCache, StepRecord, file_digest, key_of
from foldserve.pipeline.comparison import Scores, compare_engines, reference_metrics
from foldserve.pipeline.config import (
    SEARCH_FILE,
    SERVER_TEMPLATES_DIR,
    PipelineConfig,
    engine_takes,
)
from foldserve.pipeline.prediction_dir import PredictionDir
from foldserve.pipeline.report import write_engines_report, write_report
from foldserve.structure.compare import compare_all, read_compared

if TYPE_CHECKING:
    from foldserve.client.transport import OnRetry

MSA_FILE = "msa.a3m"
PREDICTION_DIR = "prediction"
PREDICT_STEP = "predict"
COMPARISON_FILE = "comparison.json"
REPORT_FILE = "report.html"
FIGURES_DIR = "report_figures"


@dataclass(frozen=True)
class StepResult:
    name: str
    status: Literal["ran", "cached"]
    record: StepRecord


class PredictInfo(BaseModel):
    """What the predict step keeps in its record: the ranking and timings, in process or from
    an endpoint alike, and what predicted (the engine; ``endpoint`` and ``job_id``, or the
    weights)."""

    model_config = ConfigDict(frozen=True)

    engine: EngineName = "alphafold2"
    ranking: tuple[RankingEntry, ...]
    timings: dict[str, float]
    test_weights: bool
    #: The model type that ran (``auto`` resolved) and its network, as ColabFold names it.
    model_type: str | None = None
    network: str | None = None
    #: The chains of the structure, ``("A:62", "B:70")``.
    chains: tuple[str, ...] = ()
    #: Templates the models used, by chain id.
    templates: dict[str, tuple[str, ...]] = {}
    warnings: tuple[str, ...] = ()
    job_id: str | None = None
    endpoint: str | None = None
    params_dir: str | None = None
    weights: str | None = None


@dataclass(frozen=True)
class PipelineResult:
    config: PipelineConfig
    steps: tuple[StepResult, ...]

    def info(self, step: str) -> dict[str, Any]:
        return next(s.record.info for s in self.steps if s.name == step)

    def prediction(self, engine: EngineName | None = None) -> PredictInfo:
        """The predict step's record of ``engine`` (the run's first), read back from its JSON."""
        name = engine or self.config.engines[0]
        return PredictInfo.model_validate(self.info(predict_step(self.config, name)))

    def output(self, step: str, name: str) -> Path:
        record = next(s.record for s in self.steps if s.name == step)
        return self.config.out / record.outputs[name]

    def inputs_key(self) -> str:
        """One hash of every step's key: equal for runs given the same inputs, which (steps
        being deterministic or cached) wrote the same outputs."""
        return key_of(**{step.name: step.record.key for step in self.steps})


def predict_step(config: PipelineConfig, engine: EngineName) -> str:
    """The step that predicts with ``engine``: ``predict``, or ``predict-openfold3`` when the
    run has several engines."""
    return PREDICT_STEP if len(config.engines) == 1 else f"{PREDICT_STEP}-{engine}"


def prediction_folder(config: PipelineConfig, engine: EngineName) -> str:
    """Where ``engine``'s prediction directory goes in ``DIR``: ``prediction``, or
    ``prediction-openfold3`` when the run has several engines."""
    return PREDICTION_DIR if len(config.engines) == 1 else f"{PREDICTION_DIR}-{engine}"


def _predictions(config: PipelineConfig) -> list[tuple[EngineName, PredictionDir]]:
    """Every engine's prediction directory, in the run's order of engines."""
    return [
        (name, prediction_dir.load(config.out / prediction_folder(config, name)))
        for name in config.engines
    ]


def _engine(config: PipelineConfig, name: EngineName) -> dict[str, Any]:
    """What predicts with engine ``name``: the endpoint, or the weights in process."""
    if config.remote:
        return {"engine": name, "endpoint": config.url or config.endpoint_id}
    param_dir = resolve_param_dir(config.params_dir)
    weights = weights_identity(name, param_dir)
    return {
        "engine": name,
        "params_dir": str(param_dir),
        "weights": weights.fingerprint,
        "test_weights": weights.test_weights,
    }


def _search(config: PipelineConfig, settings: SearchSettings) -> tuple[dict[str, str], Any]:
    """Search the MSA of the run's one query; the merged A3M and each database's hits."""
    from foldserve.msa.search import search_all
    from foldserve.msa.search.queries import read_queries

    assert config.sequence is not None
    queries = read_queries(config.sequence)
    if len(queries) != 1:
        raise InputError(
            f"{len(queries)} sequences; a pipeline run folds one",
            where=str(config.sequence),
            fix="give a FASTA with one record (foldserve predict takes several)",
        )
    (result,) = search_all(queries, settings)
    write_text(config.out / SEARCH_FILE, result.a3m())
    outputs = {"msa": SEARCH_FILE}
    for database in result.hits:
        name = hits_file_name(database.database)
        write_text(config.out / name, database.a3m)
        outputs[name] = name
    if config.server_templates:
        _fetch_server_templates(config, settings, queries[0].sequence)
        outputs["templates"] = SERVER_TEMPLATES_DIR
    return outputs, result.summary().model_dump(mode="json")


def _fetch_server_templates(config: PipelineConfig, settings: SearchSettings, query: str) -> None:
    """The server's template hits for the query, as ``colabfold_batch --templates`` fetches
    them, into ``SERVER_TEMPLATES_DIR`` (whole or not at all; empty when there are none)."""
    from foldserve.msa.search.colabfold_server import (
        fetch_server_templates,
        server_template_hits,
    )

    target = config.out / SERVER_TEMPLATES_DIR
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    hits = server_template_hits([query], settings)
    fetch_server_templates(settings, hits, partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def _search_identity(settings: SearchSettings) -> dict[str, Any]:
    """What decides a search's result: the tool, the databases (by path, size and time: hashing
    a 100 GB database for a cache key would cost more than the search), server, mode, cap."""
    databases = [
        [str(path), path.stat().st_size, path.stat().st_mtime_ns] if path.exists() else str(path)
        for path in settings.databases
    ]
    return {
        "tool": settings.tool,
        "databases": databases,
        "server": settings.server,
        "mode": settings.mode,
        "pair": settings.pair,
        "max_hits": settings.max_hits,
    }


def _msa_identity(config: PipelineConfig) -> dict[str, Any]:
    """What decides the checked MSA: the MSA's content, or each chain's MSA and copies and
    the paired MSA, and the format they are read in."""
    if config.chains:
        return {
            "chains": [[file_digest(c.msa), c.copies] for c in config.chains],
            "paired": file_digest(config.paired_msa) if config.paired_msa else None,
            "format": config.msa_format,
        }
    return {"msa": file_digest(config.msa_input), "format": config.msa_format}


def _template_identity(config: PipelineConfig) -> dict[str, Any] | None:
    """What decides the templates a prediction reads: each file by name (its template id
    comes from it) and content, or the server hits fetched, and the date."""
    source = config.template_source()
    if source is None:
        return None
    if source.server_dir is not None:
        fetched = file_digest(source.server_dir) if source.server_dir.is_dir() else None
        return {"server": fetched, "date": source.max_template_date}
    return {
        "files": [[path.name, file_digest(path)] for path in source.files],
        "date": source.max_template_date,
    }


def _check_msa(config: PipelineConfig) -> tuple[dict[str, str], dict[str, Any]]:
    """Read and check the MSA; for chains, read each and pair them into ColabFold's complex
    A3M (by species, or with the paired MSA given)."""
    warnings: list[str] = []
    info: dict[str, Any] = {}
    if config.chains:
        msas = [read_msa(str(c.msa), format=config.msa_format) for c in config.chains]
        paired = read_msa(str(config.paired_msa)) if config.paired_msa else None
        pairing = pair_chains(
            [ChainMsa(msa, c.copies) for msa, c in zip(msas, config.chains, strict=True)],
            paired=paired,
        )
        alignment = pairing.msa
        warnings = [w for msa in msas for w in msa.warnings] + list(pairing.warnings)
        info["paired_rows"] = pairing.paired_rows
        info["chains"] = [
            {"msa": c.msa.name, "copies": c.copies, "length": msa.query_length}
            for c, msa in zip(config.chains, msas, strict=True)
        ]
    else:
        alignment = read_msa(str(config.msa_input), format=config.msa_format)
    write_msa(alignment, config.out / MSA_FILE, format="a3m")  # whole or not at all
    info = {
        "depth": len(alignment),
        "query_length": alignment.query_length,
        "warnings": warnings or list(alignment.warnings),
        **info,
    }
    return {"msa": MSA_FILE}, info


def _chain_labels(query: QuerySummary) -> tuple[str, ...]:
    """``("A:62", "B:70")``: each chain of the structure and its length."""
    if not query.chains:
        return (f"A:{query.length}",)
    return tuple(f"{chain.id}:{chain.length}" for chain in query.chains)


#: Receives prediction progress, in process or remote alike, as a job reports it.
OnProgress = Callable[[JobProgress], None]


def _predict(
    config: PipelineConfig,
    name: EngineName,
    engines: Engines | None,
    engine: dict[str, Any],
    on_progress: OnProgress,
    on_retry: OnRetry | None,
    searched: SearchSummary | None,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Predict with engine ``name``: in process (from the warm ``engines``) or on the endpoint
    (``engines`` None); ``engine`` is what predicts, kept in the step's record."""
    folder = prediction_folder(config, name)
    staging = config.out / (folder + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    msa_path = config.out / MSA_FILE
    options = config.predict_options(name)
    # Templates go to the engines that take them (AlphaFold2), as the options do.
    source = config.template_source() if engine_takes(name, "templates") else None
    if config.remote:
        from foldserve.client.client import Client, JobState

        files: tuple[Path, ...] = ()
        if source is not None and source.server_dir is not None:
            # The endpoint aligns the server's hits as it aligns the user's files.
            files = tuple(sorted(source.server_dir.rglob("*.cif")))
        elif source is not None:
            files = source.files
        with Client(url=config.url, endpoint_id=config.endpoint_id, on_retry=on_retry) as client:
            relax = cast(RelaxMode, config.relax)
            job = client.submit(
                msa_path,
                options,
                engine=name,
                relax=relax,
                templates=files,
                max_template_date=source.max_template_date if files and source else None,
            )

            def forward(state: JobState) -> None:
                if state.progress:
                    on_progress(state.progress)

            output = client.result(job, on_update=forward)
            client.download(output, staging)
        info = PredictInfo(
            job_id=job,
            ranking=output.ranking,
            timings=output.timings,
            test_weights=output.test_weights,
            model_type=output.model_type,
            network=output.network,
            chains=_chain_labels(output.query),
            templates=output.templates,
            warnings=output.warnings,
            **engine,
        )
    else:
        from foldserve.fold.outputs import write_prediction
        from foldserve.jobs.output import model_type, query_summary, ranking

        assert engines is not None
        prediction = engines.get(name).predict(
            read_msa(str(msa_path)),
            options,
            templates=source,
            progress=lambda event: on_progress(JobProgress.from_event(event)),
        )
        relaxation = None
        if config.relax != "none":
            from foldserve.fold.relax import relax_prediction

            relaxation = relax_prediction(prediction, cast(RelaxMode, config.relax))
        write_prediction(prediction, staging, search=searched, relaxation=relaxation)
        info = PredictInfo(
            ranking=ranking(prediction),
            timings=prediction.timings,
            model_type=model_type(prediction),
            network=prediction.engine.network,
            chains=_chain_labels(query_summary(prediction)),
            templates=prediction.templates,
            warnings=prediction.warnings,
            **engine,
        )
    run_dir.commit(StagedRun(target=config.out / folder, staging=staging))
    return {"prediction": folder}, info.model_dump(mode="json", exclude_none=True)


def _compare(config: PipelineConfig) -> tuple[dict[str, str], dict[str, Any]]:
    """Every ranked model against every other and the reference; with several engines, the
    engines' best models (:func:`~foldserve.pipeline.comparison.compare_engines`)."""
    if len(config.engines) > 1:
        summary, _ = compare_engines(_predictions(config), config.reference, config.reference_chain)
        write_text(config.out / COMPARISON_FILE, summary.model_dump_json(indent=2) + "\n")
        return {"comparison": COMPARISON_FILE}, summary.metrics()
    ((_, prediction),) = _predictions(config)
    structures = [read_compared(model.path) for model in prediction.models]
    reference = (
        read_compared(config.reference, config.reference_chain) if config.reference else None
    )
    compared = compare_all(structures, reference)
    comparisons = [c.to_json() for c in compared]
    target = config.out / COMPARISON_FILE
    target.write_text(json.dumps({"comparisons": comparisons}, indent=2) + "\n")
    info: dict[str, Any] = {}
    if reference is not None:
        # compare_all lists every model against the reference last, best model first.
        info = reference_metrics(Scores.of(compared[len(compared) - len(structures)]))
    return {"comparison": COMPARISON_FILE}, info


def _report(config: PipelineConfig) -> tuple[dict[str, str], dict[str, Any]]:
    predictions = _predictions(config)
    output, figures = config.out / REPORT_FILE, config.out / FIGURES_DIR
    reference, chain = config.reference, config.reference_chain
    if len(predictions) > 1:
        write_engines_report(
            predictions, output, reference=reference, reference_chain=chain, figures_dir=figures
        )
    else:
        ((_, prediction),) = predictions
        write_report(
            prediction, output, reference=reference, reference_chain=chain, figures_dir=figures
        )
    return {"report": REPORT_FILE, "figures": FIGURES_DIR}, {}


def _ignore(_progress: JobProgress) -> None:
    pass


def run_pipeline(
    config: PipelineConfig,
    on_step: Callable[[str, str], None] | None = None,
    on_progress: OnProgress | None = None,
    on_retry: OnRetry | None = None,
) -> PipelineResult:
    """Run the steps not already done; ``on_step(step, "start" | "ran" | "cached")``,
    ``on_progress`` with the prediction's stage, model and recycle, and ``on_retry`` when a
    request to the endpoint starts retrying."""
    config.out.mkdir(parents=True, exist_ok=True)
    cache = StepCache(config.out)
    viewer_js.load()  # a missing viewer library stops the run before GPU time is spent
    reference = file_digest(config.reference) if config.reference else None
    if config.relax != "none" and not config.remote:
        from foldserve.fold.relax import check_relax_available

        check_relax_available(where="--relax")  # before any step, not after the prediction
    search = config.search_settings()
    results: list[StepResult] = []

    def step(name: str, key: str, work: Callable[[], tuple[dict[str, str], Any]]) -> None:
        record = cache.finished(name, key)
        if record is not None:
            results.append(StepResult(name, "cached", record))
        else:
            if on_step:
                on_step(name, "start")
            started = time.perf_counter()
            outputs, info = work()
            record = StepRecord(key, outputs, info, round(time.perf_counter() - started, 3))
            cache.save(name, record)
            results.append(StepResult(name, "ran", record))
        if on_step:
            on_step(name, results[-1].status)

    searched = None
    if search is not None:
        assert config.sequence is not None
        search_key = key_of(
            sequence=file_digest(config.sequence),
            search=_search_identity(search),
            templates=config.server_templates,
        )
        step("search", search_key, lambda: _search(config, search))
        searched = SearchSummary.model_validate(results[-1].record.info)
    msa_key = key_of(**_msa_identity(config))
    step("msa_check", msa_key, lambda: _check_msa(config))
    identities = {name: _engine(config, name) for name in config.engines}
    predict_keys = {
        name: key_of(
            msa=file_digest(config.out / MSA_FILE),
            inputs=msa_key,  # a complex's chains, copies and paired MSA
            options=config.predict_options(name).__dict__,  # model type and ranking among them
            templates=_template_identity(config) if engine_takes(name, "templates") else None,
            engine=identity,
            relax=config.relax,
        )
        for name, identity in identities.items()
    }
    engines = None if config.remote else Engines(config.engines, config.params_dir)
    pending = [
        name
        for name, key in predict_keys.items()
        if cache.finished(predict_step(config, name), key) is None
    ]
    if engines is not None and pending:
        # Each engine to run is loaded (once) and checks the MSA and options before any
        # predicts: a second engine refusing them fails the run before the first's GPU time.
        msa = read_msa(str(config.out / MSA_FILE))
        for name in pending:
            engines.get(name).check_input(msa, config.predict_options(name))
    for name, key in predict_keys.items():
        work = partial(
            _predict,
            config,
            name,
            engines,
            identities[name],
            on_progress or _ignore,
            on_retry,
            searched,
        )
        step(predict_step(config, name), key, work)
    predicted = {
        name: file_digest(config.out / prediction_folder(config, name)) for name in config.engines
    }
    compare_key = key_of(prediction=predicted, reference=reference, chain=config.reference_chain)
    step("compare", compare_key, lambda: _compare(config))
    report_key = key_of(compare=compare_key, viewer=viewer_js.VERSION, msa=msa_key)
    step("report", report_key, lambda: _report(config))
    return PipelineResult(config, tuple(results))
