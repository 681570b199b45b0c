"""The status object of a job, as ``/status``, ``/runsync`` and webhooks return it."""

from __future__ import annotations

import time
from typing import Any

from foldserve.jobs.schema import JobOutput, JobStatus, LinkedFile
from foldserve.server.store import Job


def status_body(job: Job, base_url: str, now: float | None = None) -> dict[str, Any]:
    """RunPod's status object; while running, ``output`` is the latest progress.

    File URLs are stored relative to the server (``/v2/…/results/…``) and made absolute here
    against ``base_url``, the address the caller used.
    """
    now = time.time() if now is None else now
    body: dict[str, Any] = {
        "id": job.id,
        "status": job.status.value,
        "delayTime": job.delay_ms(now),
        "executionTime": job.execution_ms(now),
    }
    if job.retried:
        body["retries"] = job.retried
    if job.status == JobStatus.COMPLETED and job.output is not None:
        body["output"] = _absolute_urls(job.output, base_url.rstrip("/")).to_wire()
    elif job.status == JobStatus.IN_PROGRESS and job.progress is not None:
        body["output"] = job.progress.to_wire()
    # A job requeued after a failure keeps its last error in the store, for the log: only a
    # job that ended without its output shows one.
    if job.error and job.status.finished and job.status != JobStatus.COMPLETED:
        body["error"] = job.error
    return body


def _absolute_urls(output: JobOutput, base_url: str) -> JobOutput:
    files = {
        name: (
            entry.model_copy(update={"url": base_url + entry.url})
            if isinstance(entry, LinkedFile) and entry.url.startswith("/")
            else entry
        )
        for name, entry in output.files.items()
    }
    return output.model_copy(update={"files": files})
