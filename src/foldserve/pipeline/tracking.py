"""The record of runs: every pipeline run logged to MLflow, and read back side by side.

The default store is SQLite under the run's output directory (``DIR/mlruns/mlflow.db``, with
artifacts in ``DIR/mlruns/artifacts``); ``--tracking-uri`` names another store or a server.
Only logging a run creates a store: reading one that is not there finds no runs. MLflow's own
logging and warnings are kept off the user's terminal.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foldserve.errors import InputError
from foldserve.pipeline.run import PipelineResult

EXPERIMENT = "foldserve"
STORE_DIR = "mlruns"
#: The tag holding :meth:`PipelineResult.inputs_key`: runs with the same one are the same run.
INPUTS_TAG = "inputs_key"
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


def run_params(result: PipelineResult) -> dict[str, str]:
    config = result.config
    predict = result.prediction()
    msa = result.info("msa_check")
    if config.chains:
        msa_name = "+".join(chain.msa.name for chain in config.chains)
    else:
        msa_name = config.msa_input.name
    params: dict[str, Any] = {
        "msa": msa_name,
        "msa_depth": msa["depth"],
        "query_length": msa["query_length"],
        "models": ",".join(str(m) for m in config.models),
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
        "engine": "endpoint" if config.remote else "local",
        "endpoint": predict.endpoint or "",
        "weights": predict.weights or "",
        "test_weights": predict.test_weights,
        "reference": config.reference.name if config.reference else "",
    }
    return {key: str(value) for key, value in params.items()}


def run_metrics(result: PipelineResult) -> dict[str, float]:
    predict = result.prediction()
    metrics: dict[str, float] = {}
    if predict.ranking:
        best = predict.ranking[0]
        metrics["mean_plddt"], metrics["ptm"] = best.mean_plddt, best.ptm
        if best.iptm is not None:
            metrics["iptm"] = best.iptm
        if best.ranking_confidence is not None:
            metrics["ranking_confidence"] = best.ranking_confidence
    for name, value in result.info("compare").items():
        metrics[name] = float(value)
    for name, seconds in predict.timings.items():
        metrics[f"predict_{name}_s"] = seconds
    for step in result.steps:
        metrics[f"{step.name}_s"] = step.record.seconds
    return metrics


@dataclass(frozen=True)
class Logged:
    """The MLflow run recording a pipeline run: ``new``, or one logged before for the same
    inputs (see :func:`log_run`)."""

    run_id: str
    new: bool


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
    from mlflow.entities import Metric, Param, RunTag

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
        stamp = int(run.info.start_time)
        cached = ",".join(s.name for s in result.steps if s.status == "cached")
        tags = {"out_dir": str(out.resolve()), "cached_steps": cached, INPUTS_TAG: inputs_key}
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, stamp, 0) for k, v in run_metrics(result).items()],
            params=[Param(k, v) for k, v in run_params(result).items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        prediction = result.output("predict", "prediction")
        for model in sorted(prediction.glob("ranked_*.*")):
            client.log_artifact(run_id, str(model), "models")
        client.log_artifact(run_id, str(result.output("report", "report")))
        client.log_artifact(run_id, str(result.output("compare", "comparison")))
        client.log_artifacts(run_id, str(result.output("report", "figures")), "figures")
        client.set_terminated(run_id)
    return Logged(run_id, new=True)


@dataclass(frozen=True)
class RunRow:
    run_id: str
    name: str
    start_time: int
    status: str
    params: dict[str, str]
    metrics: dict[str, float]


def _row(run: Any) -> RunRow:
    return RunRow(
        run_id=str(run.info.run_id),
        name=str(run.info.run_name),
        start_time=int(run.info.start_time),
        status=str(run.info.status),
        params=dict(run.data.params),
        metrics={k: float(v) for k, v in run.data.metrics.items()},
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


def find_runs(tracking_uri: str, ids: list[str]) -> list[RunRow]:
    """The runs named by ids or unique id prefixes, in the order given."""
    runs = list_runs(tracking_uri)
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
