"""The local record of submitted jobs, so ``foldserve status/fetch/cancel JOB`` work from any
later shell.

One JSON file per job, ``{state_dir}/jobs/{id}.json``: where the job went, what was sent and
where its results should go. Never the API key: that is resolved again from the environment or
the configuration each time it is needed.

A SageMaker job can be followed only through its record: SageMaker has no status route, only the
S3 objects where its result or failure will appear, named when the job was submitted (and
cancelling it is a mark in the record).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from foldserve.config import (
    Endpoint,
    EndpointKind,
    SageMakerEndpoint,
    Target,
    endpoint_at,
    state_dir,
)
from foldserve.errors import InputError
from foldserve.files import sha256_file, write_text
from foldserve.fold.engine import DEFAULT_ENGINE
from foldserve.fold.results import EngineName, PredictOptions
from foldserve.jobs.ids import checked_job_id


@dataclass(frozen=True)
class InputKey:
    """What a job's result depends on: the MSA file's bytes, the engine and the prediction
    settings.

    ``settings`` is the canonical JSON (sorted keys) of the engine and every field of the
    :class:`PredictOptions`, taken from the dataclass itself, so an option added later is part
    of the key without a change here; a key written before a setting existed was made with its
    default.
    """

    msa_sha256: str
    settings: str

    def __post_init__(self) -> None:
        """Refuse a key :meth:`of` cannot have made (read from a damaged record)."""
        if not isinstance(self.msa_sha256, str) or not isinstance(json.loads(self.settings), dict):
            raise TypeError("not an input key")

    @classmethod
    def of(
        cls, msa: Path, options: PredictOptions, engine: EngineName = DEFAULT_ENGINE
    ) -> InputKey:
        settings = json.dumps(
            {**asdict(options), "engine": engine}, sort_keys=True, separators=(",", ":")
        )
        return cls(msa_sha256=sha256_file(msa), settings=settings)

    def changes_from(self, earlier: InputKey | None) -> str | None:
        """Why a result made under ``earlier`` is not one for this key; None when it is.

        A record without a key (written before keys existed) cannot show what it was made
        from, so it counts as made from something else.
        """
        if earlier is None:
            return "the last run left no record of its MSA and settings"
        if earlier.msa_sha256 != self.msa_sha256:
            return "the MSA file changed since the last run"
        defaults = {**asdict(PredictOptions()), "engine": DEFAULT_ENGINE}
        before = {**defaults, **json.loads(earlier.settings)}
        now = {**defaults, **json.loads(self.settings)}
        changed = ", ".join(
            f"{name} {_setting(before.get(name))} -> {_setting(now.get(name))}"
            for name in sorted(before.keys() | now.keys())
            if before.get(name) != now.get(name)
        )
        return f"settings changed since the last run ({changed})" if changed else None


def _setting(value: Any) -> str:
    """A setting as the command line spells it: ``1,3`` for a list of models."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


@dataclass(frozen=True)
class SageMakerJob:
    """Where a job sent to a SageMaker asynchronous endpoint lives: the endpoint, and the S3
    objects (``s3://bucket/key``) of its input and of its result or failure once it ends.
    ``inference_id`` is the request's id as SageMaker answered it (the job id, sent as its
    ``InferenceId``). ``failure_location`` is None when the endpoint has no failure path
    (SageMaker then writes no failures to S3)."""

    endpoint: str
    region: str
    inference_id: str
    input_location: str
    output_location: str
    failure_location: str | None

    def __post_init__(self) -> None:
        """Refuse what :meth:`JobRecord.new` cannot have made (read from a damaged record)."""
        locations = (self.input_location, self.output_location, self.failure_location or "s3:")
        names = (self.endpoint, self.region, self.inference_id)
        if not all(isinstance(v, str) for v in (*names, *locations)) or not all(
            v.startswith("s3:") for v in locations
        ):
            raise TypeError("not a SageMaker job")

    @property
    def uri(self) -> str:
        """Where the job went, as a record's ``base_url``: ``sagemaker://REGION/ENDPOINT``."""
        return self.uri_of(self.region, self.endpoint)

    @staticmethod
    def uri_of(region: str, endpoint: str) -> str:
        return f"sagemaker://{region}/{endpoint}"


RecordKind = EndpointKind | Literal["sagemaker"]


@dataclass(frozen=True)
class JobRecord:
    """``base_url`` is the endpoint's (a SageMaker job's: :attr:`SageMakerJob.uri`), and
    ``sagemaker`` is set exactly for a SageMaker job."""

    id: str
    base_url: str
    kind: RecordKind
    profile: str | None
    msa: str | None
    output: str | None
    out_dir: str | None
    submitted_at: str
    status: str = "IN_QUEUE"
    #: Set by ``submit --msa-dir`` (:mod:`foldserve.client.batch`), which re-runs an MSA whose
    #: record was made from another input or settings.
    key: InputKey | None = None
    sagemaker: SageMakerJob | None = None

    @classmethod
    def new(
        cls,
        job_id: str,
        endpoint: Target,
        *,
        msa: str | Path | None,
        output: str | Path | None,
        out_dir: str | Path | None,
        sagemaker: SageMakerJob | None = None,
    ) -> JobRecord:
        """The record of a job just submitted to ``endpoint``; ``sagemaker`` is where a job
        sent to a SageMaker endpoint lives, and goes with such an endpoint only."""

        def absolute(path: str | Path | None) -> str | None:
            return None if path is None else str(Path(path).absolute())

        base_url: str
        kind: RecordKind
        if isinstance(endpoint, Endpoint) and sagemaker is None:
            base_url, kind = endpoint.base_url, endpoint.kind
        elif isinstance(endpoint, SageMakerEndpoint) and sagemaker is not None:
            base_url, kind = sagemaker.uri, "sagemaker"
        else:
            raise TypeError("a SageMakerJob goes with a SageMakerEndpoint, and only with one")
        return cls(
            id=checked_job_id(job_id, where="JOB"),
            base_url=base_url,
            kind=kind,
            profile=endpoint.profile,
            msa=absolute(msa),
            output=absolute(output),
            out_dir=absolute(out_dir),
            submitted_at=datetime.now(UTC).isoformat(timespec="seconds"),
            sagemaker=sagemaker,
        )

    def target(self) -> Target:
        """The job's endpoint of whatever kind (see :meth:`endpoint`)."""
        if self.sagemaker is not None:
            job = self.sagemaker
            return SageMakerEndpoint(job.endpoint, region=job.region, profile=self.profile)
        return self.endpoint()

    def endpoint(self) -> Endpoint:
        """The job's RunPod or self-hosted endpoint, its key resolved afresh from the
        environment or configuration."""
        if self.kind == "sagemaker":
            raise TypeError(f"job {self.id} went to SageMaker: its endpoint is target()")
        return endpoint_at(self.base_url, self.kind, profile=self.profile)


def records_dir() -> Path:
    return state_dir() / "jobs"


def record_path(job_id: str) -> Path:
    return records_dir() / f"{checked_job_id(job_id, where='JOB')}.json"


def save(record: JobRecord, path: Path | None = None) -> Path:
    """Write ``record`` atomically (readable by its owner only) to ``path``, by default its
    place in :func:`records_dir`, and return the path."""
    path = path or record_path(record.id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return write_text(path, json.dumps(asdict(record), indent=2) + "\n", permissions=0o600)


def read(path: Path) -> JobRecord:
    """The record kept at ``path``; a damaged one is a :class:`InputError`."""
    try:
        record = _from_json(json.loads(path.read_text(encoding="utf-8")))
        checked_job_id(record.id, where="JOB")
    except (ValueError, TypeError, InputError) as exc:
        raise InputError(
            f"the job record is damaged ({exc})",
            where=str(path),
            fix="delete it and name the job's endpoint with --url, --endpoint-id or --profile",
        ) from None
    if record.kind not in ("runpod", "url", "sagemaker") or (record.kind == "sagemaker") != (
        record.sagemaker is not None
    ):
        raise InputError(
            f"the job record names an unknown kind of endpoint {record.kind!r}",
            where=str(path),
            fix="delete it and name the job's endpoint with --url, --endpoint-id or --profile",
        )
    return record


def _from_json(raw: Any) -> JobRecord:
    """The record in ``raw`` as :func:`save` wrote it; TypeError or ValueError if it is not."""
    key = raw.get("key") if isinstance(raw, dict) else None
    sagemaker = raw.get("sagemaker") if isinstance(raw, dict) else None
    return JobRecord(
        **{
            **raw,
            "key": None if key is None else InputKey(**key),
            "sagemaker": None if sagemaker is None else SageMakerJob(**sagemaker),
        }
    )


def load(job_id: str) -> JobRecord:
    """The record of ``job_id``; a missing or damaged one is a :class:`InputError`."""
    path = record_path(job_id)
    if not path.exists():
        raise InputError(
            f"no record of job {job_id} in {path.parent}",
            where="JOB",
            fix="check the id, or name its endpoint with --url, --endpoint-id or --profile",
        )
    record = read(path)
    if record.id != job_id:
        raise InputError(
            f"the record holds job {record.id}, not {job_id}",
            where=str(path),
            fix="delete it and name the job's endpoint with --url, --endpoint-id or --profile",
        )
    return record


def save_submitted(record: JobRecord, *, follow: str) -> None:
    """Save the record of a job just submitted; one that cannot be written is an
    :class:`InputError` naming the job, and ``follow`` says how to follow it without."""
    try:
        save(record)
    except OSError as exc:
        raise InputError(
            f"job {record.id} was submitted, but its record could not be written "
            f"({exc.strerror or exc})",
            where=str(record_path(record.id)),
            fix=f"make the folder writable or set FOLDSERVE_STATE_DIR; {follow}",
        ) from None


def find(job_id: str) -> JobRecord | None:
    """The record of ``job_id``, or None when there is none."""
    return load(job_id) if record_path(job_id).exists() else None


def update_status(record: JobRecord, status: str, path: Path | None = None) -> JobRecord:
    """Save ``record`` (at ``path``, by default its own place) with its last known ``status``."""
    updated = replace(record, status=status)
    save(updated, path)
    return updated
