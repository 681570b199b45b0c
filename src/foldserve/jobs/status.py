"""A job's status, and the state a client reads from ``/status``: the output typed by status."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from foldserve.errors import JobFailed, RemoteError
from foldserve.jobs.output import JobOutput
from foldserve.jobs.progress import JobProgress

Model = TypeVar("Model", bound=BaseModel)


class JobStatus(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def finished(self) -> bool:
        return self not in (JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS)


@dataclass(frozen=True)
class JobState:
    """One answer of ``GET /status/{id}``; times in seconds.

    ``output`` is what the status says it is: the job's :class:`JobOutput` once COMPLETED,
    its latest :class:`JobProgress` while IN_PROGRESS, otherwise None.
    """

    id: str
    status: JobStatus
    delay_time_s: float | None = None
    execution_time_s: float | None = None
    output: JobOutput | JobProgress | None = None
    error: str | None = None

    @property
    def progress(self) -> JobProgress | None:
        """The latest progress event while the job runs (stage, model, recycle, pLDDT)."""
        return self.output if isinstance(self.output, JobProgress) else None

    def completed_output(self) -> JobOutput:
        """The output of a finished job: :class:`JobFailed` unless it COMPLETED, and a
        :class:`RemoteError` when the endpoint gave none."""
        if self.status is not JobStatus.COMPLETED:
            raise JobFailed(self)
        if not isinstance(self.output, JobOutput):
            raise RemoteError(f"job {self.id} COMPLETED without an output object")
        return self.output

    @classmethod
    def from_json(cls, body: Any, job_id: str) -> JobState:
        if not isinstance(body, dict) or body.get("status") not in JobStatus.__members__:
            shown = body.get("status") if isinstance(body, dict) else type(body).__name__
            raise RemoteError(f"job {job_id}: the endpoint answered an unknown status {shown!r}")
        status = JobStatus(body["status"])
        raw = body.get("output")
        output: JobOutput | JobProgress | None = None
        if raw is not None and status is JobStatus.COMPLETED:
            output = _parse(JobOutput, raw, job_id)
        elif raw is not None and status is JobStatus.IN_PROGRESS:
            output = _parse(JobProgress, raw, job_id)
        error = body.get("error")
        return cls(
            id=str(body.get("id") or job_id),
            status=status,
            delay_time_s=_seconds(body.get("delayTime")),
            execution_time_s=_seconds(body.get("executionTime")),
            output=output,
            error=None if error is None else _error_text(error),
        )


def _parse(model: type[Model], raw: Any, job_id: str) -> Model:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in ("output", *error["loc"]))
        raise RemoteError(
            f"job {job_id}: the endpoint answered an output foldserve cannot read "
            f"({where}: {error['msg']})",
            fix="check that the endpoint runs foldserve; `foldserve jobs schema` prints "
            "what a job output holds",
        ) from None


def _error_text(error: Any) -> str:
    """The job's error as one line.

    RunPod's SDK reports a handler's exception as a JSON string holding ``error_message`` next
    to a traceback; the message is what the user needs.
    """
    parsed = error
    if isinstance(error, str):
        try:
            parsed = json.loads(error)
        except json.JSONDecodeError:
            return error
    if isinstance(parsed, dict) and isinstance(parsed.get("error_message"), str):
        return str(parsed["error_message"])
    return error if isinstance(error, str) else json.dumps(error)


def _seconds(milliseconds: Any) -> float | None:
    return milliseconds / 1000 if isinstance(milliseconds, int | float) else None
