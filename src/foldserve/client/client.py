"""The job API client: one code path for RunPod and for a self-hosted ``foldserve serve``.

>>> from foldserve import Client
>>> with Client(url="http://gpu-box:8000") as client:         # key from FOLDSERVE_API_KEY
...     job = client.submit("family.a3m")    # recorded: `foldserve status JOB` follows it
...     files = client.download(client.result(job), "family_prediction")

Transient failures are retried without ever submitting a job twice, and the API key goes only
to the endpoint itself (:mod:`foldserve.client.transport`); errors are the one-line types of
:mod:`foldserve.errors`, importable from here too.

:class:`JobClient` is what submitting, following and fetching a job need of a client; a
SageMaker endpoint has its own (:class:`foldserve.client.sagemaker.SageMakerClient`), so the
command line drives every kind of endpoint through one code path.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Protocol, Self, overload

from pydantic import ValidationError

from foldserve.client import records
from foldserve.client.records import JobRecord
from foldserve.client.request import ChainSpec, JobRequest, build_request
from foldserve.client.transport import FIRST_CONNECT_S, OnRetry, Transport, write_checked
from foldserve.config import Endpoint, resolve_endpoint
from foldserve.errors import RemoteError, Unavailable, WaitTimedOut
from foldserve.fold.engine import DEFAULT_ENGINE
from foldserve.fold.outputs import best_model_source, write_best_model
from foldserve.fold.results import EngineName, PredictOptions
from foldserve.fold.run_config import RelaxMode
from foldserve.jobs.ids import FILE_NAME, JOB_ID, checked_job_id
from foldserve.jobs.output import is_run_file
from foldserve.jobs.schema import (
    InlineFile,
    JobOutput,
    JobProgress,
    JobState,
    JobStatus,
    LinkedFile,
    OutputKind,
)
from foldserve.msa.model import Msa
from foldserve.retry import DEFAULT_RETRY, RetryPolicy

__all__ = [
    "ChainSpec",
    "Client",
    "JobClient",
    "JobOutput",
    "JobProgress",
    "JobState",
    "check_job_id",
    "save_best_model",
]

POLL_FIRST_S = 0.5
POLL_MAX_S = 15.0
POLL_GROWTH = 1.5
#: How long :meth:`Client.wait` keeps polling an endpoint that does not answer.
WAIT_OUTAGE_S = 600.0


def check_job_id(job_id: str) -> str:
    """``job_id`` if it is a well-formed id; the error names the command's JOB argument."""
    return checked_job_id(job_id, where="JOB")


#: ``fetch(url, target, sha256)``: download a result file that is not inline into ``target``,
#: checked as :func:`~foldserve.client.transport.write_checked` does.
Fetch = Callable[[str, Path, str], None]


class JobClient(Protocol):
    """Submit fold jobs to an endpoint, follow them, and fetch their results.

    :class:`Client` (RunPod and self-hosted endpoints) and
    :class:`~foldserve.client.sagemaker.SageMakerClient` provide it. A class that names it as
    its base gets :meth:`submit`, :meth:`result` and the context manager, built on the rest.
    """

    #: Whether :meth:`status` tells a running job's progress (SageMaker tells nothing before
    #: the result is there).
    reports_progress: ClassVar[bool]
    #: Whether :meth:`cancel` stops the job on the endpoint, or only marks it cancelled here.
    cancels_remotely: ClassVar[bool]

    @property
    def destination(self) -> str:
        """Where jobs go, for people: a base URL, a SageMaker endpoint."""
        ...

    @property
    def records_url(self) -> str:
        """Where jobs go, as their records' ``base_url`` says it: a job whose record names
        another is not this client's to follow."""
        ...

    def submit_request(
        self,
        request: JobRequest,
        *,
        output: str | Path | None = None,
        out_dir: str | Path | None = None,
    ) -> str:
        """Send a body from :func:`build_request` and return the job id, its local record
        (:mod:`foldserve.client.records`) written; ``output`` and ``out_dir`` are kept there,
        for ``foldserve fetch``."""
        ...

    def status(self, job_id: str) -> JobState: ...

    def wait(
        self,
        job_id: str,
        *,
        on_update: Callable[[JobState], None] | None = None,
        timeout: float | None = None,
    ) -> JobState:
        """Poll until the job finishes and return its final state, as :func:`follow` does;
        ``on_update`` sees every answer."""
        return follow(
            self.status,
            job_id,
            retry=self._retry,
            answered=self._answered,
            jitter=self._random,
            on_update=on_update,
            timeout=timeout,
        )

    #: The retry policy of every call, and the pace of :meth:`wait`'s polls.
    _retry: RetryPolicy
    #: The jitter of :meth:`wait`'s polls.
    _random: random.Random

    def _answered(self) -> bool:
        """Whether the endpoint has answered a call yet (until then, failing to connect is
        given up on sooner)."""
        ...

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a queued or running job; returns its status (a finished job stays
        finished)."""
        ...

    def download(self, output: JobOutput, out_dir: str | Path) -> dict[str, Path]:
        """Write every file of a COMPLETED job's output into ``out_dir``, as
        :func:`save_files` does; name -> path."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def submit(
        self,
        msa: Msa | str | Path | None = None,
        options: PredictOptions | None = None,
        *,
        chains: Sequence[ChainSpec] | None = None,
        paired_msa: Msa | str | Path | None = None,
        templates: Sequence[str | Path] = (),
        max_template_date: str | None = None,
        execution_timeout_s: float = 3600.0,
        ttl_s: float | None = None,
        outputs: list[OutputKind] | None = None,
        msa_format: str = "auto",
        query: str | None = None,
        output: str | Path | None = None,
        out_dir: str | Path | None = None,
        relax: RelaxMode = "none",
        engine: EngineName = DEFAULT_ENGINE,
    ) -> str:
        """Check ``msa`` locally, upload it, keep the job's record, and return the job id.

        ``engine`` is alphafold2 or openfold3 (the endpoint must serve it); an option of the
        other engine alone (AlphaFold2's ``options.models``, OpenFold3's
        ``options.num_diffusion_samples``) is refused here.

        A complex is ``chains=[ChainSpec("A.a3m", copies=2), ChainSpec("B.sto")]`` instead of
        ``msa``, with an optional ``paired_msa``; ``templates`` are structure files or folders
        sent with the job (see :func:`build_request`).
        An MSA reduced to fit the request limit, or read with warnings, is reported with
        :func:`warnings.warn` (``UserWarning``); :func:`build_request` and
        :meth:`submit_request` let a caller handle those warnings itself. ``output`` and
        ``out_dir`` are kept in the record, for ``foldserve fetch`` (see
        :meth:`submit_request`).
        """
        request = build_request(
            msa,
            options,
            chains=chains,
            paired_msa=paired_msa,
            templates=templates,
            max_template_date=max_template_date,
            execution_timeout_s=execution_timeout_s,
            ttl_s=ttl_s,
            outputs=outputs,
            msa_format=msa_format,
            query=query,
            relax=relax,
            engine=engine,
        )
        for warning in request.warnings:
            warnings.warn(warning, UserWarning, stacklevel=2)
        return self.submit_request(request, output=output, out_dir=out_dir)

    def result(
        self,
        job_id: str,
        *,
        on_update: Callable[[JobState], None] | None = None,
        timeout: float | None = None,
    ) -> JobOutput:
        """Wait for the job (``on_update`` as for :meth:`wait`) and return its output;
        :class:`~foldserve.errors.JobFailed` unless it COMPLETED."""
        return self.wait(job_id, on_update=on_update, timeout=timeout).completed_output()


class Client(JobClient):
    """Submit fold jobs to an endpoint, follow them, and fetch their results.

    Give ``url`` (self-hosted), ``endpoint_id`` (RunPod), ``profile`` (from the configuration
    file) or an ``endpoint`` already resolved; the key is ``api_key``, else the environment,
    else the configuration (see :func:`foldserve.config.resolve_endpoint`). ``retry`` says how
    requests are retried, and gives :meth:`wait` its sleep and clock; until the endpoint has
    answered once, failures to connect are retried for ``first_connect_s`` at most (a wrong URL
    or a server not started should not take the whole policy to report). ``on_retry`` hears of
    each request that starts retrying, to tell the user (see
    :class:`~foldserve.client.transport.RetryNotice`).
    """

    reports_progress = True
    cancels_remotely = True

    def __init__(
        self,
        url: str | None = None,
        endpoint_id: str | None = None,
        api_key: str | None = None,
        *,
        profile: str | None = None,
        endpoint: Endpoint | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        first_connect_s: float = FIRST_CONNECT_S,
        on_retry: OnRetry | None = None,
    ) -> None:
        if endpoint is not None and (url or endpoint_id or profile or api_key):
            raise TypeError("give either endpoint or url/endpoint_id/profile/api_key")
        self.endpoint = endpoint or resolve_endpoint(url, endpoint_id, profile, api_key)
        self._retry = retry
        self._transport = Transport(
            self.endpoint,
            timeout=timeout,
            retry=retry,
            first_connect_s=first_connect_s,
            on_retry=on_retry,
        )
        self._random = random.Random()

    @property
    def destination(self) -> str:
        return self.endpoint.base_url

    @property
    def records_url(self) -> str:
        return self.endpoint.base_url

    def close(self) -> None:
        self._transport.close()

    # --- jobs ------------------------------------------------------------------------------

    def submit_request(
        self,
        request: JobRequest,
        *,
        output: str | Path | None = None,
        out_dir: str | Path | None = None,
    ) -> str:
        """``POST /run`` with a body from :func:`build_request`; returns the job id.

        The job's local record (:mod:`foldserve.client.records`) is written before this
        returns, so ``foldserve status/fetch/cancel JOB`` find the job from any later shell;
        ``output`` and ``out_dir`` are where ``foldserve fetch`` puts the best model and the
        files. A record that cannot be written is an :class:`InputError` naming the job.
        """
        body = self._transport.call("POST", "run", content=request.content, unsent_only=True)
        job_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
            raise RemoteError(f"{self.endpoint.base_url}/run answered without a usable job id")
        record = JobRecord.new(
            job_id, self.endpoint, msa=request.source, output=output, out_dir=out_dir
        )
        records.save_submitted(
            record,
            follow=f"follow the job by naming its endpoint: foldserve status {job_id} "
            "--url/--endpoint-id",
        )
        return job_id

    def status(self, job_id: str) -> JobState:
        body = self._transport.call("GET", f"status/{check_job_id(job_id)}", job_id=job_id)
        return JobState.from_json(body, job_id)

    @overload
    def stream(self, job_id: str) -> list[JobProgress]: ...

    @overload
    def stream(self, job_id: str, since: int) -> tuple[list[JobProgress], int]: ...

    def stream(
        self, job_id: str, since: int | None = None
    ) -> list[JobProgress] | tuple[list[JobProgress], int]:
        """The job's progress events (``GET /stream/{id}``).

        Without ``since``: the events no one was handed before. RunPod hands each stream chunk
        out once, to whoever asks first, and so does ``foldserve serve``.

        With ``since`` (0 at first): the events after that cursor, and the cursor to pass next
        time. ``foldserve serve`` answers them without handing anything out (``?since=N``, a
        foldserve extension), so any number of readers can follow a job beside RunPod's SDK.
        RunPod ignores the parameter: there this consumes chunks too, and the cursor counts
        them. Chunks that are not foldserve progress events are skipped.
        """
        route = f"stream/{check_job_id(job_id)}" + ("" if since is None else f"?since={since}")
        body = self._transport.call("GET", route, job_id=job_id)
        chunks = body.get("stream") if isinstance(body, dict) else None
        chunks = chunks if isinstance(chunks, list) else []
        events = []
        for chunk in chunks:
            try:
                events.append(JobProgress.model_validate(chunk["output"]))
            except (TypeError, KeyError, ValidationError):
                continue  # another handler's chunk: nothing foldserve can show
        if since is None:
            return events
        cursor = body.get("cursor") if isinstance(body, dict) else None
        return events, cursor if isinstance(cursor, int) else since + len(chunks)

    def cancel(self, job_id: str) -> JobStatus:
        body = self._transport.call("POST", f"cancel/{check_job_id(job_id)}", job_id=job_id)
        return JobState.from_json(body, job_id).status

    def _answered(self) -> bool:
        return self._transport.answered

    # --- result files ------------------------------------------------------------------------

    def download(self, output: JobOutput, out_dir: str | Path) -> dict[str, Path]:
        return save_files(output, out_dir, self._transport.fetch)


def follow(
    status: Callable[[str], JobState],
    job_id: str,
    *,
    retry: RetryPolicy,
    answered: Callable[[], bool],
    jitter: random.Random,
    on_update: Callable[[JobState], None] | None = None,
    timeout: float | None = None,
) -> JobState:
    """Poll ``status`` until the job finishes and return its final state.

    Polls start every half second and slow down to every 15 s (with jitter) while nothing
    changes; new progress makes them fast again. ``on_update`` sees every answer. An endpoint
    that stops answering (a restart, a network outage) is polled on for up to
    :data:`WAIT_OUTAGE_S` before :class:`Unavailable` is raised; one that has not ``answered``
    yet is reported at once. ``retry`` gives the sleep and the clock.
    """
    clock, sleep = retry.clock, retry.sleep
    deadline = None if timeout is None else clock() + timeout
    delay = POLL_FIRST_S
    last_progress: JobProgress | None = None
    outage_since: float | None = None
    while True:
        try:
            state = status(job_id)
        except Unavailable:
            if not answered():
                raise
            now = clock()
            outage_since = now if outage_since is None else outage_since
            if now - outage_since > WAIT_OUTAGE_S or (deadline is not None and now > deadline):
                raise
            sleep(POLL_MAX_S * jitter.uniform(0.75, 1.25))
            continue
        outage_since = None
        if on_update is not None:
            on_update(state)
        if state.status.finished:
            return state
        if state.progress != last_progress:
            last_progress, delay = state.progress, POLL_FIRST_S
        pause = delay * jitter.uniform(0.75, 1.25)
        if deadline is not None:
            left = deadline - clock()
            if left <= 0:
                raise WaitTimedOut(
                    f"job {job_id} is still {state.status.value} after {timeout:g} s",
                    fix="it keeps running on the endpoint; wait again or cancel it",
                )
            pause = min(pause, left)
        sleep(pause)
        delay = min(delay * POLL_GROWTH, POLL_MAX_S)


def save_files(output: JobOutput, out_dir: str | Path, fetch: Fetch) -> dict[str, Path]:
    """Write every file of a COMPLETED job's output into ``out_dir``; name -> path.

    Inline files are decoded, others downloaded with ``fetch``; each is checked against its
    SHA-256 and appears under its name only once complete (:mod:`foldserve.files`). Files an
    earlier prediction left in ``out_dir`` (a ``ranked_1.pdb`` this job did not make) are
    removed once the download is whole, so the folder holds one job's results; files that are
    not a prediction's are never touched.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, entry in output.files.items():
        if not FILE_NAME.fullmatch(name):
            raise RemoteError(f"the job's output names a file {name!r} that is not a plain name")
        target = directory / name
        match entry:
            case InlineFile():
                write_checked(target, [entry.data.encode("utf-8")], entry.sha256)
            case LinkedFile():
                fetch(entry.url, target, entry.sha256)
        written[name] = target
    for stale in directory.iterdir():
        if stale.name not in written and is_run_file(stale.name) and stale.is_file():
            stale.unlink()
    return written


def save_best_model(files: dict[str, Path], output: str | Path) -> Path:
    """Write the best model of downloaded ``files`` to ``output``, in the format its name
    ends in (``ranked_0.pdb`` for .pdb/.pdb.gz, ``ranked_0.cif`` for .cif/.mmcif)."""
    destination = Path(output)
    source = best_model_source(destination)
    if source not in files:
        raise RemoteError(
            f"the job's output has no {source}",
            fix="submit with outputs that include pdb and cif (the default)",
        )
    return write_best_model(files[source].parent, destination)
