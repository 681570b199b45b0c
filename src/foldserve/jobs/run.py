"""One fold job, from its validated input to its output: the logic every worker shares.

The self-hosted endpoint's worker processes and the RunPod handler both call
:func:`run_fold_job` with the warm engines they serve; the job's ``engine`` picks one. Only how
progress is reported, how cancellation is noticed and where large files go differ, and those
are passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from foldserve.errors import InputError
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.engine import Engine, Engines
from foldserve.fold.outputs import write_prediction
from foldserve.fold.relax import check_relax_available, relax_prediction
from foldserve.fold.results import CancelCheck, TemplateSource
from foldserve.jobs.input import FoldJobInput
from foldserve.jobs.output import DEFAULT_INLINE_LIMIT, JobOutput, UrlFor, build_output
from foldserve.jobs.payload import DEFAULT_LIMITS, unpack_job_msa, unpack_templates
from foldserve.jobs.progress import JobProgress
from foldserve.msa.builder import MsaLimits
from foldserve.outbound import STRICT, OutboundPolicy

#: Where a job's template files are written, inside its work folder.
TEMPLATES_DIR = "templates"

#: Receives the job's progress: stage, model, recycle, scores.
OnProgress = Callable[[JobProgress], None]


def run_fold_job(
    job_input: FoldJobInput,
    engines: Engines | Engine,
    work_dir: Path,
    *,
    progress: OnProgress,
    cancel: CancelCheck | None = None,
    inline_limit: int = DEFAULT_INLINE_LIMIT,
    url_for: UrlFor | None = None,
    outbound: OutboundPolicy = STRICT,
    limits: MsaLimits = DEFAULT_LIMITS,
) -> JobOutput:
    """Parse, check, predict on the job's engine (one of ``engines``, or the one engine
    given), write the files into ``work_dir``; return the job's output.

    Raises :class:`~foldserve.errors.InputError` for input that cannot be used (naming the
    ``input.`` field or the MSA line; ``input.engine`` for an engine not among ``engines``)
    and :class:`~foldserve.errors.Cancelled` when ``cancel()`` turns true.
    """
    started = time.perf_counter()
    progress(JobProgress(stage="parse", elapsed=0.0))
    options = job_input.options()
    served = engines if isinstance(engines, Engines) else Engines.of(engines)
    engine = served.get(job_input.engine, where="input.engine")
    if isinstance(engine, Predictor):
        engine.check_models(options.models, where="input.models")
    unpacked = unpack_job_msa(job_input, limits=limits, outbound=outbound)
    msa = unpacked.msa
    templates = job_templates(job_input, work_dir / TEMPLATES_DIR, outbound=outbound)
    engine.check_input(msa, options, where="input.models")
    if job_input.relax != "none":
        check_relax_available(where="input.relax")
    parse_seconds = time.perf_counter() - started

    def elapsed() -> float:
        return round(time.perf_counter() - started, 1)

    prediction = engine.predict(
        msa,
        options,
        templates=templates,
        progress=lambda event: progress(JobProgress.from_event(event)),
        cancel=cancel,
    )
    relax_started = time.perf_counter()
    relaxation = relax_prediction(
        prediction,
        job_input.relax,
        progress=lambda name, index, count: progress(
            JobProgress(stage="relax", elapsed=elapsed(), model=name, run=index, runs=count)
        ),
    )
    relax_seconds = time.perf_counter() - relax_started
    progress(JobProgress(stage="write", elapsed=elapsed()))
    files = write_prediction(prediction, work_dir, relaxation=relaxation)
    timings = {
        "parse": parse_seconds,
        "features": prediction.timings.get("features", 0.0),
        "compile": prediction.timings.get("compile", 0.0),
        "predict": prediction.timings.get("predict", 0.0),
        **({"relax": relax_seconds} if job_input.relax != "none" else {}),
        "total": time.perf_counter() - started,
    }
    return build_output(
        prediction,
        files,
        job_input.outputs,
        timings=timings,
        inline_limit=inline_limit,
        url_for=url_for,
        warnings=relaxation.warnings(),
        chain_names=unpacked.chain_ids,
    )


def job_templates(
    job_input: FoldJobInput, directory: Path, *, outbound: OutboundPolicy = STRICT
) -> TemplateSource | None:
    """The job's template files, written into ``directory`` and checked as structures
    (:func:`foldserve.fold.alphafold2.template_files.find_template_files`); None for a job
    without templates. A file that is no structure is an error naming its
    ``input.templates[i]`` field."""
    paths = unpack_templates(job_input, directory, outbound=outbound)
    if not paths:
        return None
    from foldserve.fold.alphafold2.template_files import find_template_files  # the templates helper

    fields = {str(path): f"input.templates[{index}]" for index, path in enumerate(paths)}
    try:
        files = find_template_files(paths)
    except InputError as exc:
        where = exc.where or "input.templates"
        # The worker's file names mean nothing to the job's sender: name the JSON field.
        for path, field in fields.items():
            if where.startswith(path):
                where = field + where[len(path) :]
                break
        else:
            where = where.replace(str(directory), "input.templates")
        problem = (exc.problem or "").replace(str(directory) + "/", "")
        raise InputError(problem, where=where, fix=exc.fix) from None
    return TemplateSource(files=files, max_template_date=job_input.max_template_date)
