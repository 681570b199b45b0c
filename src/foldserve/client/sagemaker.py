"""The client of a SageMaker asynchronous endpoint: the same jobs, records and commands as
RunPod's.

>>> from foldserve.client.sagemaker import SageMakerClient
>>> with SageMakerClient("foldserve-async", region="eu-west-1") as client:
...     job = client.submit("family.a3m")    # recorded: `foldserve status JOB` follows it
...     files = client.download(client.result(job), "family_prediction")

A job is checked and packed here as for RunPod (:func:`~foldserve.client.request.build_request`).
Its ``input`` object, the body the container's ``/invocations`` takes, goes to S3 (under
``s3_input``, else beside the endpoint's own async output path, where the endpoint's role can
read it), and ``invoke_endpoint_async`` queues it with the job id as ``InferenceId``.

SageMaker has no status route: a job is COMPLETED once its output object is there (the
container's answer, a :class:`~foldserve.jobs.schema.JobOutput` with its files inline), FAILED
once its failure object is (one line, plain or ``{"error": "…"}``), and queued or running, with
no progress to show, until then. Both locations are kept in the job's record, so
``foldserve status/fetch JOB`` follow it from any later shell. Nor can SageMaker cancel an
asynchronous request: :meth:`SageMakerClient.cancel` marks the job cancelled in its record, and
its result, should it arrive, is never read.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from foldserve.client import records
from foldserve.client.client import JobClient, check_job_id, save_files
from foldserve.client.records import JobRecord, SageMakerJob
from foldserve.client.request import JobRequest
from foldserve.client.sagemaker_aws import Aws
from foldserve.client.transport import FIRST_CONNECT_S, OnRetry, write_checked
from foldserve.config import SageMakerEndpoint, resolve_target
from foldserve.errors import InputError, RemoteError
from foldserve.jobs.schema import JobOutput, JobState, JobStatus
from foldserve.remote import SourceFailed, open_source
from foldserve.retry import DEFAULT_RETRY, RetryPolicy

#: The longest SageMaker lets an asynchronous request run (``InvocationTimeoutSeconds``).
MAX_INVOCATION_S = 3600
#: The range of ``RequestTTLSeconds``: how long a request may wait in the queue.
TTL_RANGE_S = (60, 21600)
#: What :meth:`SageMakerClient.status` says of a job cancelled here.
CANCELLED_HERE = (
    "cancelled here; SageMaker cannot stop an asynchronous request, so its result, if it "
    "comes, is discarded"
)


def invocation_seconds(timeout_s: float, *, where: str) -> int:
    """``InvocationTimeoutSeconds`` for an execution timeout of ``timeout_s``; more than
    SageMaker allows is an :class:`InputError` naming ``where``."""
    if timeout_s > MAX_INVOCATION_S:
        raise InputError(
            f"{timeout_s:g} s is longer than SageMaker lets an asynchronous request run",
            where=where,
            fix=f"give at most {MAX_INVOCATION_S} s (1 hour)",
        )
    return max(1, math.ceil(timeout_s))


def failure_message(body: bytes) -> str:
    """The one-line reason in a failure object: ``{"error": "…"}`` or plain text."""
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        text = parsed["error"]
    lines = text.strip().splitlines()
    return lines[0][:500] if lines else "the endpoint gave no reason"


class SageMakerClient(JobClient):
    """Submit fold jobs to a SageMaker asynchronous endpoint, follow them, fetch their results.

    Give the ``endpoint``'s name (with ``region`` and ``s3_input``, ``s3://bucket/prefix``, as
    needed), a ``profile`` with ``sagemaker_endpoint`` (see :mod:`foldserve.config`), or a
    ``target`` already resolved. AWS credentials are boto3's (``aws configure``,
    ``AWS_PROFILE``, an instance role). ``retry``, ``first_connect_s`` and ``on_retry`` are as
    for :class:`~foldserve.client.client.Client`, for the calls to AWS.
    """

    reports_progress = False
    cancels_remotely = False

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        region: str | None = None,
        s3_input: str | None = None,
        profile: str | None = None,
        target: SageMakerEndpoint | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        first_connect_s: float = FIRST_CONNECT_S,
        on_retry: OnRetry | None = None,
    ) -> None:
        if target is not None and (endpoint or region or s3_input or profile):
            raise TypeError("give either target or endpoint/region/s3_input/profile")
        if target is None:
            resolved = resolve_target(
                profile=profile, sagemaker_endpoint=endpoint, region=region, s3_input=s3_input
            )
            if not isinstance(resolved, SageMakerEndpoint):
                raise InputError(
                    f"{resolved.label} is not a SageMaker endpoint",
                    where="profile",
                    fix="give the endpoint's name, or a profile with sagemaker_endpoint",
                )
            target = resolved
        self.target = target
        self._retry = retry
        self._aws = Aws(
            target.region, retry=retry, first_connect_s=first_connect_s, on_retry=on_retry
        )
        self._random = random.Random()

    @property
    def destination(self) -> str:
        return f"{self.target.label} ({self._aws.region})"

    @property
    def records_url(self) -> str:
        return SageMakerJob.uri_of(self._aws.region, self.target.name)

    def close(self) -> None:
        self._aws.close()

    def submit_request(
        self,
        request: JobRequest,
        *,
        output: str | Path | None = None,
        out_dir: str | Path | None = None,
    ) -> str:
        """Upload the job's input to S3 and ``invoke_endpoint_async`` it; returns the job id,
        also its ``InferenceId``.

        The policy's execution timeout becomes ``InvocationTimeoutSeconds`` (SageMaker allows
        an hour at most) and a ``ttl`` given becomes ``RequestTTLSeconds``.
        """
        policy = request.policy()
        parameters: dict[str, Any] = {
            "InvocationTimeoutSeconds": invocation_seconds(
                policy.executionTimeout / 1000, where="execution_timeout_s"
            )
        }
        if "ttl" in policy.model_fields_set:
            parameters["RequestTTLSeconds"] = _ttl_seconds(policy.ttl / 1000)
        job_id = str(uuid.uuid4())
        location = f"{self.target.s3_input or self._default_input()}/{job_id}.json"
        self._aws.put(location, request.job_input())
        answer = self._aws.call(
            f"invoking {self.destination}",
            lambda: self._aws.runtime.invoke_endpoint_async(
                EndpointName=self.target.name,
                InputLocation=location,
                InferenceId=job_id,
                ContentType="application/json",
                Accept="application/json",
                **parameters,
            ),
            unsent_only=True,
            fix="check the endpoint's name and region (foldserve deploy sagemaker makes one)",
        )
        job = SageMakerJob(
            endpoint=self.target.name,
            region=self._aws.region,
            inference_id=str(answer.get("InferenceId") or job_id),
            input_location=location,
            output_location=_location(answer, "OutputLocation"),
            failure_location=answer.get("FailureLocation") or None,
        )
        record = JobRecord.new(
            job_id,
            self.target,
            msa=request.source,
            output=output,
            out_dir=out_dir,
            sagemaker=job,
        )
        records.save_submitted(
            record,
            follow=f"its result will be at {job.output_location}, a failure at "
            f"{job.failure_location}",
        )
        return job_id

    def status(self, job_id: str) -> JobState:
        """The job's state from its record and S3: CANCELLED when cancelled here, COMPLETED
        (with its output) or FAILED (with its error) once the endpoint wrote it, else
        IN_QUEUE: SageMaker does not tell queued from running."""
        record, job = self._job(job_id)
        if record.status == JobStatus.CANCELLED:
            return JobState(job_id, JobStatus.CANCELLED, error=CANCELLED_HERE)
        if self._aws.exists(job.output_location):
            return _completed(job_id, self._aws.read(job.output_location), job.output_location)
        if job.failure_location is not None and self._aws.exists(job.failure_location):
            error = failure_message(self._aws.read(job.failure_location))
            return JobState(job_id, JobStatus.FAILED, error=error)
        return JobState(job_id, JobStatus.IN_QUEUE)

    def _answered(self) -> bool:
        return self._aws.answered

    def cancel(self, job_id: str) -> JobStatus:
        """Mark the job cancelled in its record (a finished job stays finished): SageMaker
        cannot stop it, but :meth:`status` reports it CANCELLED and never reads its result."""
        status = self.status(job_id).status
        if status.finished:
            return status
        records.update_status(self._job(job_id)[0], JobStatus.CANCELLED.value)
        return JobStatus.CANCELLED

    def download(self, output: JobOutput, out_dir: str | Path) -> dict[str, Path]:
        return save_files(output, out_dir, _fetch)

    def _job(self, job_id: str) -> tuple[JobRecord, SageMakerJob]:
        """The job's record, and where it lives: a SageMaker job is known by its record only."""
        record = records.find(check_job_id(job_id))
        if record is None:
            raise InputError(
                f"no record of job {job_id} in {records.records_dir()}",
                where="JOB",
                fix="check the id and FOLDSERVE_STATE_DIR: a SageMaker job is followed through "
                "the record its submission wrote",
            )
        if record.sagemaker is None:
            raise InputError(
                f"job {job_id} went to {record.base_url}, not to a SageMaker endpoint",
                where="JOB",
                fix=f"follow it with: foldserve status {job_id}",
            )
        return record, record.sagemaker

    def _default_input(self) -> str:
        """Where inputs go without ``s3_input``: ``inputs/`` under the endpoint's async output
        path, which its role may use."""
        name = self.target.name
        fix = "check the endpoint's name and region, or give --s3-input s3://BUCKET/PREFIX"
        endpoint = self._aws.call(
            f"describing endpoint {name}",
            lambda: self._aws.sagemaker.describe_endpoint(EndpointName=name),
            fix=fix,
        )
        config = self._aws.call(
            f"describing the configuration of endpoint {name}",
            lambda: self._aws.sagemaker.describe_endpoint_config(
                EndpointConfigName=endpoint["EndpointConfigName"]
            ),
            fix=fix,
        )
        path = config.get("AsyncInferenceConfig", {}).get("OutputConfig", {}).get("S3OutputPath")
        if not isinstance(path, str) or not path.startswith("s3://"):
            raise InputError(
                f"endpoint {name} is not an asynchronous endpoint (no S3 output path)",
                where="--sagemaker-endpoint",
                fix="deploy one with foldserve deploy sagemaker",
            )
        return path.rstrip("/") + "/inputs"


def _ttl_seconds(ttl_s: float) -> int:
    low, high = TTL_RANGE_S
    if not low <= ttl_s <= high:
        raise InputError(
            f"{ttl_s:g} s is out of SageMaker's range for a request's time in the queue",
            where="ttl_s",
            fix=f"give {low} to {high} s (6 hours)",
        )
    return math.ceil(ttl_s)


def _location(answer: Any, field: str) -> str:
    value = answer.get(field) if isinstance(answer, dict) else None
    if not isinstance(value, str) or not value.startswith("s3://"):
        raise RemoteError(f"SageMaker queued the job but answered no {field}")
    return value


def _completed(job_id: str, body: bytes, location: str) -> JobState:
    """The state of a job whose output object holds ``body``, its output checked."""
    try:
        output = json.loads(body)
    except ValueError:
        raise RemoteError(
            f"job {job_id}: the result at {location} is not JSON",
            fix="check that the endpoint runs foldserve's image (foldserve serve --sagemaker)",
        ) from None
    return JobState.from_json({"id": job_id, "status": "COMPLETED", "output": output}, job_id)


def _fetch(url: str, target: Path, sha256: str) -> None:
    """Download a result file the output links to (a presigned bucket URL) into ``target``."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise RemoteError(f"{target.name}: cannot fetch a file from {url[:80]!r}")
    try:
        with open_source(url) as (chunks, _):
            write_checked(target, chunks, sha256)
    except SourceFailed as exc:
        raise RemoteError(
            f"{target.name}: download failed ({exc})",
            fix="result URLs expire: run foldserve fetch JOB again for fresh ones",
        ) from None
