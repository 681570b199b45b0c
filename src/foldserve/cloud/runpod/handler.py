"""The RunPod handler: one fold job per call, on the worker's warm engine the job names.

The job logic is the self-hosted worker's (:func:`foldserve.jobs.run.run_fold_job`): the
same input validation and the same output JSON. What is RunPod's own:

* Cancellation. RunPod tells a worker to stop a job (cancelled, or past its execution timeout)
  on the SDK's job-stop channel, and the SDK then cancels the asyncio task running the handler.
  The prediction itself runs in a thread, so the handler turns that cancellation into a
  :class:`threading.Event` that the prediction checks at every recycle, and waits for the
  thread to stop before letting the SDK take the next job: two predictions never share the GPU.
* Failures raise, so RunPod marks the job FAILED with the exception's one-line message: the
  field or MSA line for bad input, a short description for anything else.
* The SDK takes plain JSON: the output and each progress event go to it as the JSON the job
  contract describes (:meth:`~foldserve.jobs.wire.WireModel.to_wire`).
* Large files go to the bucket (:mod:`foldserve.cloud.runpod.storage`) when one is configured.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foldserve.cloud.progress import ThrottledProgress
from foldserve.cloud.runpod.settings import RunpodSettings
from foldserve.cloud.runpod.storage import Bucket
from foldserve.errors import Cancelled, FoldserveError
from foldserve.fold.engine import Engines
from foldserve.jobs.failures import crash_message
from foldserve.jobs.output import JobOutput
from foldserve.jobs.progress import JobProgress
from foldserve.jobs.run import run_fold_job
from foldserve.jobs.schema import parse_job_input

#: A job as the SDK hands it over: ``{"id": ..., "input": {...}, ...}``.
RunpodJob = dict[str, Any]
Handler = Callable[[RunpodJob], Awaitable[dict[str, Any]]]
#: ``runpod.serverless.progress_update``, or a stand-in: the job and a progress event's JSON.
SendProgress = Callable[[RunpodJob, dict[str, Any]], None]

log = logging.getLogger("foldserve.runpod")


class JobCrashed(Exception):
    """A job that failed for a reason other than its input; the message is one line."""


@dataclass
class FoldJobs:
    """Runs jobs, one at a time, on the engines loaded when the worker started."""

    engines: Engines
    settings: RunpodSettings
    send_progress: SendProgress
    bucket: Bucket | None = None

    def run(self, job: RunpodJob, stop: threading.Event) -> JobOutput:
        """Run ``job`` to its output; raises when it fails or ``stop`` is set."""
        job_id = str(job["id"])
        progress = ThrottledProgress(
            functools.partial(self._send_progress, job), self.settings.progress_interval
        )
        with tempfile.TemporaryDirectory(prefix="foldserve-job-") as work_dir:
            try:
                output = run_fold_job(
                    parse_job_input(job.get("input")),
                    self.engines,
                    Path(work_dir),
                    progress=progress,
                    cancel=stop.is_set,
                    inline_limit=self.settings.inline_limit,
                    url_for=self.bucket.url_for(job_id) if self.bucket else None,
                    outbound=self.settings.outbound,
                )
            except (FoldserveError, Cancelled) as exc:
                log.info("job %s ended: %s", job_id, exc)
                raise
            except Exception as exc:
                log.exception("job %s crashed", job_id)
                message = crash_message(exc, "the traceback is in the worker's log")
                raise JobCrashed(message) from exc
        log.info("job %s completed", job_id)
        return output

    def _send_progress(self, job: RunpodJob, progress: JobProgress) -> None:
        self.send_progress(job, progress.to_wire())


def async_handler(jobs: FoldJobs) -> Handler:
    """The handler given to ``runpod.serverless.start``: ``jobs.run`` in a thread, cancellable."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fold")

    async def handler(job: RunpodJob) -> dict[str, Any]:
        stop = threading.Event()
        running = asyncio.get_running_loop().run_in_executor(executor, jobs.run, job, stop)
        try:
            return (await asyncio.shield(running)).to_wire()
        except asyncio.CancelledError:
            stop.set()
            log.info("job %s: stop requested; stopping at the next recycle", job["id"])
            await _until_done(running)
            raise

    return handler


async def _until_done(running: asyncio.Future[Any]) -> None:
    """Wait for the thread to finish, through any further cancellations."""
    while not running.done():
        try:
            await asyncio.wait([running])
        except asyncio.CancelledError:
            continue
    if not running.cancelled():
        running.exception()  # retrieved: the job was stopped, its outcome is not reported
