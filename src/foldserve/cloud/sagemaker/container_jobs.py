"""The container's jobs: one invocation's body in, the fold job's output out, on the engines
loaded at start, one job at a time.

The job logic is every worker's (:func:`foldserve.jobs.run.run_fold_job`): the same input
checks, the same one-line errors, the same output JSON as the RunPod worker's. What is the
container's own: files go inline up to its (high) limit, since SageMaker writes the response
to S3 itself; the job's progress goes to the log (CloudWatch), each new stage or model at once;
and SIGTERM (:attr:`Invocations.stopping`) stops a running prediction at its next recycle.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
import threading
from pathlib import Path

from foldserve.cloud.progress import ThrottledProgress
from foldserve.cloud.sagemaker.container_input import job_input_of
from foldserve.cloud.sagemaker.container_settings import ContainerSettings
from foldserve.errors import FoldserveError
from foldserve.fold.engine import Engines
from foldserve.jobs.failures import crash_message
from foldserve.jobs.output import JobOutput
from foldserve.jobs.progress import JobProgress, describe_progress
from foldserve.jobs.run import run_fold_job

log = logging.getLogger("foldserve.sagemaker")

#: Seconds between progress lines of one stage and model (a recycle every second or so).
PROGRESS_LOG_INTERVAL = 30.0


class JobCrashed(Exception):
    """A job that failed for a reason other than its input; the message is one line."""


class Invocations:
    """The engines, once loaded, and the one job that may run on them at a time."""

    def __init__(self, settings: ContainerSettings) -> None:
        self.settings = settings
        #: Set at SIGTERM: a running prediction stops at its next recycle.
        self.stopping = threading.Event()
        self._engines: Engines | None = None
        self._busy = threading.Lock()
        self._numbers = itertools.count(1)

    @property
    def warm(self) -> bool:
        return self._engines is not None

    def warmed(self, engines: Engines) -> None:
        """The engines are loaded: jobs may run."""
        self._engines = engines

    def claim(self) -> bool:
        """Take the one job slot, if it is free; :meth:`release` gives it back."""
        return self._busy.acquire(blocking=False)

    def release(self) -> None:
        self._busy.release()

    def run(self, body: bytes) -> JobOutput:
        """The output of the job ``body`` holds (call with the slot claimed, once warm).

        Raises :class:`~foldserve.errors.InputError` for input that cannot be used,
        :class:`~foldserve.errors.Cancelled` when stopped, another
        :class:`~foldserve.errors.FoldserveError` for an expected failure, and
        :class:`JobCrashed` for anything else.
        """
        assert self._engines is not None, "a job before the engines were loaded"
        label = f"invocation {next(self._numbers)}"
        with tempfile.TemporaryDirectory(prefix="foldserve-job-") as work_dir:
            try:
                output = run_fold_job(
                    job_input_of(body),
                    self._engines,
                    Path(work_dir),
                    progress=ThrottledProgress(_ProgressLog(label), PROGRESS_LOG_INTERVAL),
                    cancel=self.stopping.is_set,
                    inline_limit=self.settings.inline_limit,
                    outbound=self.settings.outbound,
                )
            except FoldserveError as exc:
                log.info("%s ended: %s", label, exc)
                raise
            except Exception as exc:
                log.exception("%s crashed", label)
                raise JobCrashed(
                    crash_message(exc, "the traceback is in the container's log")
                ) from exc
        log.info("%s completed in %.1f s", label, output.timings.get("total", 0.0))
        return output


class _ProgressLog:
    """One log line per progress report of a job."""

    def __init__(self, label: str) -> None:
        self._label = label

    def __call__(self, progress: JobProgress) -> None:
        parts = [f"{self._label}: {progress.stage}", *describe_progress(progress)]
        log.info("%s", " ".join(parts))
