"""The record of runs: every pipeline run logged to MLflow, and read back side by side.

The default store is SQLite under the run's output directory (``DIR/mlruns/mlflow.db``, with
artifacts in ``DIR/mlruns/artifacts``); ``--tracking-uri`` names another store or a server.
Only logging a run creates a store: reading one that is not there finds no runs. MLflow's own
logging and warnings are kept off the user's terminal.

A pipeline run with one engine is one MLflow run. With several, it is a parent run (the shared
parameters, the engines' comparison metrics such as ``tm_score_alphafold2_vs_openfold3``, the
report) with one nested child run per engine (tag and parameter ``engine``; its parameters,
metrics and models), so ``runs compare PARENT`` sets the engines side by side.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foldserve.errors import InputError
from foldserve.fold.results import EngineName
from foldserve.pipeline.comparison import PAIR, EnginesComparison
from foldserve.pipeline.config import engine_takes
from foldserve.pipeline.run import PipelineResult, predict_step

EXPERIMENT = "foldserve"
STORE_DIR = "mlruns"
#: The tag holding :meth:`PipelineResult.inputs_key`: runs with the same one are the same run.
INPUTS_TAG = "inputs_key"
#: The tag naming the engine of an engine's run.
ENGINE_TAG = "engine"
#: MLflow's tag that nests a run under its parent.
PARENT_TAG = "mlflow.parentRunId"
#: The parameters that differ by engine: on each engine's run, not on the parent.
ENGINE_PARAMS = ("engine", "model_type", "network", "chains", "weights", "test_weights")
_SQLITE = "sqlite:///"


def default_uri(run_dir: Path) -> str:
    return f"{_SQLITE}{(run_dir / STORE_DIR / 'mlflow.db').resolve()}"


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a SQLite store; None for any other store."""
    return Path(uri.removeprefix(_SQLITE)) if uri.startswith(_SQLITE) else None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence MLflow's and alembic's INFO lines and warnings for the duration."""
    # MLflow sets its loggers' levels when it is first imported: import it before ours.
    import mlflow  # noqa: F401

    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: Any, uri: str) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return str(experiment.experiment_id)
    database = _sqlite_file(uri)
    artifacts = (database.parent / "artifacts").as_uri() if database is not None else None
    return str(client.create_experiment(EXPERIMENT, artifact_location=artifacts))


def _templates_param(result: PipelineResult) -> str:
    """``none``, ``server``, or how many template files were given."""
    config = result.config
    if config.server_templates:
        return "server"
    return str(len(config.template_files())) if config.templates else "none"


def run_params(result: PipelineResult, engine: EngineName | None = None) -> dict[str, str]:
    """The parameters of the run of ``engine`` (the run's first): the shared ones and the
    engine's (:data:`ENGINE_PARAMS`)."""
    config = result.config
    predict = result.prediction(engine)
    msa = result.info("msa_check")
    if config.chains:
        msa_name = "+".join(chain.msa.name for chain in config.chains)
    else:
        msa_name = config.msa_input.name
    params: dict[str, Any] = {
        "msa": msa_name,
        "msa_depth": msa["depth"],
        "query_length": msa["query_length"],
        "engines": ",".join(config.engines),
        "engine": predict.engine,
        "models": ",".join(str(m) for m in config.models)
        if engine_takes(predict.engine, "models")
        else "",
        "num_recycles": config.num_recycles,
        "seed": config.seed,
        "model_type": predict.model_type or config.model_type,
        "network": predict.network or "",
        "rank_by": config.rank_by,
        "chains": ",".join(predict.chains),
        "copies": ",".join(str(chain.copies) for chain in config.chains),
        "paired_msa": config.paired_msa.name if config.paired_msa else "",
        "templates": _templates_param(result),
        "max_template_date": config.max_template_date or "",
        "relax": config.relax,
        "backend": "endpoint" if config.remote else "local",
        "endpoint": predict.endpoint or "",
        "weights": predict.weights or "",
        "test_weights": predict.test_weights,
        "reference": config.reference.name if config.reference else "",
    }
    return {key: str(value) for key, value in params.items()}


def _shared_params(result: PipelineResult) -> dict[str, str]:
    """The parent run's parameters: those every engine's run shares."""
    params = run_params(result)
    return {key: value for key, value in params.items() if key not in ENGINE_PARAMS}


def engine_metrics(result: PipelineResult, engine: EngineName | None = None) -> dict[str, float]:
    """The best model's scores, the prediction's timings and the predict step's seconds."""
    name = engine or result.config.engines[0]
    predict = result.prediction(name)
    metrics: dict[str, float] = {}
    if predict.ranking:
        best = predict.ranking[0]
        metrics["mean_plddt"], metrics["ptm"] = best.mean_plddt, best.ptm
        if best.iptm is not None:
            metrics["iptm"] = best.iptm
        if best.ranking_confidence is not None:
            metrics["ranking_confidence"] = best.ranking_confidence
    for timing, seconds in predict.timings.items():
        metrics[f"predict_{timing}_s"] = seconds
    step = predict_step(result.config, name)
    metrics["predict_s"] = next(s.record.seconds for s in result.steps if s.name == step)
    return metrics


def run_metrics(result: PipelineResult) -> dict[str, float]:
    """A run of one engine: the best model's scores, the comparison against the reference,
    the timings; of several (the parent run): the engines' comparison and the steps' timings."""
    metrics = engine_metrics(result) if len(result.config.engines) == 1 else {}
    for name, value in result.info("compare").items():
        metrics[name] = float(value)
    for step in result.steps:
        metrics[f"{step.name}_s"] = step.record.seconds
    return metrics


@dataclass(frozen=True)
class Logged:
    """The MLflow run recording a pipeline run: ``new``, or one logged before for the same
    inputs (see :func:`log_run`); with several engines, each engine's run nested in it."""

    run_id: str
    new: bool
    engine_runs: dict[EngineName, str] = field(default_factory=dict)


def log_run(result: PipelineResult, tracking_uri: str | None = None) -> Logged:
    """Log parameters, metrics and artifacts of a pipeline run, unless nothing changed.

    A run whose every step came from the cache computed nothing: when the store already holds
    a finished run of the same inputs (tag ``inputs_key``, which chains every step's inputs:
    MSA, options, weights, reference), that run is returned and nothing is logged. Its
    parameters, metrics (the cached steps' timings too) and artifacts would be the same, and a
    copy would only crowd ``runs list``, ``runs compare`` and MLflow's UI; a run stays the
    record of one computation, so the old one is not touched either. A store without such a
    run (another ``--tracking-uri``, a run logged before the tag existed) gets one.
    """
    uri = tracking_uri or default_uri(result.config.out)
    out = result.config.out
    inputs_key = result.inputs_key()
    database = _sqlite_file(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    with _quiet():
        client = _client(uri)
        experiment_id = _experiment_id(client, uri)
        if all(step.status == "cached" for step in result.steps):
            same = client.search_runs(
                [experiment_id],
                filter_string=f"tags.{INPUTS_TAG} = '{inputs_key}' "
                "and attributes.status = 'FINISHED'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            if same:
                return Logged(str(same[0].info.run_id), new=False)
        run = client.create_run(experiment_id, run_name=out.name)
        run_id = str(run.info.run_id)
        cached = ",".join(s.name for s in result.steps if s.status == "cached")
        tags = {"out_dir": str(out.resolve()), "cached_steps": cached, INPUTS_TAG: inputs_key}
        several = len(result.config.engines) > 1
        if several:
            _log(client, run, _shared_params(result), run_metrics(result), tags)
        else:
            engine = result.config.engines[0]
            tags[ENGINE_TAG] = engine
            _log(client, run, run_params(result), run_metrics(result), tags)
            _log_models(client, run_id, result, engine)
        client.log_artifact(run_id, str(result.output("report", "report")))
        client.log_artifact(run_id, str(result.output("compare", "comparison")))
        client.log_artifacts(run_id, str(result.output("report", "figures")), "figures")
        engine_runs = _log_engine_runs(client, experiment_id, run_id, result) if several else {}
        client.set_terminated(run_id)
    return Logged(run_id, new=True, engine_runs=engine_runs)


def _log(
    client: Any,
    run: Any,
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str],
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    stamp = int(run.info.start_time)
    client.log_batch(
        str(run.info.run_id),
        metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )


def _log_models(client: Any, run_id: str, result: PipelineResult, engine: EngineName) -> None:
    prediction = result.output(predict_step(result.config, engine), "prediction")
    for model in sorted(prediction.glob("ranked_*.*")):
        client.log_artifact(run_id, str(model), "models")


def _log_engine_runs(
    client: Any, experiment_id: str, parent_id: str, result: PipelineResult
) -> dict[EngineName, str]:
    """One run per engine nested in the parent: its parameters, its best model's scores (and
    against the reference), its timings and models."""
    comparison = EnginesComparison.model_validate_json(
        result.output("compare", "comparison").read_bytes()
    )
    out = result.config.out
    runs: dict[EngineName, str] = {}
    for engine in result.config.engines:
        tags = {PARENT_TAG: parent_id, ENGINE_TAG: engine, "out_dir": str(out.resolve())}
        run = client.create_run(experiment_id, run_name=f"{out.name}/{engine}", tags=tags)
        run_id = str(run.info.run_id)
        metrics = {**engine_metrics(result, engine), **comparison.engine_metrics(engine)}
        _log(client, run, run_params(result, engine), metrics, {})
        _log_models(client, run_id, result, engine)
        client.set_terminated(run_id)
        runs[engine] = run_id
    return runs


@dataclass(frozen=True)
class RunRow:
    run_id: str
    name: str
    start_time: int
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    #: The run this one is nested in (an engine's run: the pipeline run of several engines).
    parent_id: str | None = None


def _row(run: Any) -> RunRow:
    return RunRow(
        run_id=str(run.info.run_id),
        name=str(run.info.run_name),
        start_time=int(run.info.start_time),
        status=str(run.info.status),
        params=dict(run.data.params),
        metrics={k: float(v) for k, v in run.data.metrics.items()},
        parent_id=run.data.tags.get(PARENT_TAG),
    )


def list_runs(tracking_uri: str) -> list[RunRow]:
    """Every foldserve run in the store, newest first; none from a SQLite store that is not
    there (opening it would create it)."""
    database = _sqlite_file(tracking_uri)
    if database is not None and not database.is_file():
        return []
    with _quiet():
        client = _client(tracking_uri)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            return []
        runs = client.search_runs(
            [experiment.experiment_id], order_by=["attributes.start_time DESC"]
        )
        return [_row(run) for run in runs]


def _find(runs: list[RunRow], ids: list[str], tracking_uri: str) -> list[RunRow]:
    """The runs named by ids or unique id prefixes, in the order given."""
    found = []
    for wanted in ids:
        matches = [run for run in runs if run.run_id.startswith(wanted)]
        if len(matches) != 1:
            problem = "no run" if not matches else f"{len(matches)} runs"
            raise InputError(
                f"{problem} with id {wanted!r} in {tracking_uri}",
                where="RUN",
                fix="give an id (or a unique prefix) from `foldserve runs list`",
            )
        found.append(matches[0])
    return found


def engine_runs(runs: list[RunRow], parent: RunRow) -> list[RunRow]:
    """The runs nested in ``parent`` (one per engine), in the order of its engines."""
    children = [run for run in runs if run.parent_id == parent.run_id]
    order = parent.params.get("engines", "").split(",")
    return sorted(children, key=lambda run: _position(order, run.params.get("engine", "")))


def _position(order: list[str], name: str) -> int:
    return order.index(name) if name in order else len(order)


@dataclass(frozen=True)
class SideBySide:
    """What ``runs compare`` sets side by side: a column per run named, a run of several
    engines opened into its engines' runs (``parents`` holds those, with the comparison)."""

    columns: tuple[RunRow, ...]
    parents: tuple[RunRow, ...]


def pair_metrics(parent: RunRow) -> dict[str, float]:
    """The engines' comparison metrics of a run of several engines
    (``tm_score_alphafold2_vs_openfold3``, …)."""
    return {name: value for name, value in parent.metrics.items() if PAIR in name}


def side_by_side(tracking_uri: str, ids: list[str]) -> SideBySide:
    """The runs named by ids or unique id prefixes, in the order given, each run of several
    engines as its engines' runs."""
    runs = list_runs(tracking_uri)
    columns: list[RunRow] = []
    parents: list[RunRow] = []
    for run in _find(runs, ids, tracking_uri):
        children = engine_runs(runs, run)
        columns += children or [run]
        parents += [run] if children else []
    return SideBySide(tuple(columns), tuple(parents))
