"""The job API client: one code path for RunPod and for a self-hosted ``foldserve serve``.

>>> from foldserve import Client
>>> with Client(url="http://gpu-box:8000") as client:         # key from FOLDSERVE_API_KEY
...     job = client.submit("family.a3m")
...     files = client.download(client.result(job), "family_prediction")

Transient failures are retried without ever submitting a job twice, and the API key goes only
to the endpoint itself (:mod:`foldserve.client.transport`); errors are the one-line types of
:mod:`foldserve.errors`, importable from here too.
"""

from __future__ import annotations

import os
import random
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from foldserve.client.request import JobRequest, build_request
from foldserve.client.transport import Transport, write_checked
from foldserve.config import Endpoint, resolve_endpoint
from foldserve.errors import JobFailed, RemoteError, Unavailable, WaitTimedOut
from foldserve.fold.results import PredictOptions
from foldserve.jobs.ids import FILE_NAME, JOB_ID, checked_job_id
from foldserve.jobs.schema import JobState, JobStatus, OutputKind
from foldserve.msa.model import Msa

__all__ = ["Client", "JobState", "check_job_id", "save_best_model"]

BEST_MODEL = "ranked_0.pdb"
POLL_FIRST_S = 0.5
POLL_MAX_S = 15.0
POLL_GROWTH = 1.5
#: How long :meth:`Client.wait` keeps polling an endpoint that does not answer.
WAIT_OUTAGE_S = 600.0


def check_job_id(job_id: str) -> str:
    """``job_id`` if it is a well-formed id; the error names the command's JOB argument."""
    return checked_job_id(job_id, where="JOB")


class Client:
    """Submit fold jobs to an endpoint, follow them, and fetch their results.

    Give ``url`` (self-hosted), ``endpoint_id`` (RunPod), ``profile`` (from the configuration
    file) or an ``endpoint`` already resolved; the key is ``api_key``, else the environment,
    else the configuration (see :func:`foldserve.config.resolve_endpoint`).
    """

    def __init__(
        self,
        url: str | None = None,
        endpoint_id: str | None = None,
        api_key: str | None = None,
        *,
        profile: str | None = None,
        endpoint: Endpoint | None = None,
        timeout: float = 30.0,
        max_retries: int = 6,
    ) -> None:
        if endpoint is not None and (url or endpoint_id or profile or api_key):
            raise TypeError("give either endpoint or url/endpoint_id/profile/api_key")
        self.endpoint = endpoint or resolve_endpoint(url, endpoint_id, profile, api_key)
        self._transport = Transport(self.endpoint, timeout=timeout, max_retries=max_retries)
        self._random = random.Random()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    # --- jobs ------------------------------------------------------------------------------

    def submit(
        self,
        msa: Msa | str | Path,
        options: PredictOptions | None = None,
        *,
        execution_timeout_s: float = 3600.0,
        ttl_s: float | None = None,
        outputs: list[OutputKind] | None = None,
        msa_format: str = "auto",
        query: str | None = None,
    ) -> str:
        """Check ``msa`` locally, upload it, and return the job id.

        An MSA reduced to fit the request limit, or read with warnings, is reported with
        :func:`warnings.warn` (``UserWarning``); :func:`build_request` and
        :meth:`submit_request` let a caller handle those warnings itself.
        """
        request = build_request(
            msa,
            options,
            execution_timeout_s=execution_timeout_s,
            ttl_s=ttl_s,
            outputs=outputs,
            msa_format=msa_format,
            query=query,
        )
        for warning in request.warnings:
            warnings.warn(warning, UserWarning, stacklevel=2)
        return self.submit_request(request)

    def submit_request(self, request: JobRequest) -> str:
        """``POST /run`` with a body from :func:`build_request`; returns the job id."""
        body = self._transport.call("POST", "run", content=request.content, unsent_only=True)
        job_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
            raise RemoteError(f"{self.endpoint.base_url}/run answered without a usable job id")
        return job_id

    def status(self, job_id: str) -> JobState:
        body = self._transport.call("GET", f"status/{check_job_id(job_id)}", job_id=job_id)
        return JobState.from_json(body, job_id)

    def stream(self, job_id: str) -> list[dict[str, Any]]:
        """The progress events reported so far (``GET /stream/{id}``)."""
        body = self._transport.call("GET", f"stream/{check_job_id(job_id)}", job_id=job_id)
        events = body.get("stream") if isinstance(body, dict) else None
        return [
            event["output"]
            for event in events or []
            if isinstance(event, dict) and isinstance(event.get("output"), dict)
        ]

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a queued or running job; returns its status (a finished job stays finished)."""
        body = self._transport.call("POST", f"cancel/{check_job_id(job_id)}", job_id=job_id)
        return JobState.from_json(body, job_id).status

    def wait(
        self,
        job_id: str,
        *,
        on_update: Callable[[JobState], None] | None = None,
        timeout: float | None = None,
    ) -> JobState:
        """Poll until the job finishes and return its final state.

        Polls start every half second and slow down to every 15 s (with jitter) while nothing
        changes; new progress makes them fast again. ``on_update`` sees every answer. An
        endpoint that stops answering (a restart, a network outage) is polled on for up to
        :data:`WAIT_OUTAGE_S` before :class:`Unavailable` is raised.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = POLL_FIRST_S
        last_progress: dict[str, Any] | None = None
        outage_since: float | None = None
        while True:
            try:
                state = self.status(job_id)
            except Unavailable:
                now = time.monotonic()
                outage_since = outage_since or now
                if now - outage_since > WAIT_OUTAGE_S or (deadline is not None and now > deadline):
                    raise
                time.sleep(POLL_MAX_S * self._random.uniform(0.75, 1.25))
                continue
            outage_since = None
            if on_update is not None:
                on_update(state)
            if state.status.finished:
                return state
            if state.progress != last_progress:
                last_progress, delay = state.progress, POLL_FIRST_S
            pause = delay * self._random.uniform(0.75, 1.25)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimedOut(
                        f"job {job_id} is still {state.status.value} after {timeout:g} s",
                        fix="it keeps running on the endpoint; wait again or cancel it",
                    )
                pause = min(pause, left)
            time.sleep(pause)
            delay = min(delay * POLL_GROWTH, POLL_MAX_S)

    def result(
        self,
        job_id: str,
        *,
        on_update: Callable[[JobState], None] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Wait for the job (``on_update`` as for :meth:`wait`) and return its output;
        :class:`JobFailed` unless it COMPLETED."""
        state = self.wait(job_id, on_update=on_update, timeout=timeout)
        if state.status is not JobStatus.COMPLETED:
            raise JobFailed(state)
        if not isinstance(state.output, dict):
            raise RemoteError(f"job {job_id} COMPLETED without an output object")
        return state.output

    # --- result files ------------------------------------------------------------------------

    def download(self, output: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
        """Write every file of a COMPLETED job's output into ``out_dir``; name -> path.

        Inline files are decoded, others fetched from their URL; each is checked against its
        SHA-256 and appears under its name only once complete (written as ``NAME.partial``,
        then renamed).
        """
        files = output.get("files")
        if not isinstance(files, dict):
            raise RemoteError("the job's output lists no files")
        directory = Path(out_dir)
        directory.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        for name, entry in files.items():
            if not isinstance(name, str) or not FILE_NAME.fullmatch(name):
                raise RemoteError(
                    f"the job's output names a file {name!r} that is not a plain name"
                )
            if not isinstance(entry, dict):
                raise RemoteError(f"{name}: the job's output entry is not an object")
            target = directory / name
            expected = entry.get("sha256")
            if isinstance(entry.get("data"), str):
                write_checked(target, [entry["data"].encode("utf-8")], expected)
            elif isinstance(entry.get("url"), str):
                self._transport.fetch(entry["url"], target, expected)
            else:
                raise RemoteError(f"{name}: the job's output gives neither data nor url")
            written[name] = target
        return written


def save_best_model(files: dict[str, Path], output: str | Path) -> Path:
    """Copy the best model (``ranked_0.pdb``) of downloaded ``files`` to ``output``."""
    best = files.get(BEST_MODEL)
    if best is None:
        raise RemoteError(
            f"the job's output has no {BEST_MODEL}",
            fix="submit with outputs that include pdb (the default)",
        )
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(best, partial)
    os.replace(partial, target)
    return target
