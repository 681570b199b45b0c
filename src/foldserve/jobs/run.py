"""One fold job, from its validated input to its output JSON: the logic every worker shares.

The self-hosted endpoint's worker processes and the RunPod handler both call
:func:`run_fold_job`; only how progress is reported, how cancellation is noticed and where
large files go differ, and those are passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from foldserve.fold.outputs import write_prediction
from foldserve.fold.predictor import Predictor
from foldserve.fold.results import CancelCheck, ProgressEvent
from foldserve.jobs.output import DEFAULT_INLINE_LIMIT, UrlFor, build_output
from foldserve.jobs.payload import unpack_msa
from foldserve.jobs.schema import FoldJobInput

#: Receives job progress as JSON-ready dicts: ``{"stage": ..., "model": ..., "recycle": ...}``.
JobProgress = Callable[[dict[str, Any]], None]


def progress_payload(event: ProgressEvent) -> dict[str, Any]:
    """A progress event as the JSON a client shows: stage, model, seed, recycle, scores."""
    payload: dict[str, Any] = {"stage": event.stage, "elapsed": round(event.elapsed, 1)}
    if event.model is not None:
        payload["model"] = event.model
    if event.seed is not None:
        payload["seed"] = event.seed
    if event.recycle is not None:
        payload["recycle"] = event.recycle
        payload["num_recycles"] = event.num_recycles
    if event.num_runs:
        payload["run"] = event.run_index + 1
        payload["runs"] = event.num_runs
    if event.mean_plddt is not None:
        payload["mean_plddt"] = round(event.mean_plddt, 2)
    if event.ptm is not None:
        payload["ptm"] = round(event.ptm, 4)
    return payload


def run_fold_job(
    job_input: FoldJobInput,
    predictor: Predictor,
    work_dir: Path,
    *,
    progress: JobProgress,
    cancel: CancelCheck | None = None,
    inline_limit: int = DEFAULT_INLINE_LIMIT,
    url_for: UrlFor | None = None,
) -> dict[str, Any]:
    """Parse, check, predict, write the files into ``work_dir``; return the output JSON.

    Raises :class:`~foldserve.errors.InputError` for input that cannot be used (naming the
    ``input.`` field or the MSA line) and
    :class:`~foldserve.fold.results.Cancelled` when ``cancel()`` turns true.
    """
    started = time.perf_counter()
    progress({"stage": "parse", "elapsed": 0.0})
    options = job_input.options()
    msa = unpack_msa(job_input)
    predictor.check_fits(msa)
    parse_seconds = time.perf_counter() - started

    prediction = predictor.predict(
        msa, options, progress=lambda event: progress(progress_payload(event)), cancel=cancel
    )
    progress({"stage": "write", "elapsed": round(time.perf_counter() - started, 1)})
    files = write_prediction(prediction, work_dir)
    timings = {
        "parse": parse_seconds,
        "features": prediction.timings.get("features", 0.0),
        "compile": prediction.timings.get("compile", 0.0),
        "predict": prediction.timings.get("predict", 0.0),
        "total": time.perf_counter() - started,
    }
    return build_output(
        prediction,
        files,
        job_input.outputs,
        timings=timings,
        inline_limit=inline_limit,
        url_for=url_for,
    )
