"""The job JSON shared by the self-hosted endpoint, RunPod workers and the client (DESIGN.md).

Requests are validated with pydantic; unknown fields are errors, not ignored. A bad request
becomes one :class:`~foldserve.errors.InputError` whose ``where`` is the JSON field path
(``input.num_recycles``) and whose text says the reason and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from foldserve.errors import InputError, RemoteError
from foldserve.fold.results import PredictOptions
from foldserve.fold.weights import MODEL_NUMBERS

JOB_INPUT_VERSION = 1
#: RunPod's default execution timeout; a prediction often needs more, so clients send their own.
DEFAULT_EXECUTION_TIMEOUT_MS = 600_000
#: RunPod's default time to live of a job, from submission.
DEFAULT_TTL_MS = 24 * 3600_000
MAX_POLICY_MS = 7 * 24 * 3600_000
#: RunPod's request body limits ("10 MB" and "20 MB" read as powers of ten, the smaller
#: reading, so every endpoint accepts what foldserve sends).
RUN_BODY_LIMIT = 10_000_000
RUNSYNC_BODY_LIMIT = 20_000_000

OutputKind = Literal["pdb", "cif", "scores", "pae", "msa"]
DEFAULT_OUTPUTS: tuple[OutputKind, ...] = ("pdb", "cif", "scores", "pae")


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


class FoldJobInput(BaseModel):
    """Version 1 of the fold job input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    msa: str | None = None
    msa_gz_b64: str | None = None
    msa_url: str | None = None
    msa_format: str = "auto"
    query: str | None = None
    models: list[int] = Field(default_factory=lambda: list(MODEL_NUMBERS))
    num_recycles: int = 3
    recycle_early_stop_tolerance: float | None = None
    seed: int = 0
    num_seeds: int = 1
    rank_by: Literal["plddt", "ptm"] = "plddt"
    outputs: list[OutputKind] = Field(default_factory=lambda: list(DEFAULT_OUTPUTS))

    @model_validator(mode="after")
    def _one_msa_source(self) -> FoldJobInput:
        given = [n for n in ("msa", "msa_gz_b64", "msa_url") if getattr(self, n) is not None]
        if len(given) != 1:
            found = f"got {' and '.join(given)}" if given else "got none"
            raise ValueError(f"give exactly one of msa, msa_gz_b64 and msa_url ({found})")
        return self

    def options(self) -> PredictOptions:
        """The prediction options, checked; errors name the ``input.`` field."""
        try:
            return PredictOptions(
                models=tuple(self.models),
                num_recycles=self.num_recycles,
                recycle_early_stop_tolerance=self.recycle_early_stop_tolerance,
                seed=self.seed,
                num_seeds=self.num_seeds,
                rank_by=self.rank_by,
            )
        except InputError as exc:
            raise InputError(exc.problem, where=f"input.{exc.where}", fix=exc.fix) from None


class Policy(BaseModel):
    """RunPod's execution policy, in milliseconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    executionTimeout: Annotated[int, Field(gt=0, le=MAX_POLICY_MS)] = DEFAULT_EXECUTION_TIMEOUT_MS
    ttl: Annotated[int, Field(gt=0, le=MAX_POLICY_MS)] = DEFAULT_TTL_MS


class RunRequest(BaseModel):
    """The body of ``/run`` and ``/runsync``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: FoldJobInput
    policy: Policy = Field(default_factory=Policy)
    webhook: Annotated[str, Field(pattern=r"^https?://", max_length=2048)] | None = None


def job_schema() -> dict[str, Any]:
    """The JSON Schema of the ``/run`` body, for clients written in other languages."""
    return RunRequest.model_json_schema()


def parse_run_request(body: Any) -> RunRequest:
    """Validate a request body; a bad one raises one :class:`InputError` naming the field."""
    try:
        request = RunRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None
    request.input.options()
    return request


def parse_job_input(payload: Any) -> FoldJobInput:
    """Validate a job's ``input`` object alone (as a RunPod worker receives it)."""
    try:
        job_input = FoldJobInput.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(exc, prefix=("input",)) from None
    job_input.options()
    return job_input


_FIXES = {
    "extra_forbidden": "remove it; version 1 of the job input knows only {known}",
    "missing": "add it",
    "int_type": "give a whole number",
    "int_parsing": "give a whole number",
    "float_type": "give a number",
    "float_parsing": "give a number",
    "string_type": "give a string",
    "list_type": "give a JSON array",
    "model_type": "give a JSON object",
    "dict_type": "give a JSON object",
    "literal_error": "use one of the values listed",
    "bool_type": "give true or false",
    "greater_than": "give a positive number of milliseconds",
    "less_than_equal": "give at most 7 days in milliseconds",
    "string_pattern_mismatch": "give an http:// or https:// URL",
}


def validation_error(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> InputError:
    """The first problem pydantic found, as a field path, the reason and the fix."""
    error = exc.errors()[0]
    location = prefix + tuple(error["loc"])
    where = ".".join(str(part) for part in location) or "body"
    reason = str(error["msg"]).removeprefix("Value error, ")
    known = ", ".join(FoldJobInput.model_fields)
    fix = _FIXES.get(error["type"], "see the job input in DESIGN.md").format(known=known)
    if error["type"] == "extra_forbidden":
        reason = "unknown field"
    if error["type"] == "value_error":
        fix = "send the MSA once, as msa (text), msa_gz_b64 or msa_url"
    return InputError(reason, where=where, fix=fix)


@dataclass(frozen=True)
class JobState:
    """One answer of ``GET /status/{id}``; times in seconds."""

    id: str
    status: JobStatus
    delay_time_s: float | None = None
    execution_time_s: float | None = None
    output: Any = None
    error: str | None = None

    @property
    def progress(self) -> dict[str, Any] | None:
        """The latest progress event while the job runs (stage, model, recycle, pLDDT)."""
        running = self.status is JobStatus.IN_PROGRESS and isinstance(self.output, dict)
        return self.output if running else None

    @classmethod
    def from_json(cls, body: Any, job_id: str) -> JobState:
        if not isinstance(body, dict) or body.get("status") not in JobStatus.__members__:
            shown = body.get("status") if isinstance(body, dict) else type(body).__name__
            raise RemoteError(f"job {job_id}: the endpoint answered an unknown status {shown!r}")
        error = body.get("error")
        return cls(
            id=str(body.get("id") or job_id),
            status=JobStatus(body["status"]),
            delay_time_s=_seconds(body.get("delayTime")),
            execution_time_s=_seconds(body.get("executionTime")),
            output=body.get("output"),
            error=None if error is None else _error_text(error),
        )


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
