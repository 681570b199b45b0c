"""The local record of submitted jobs, so ``foldserve status/fetch/cancel JOB`` work from any
later shell.

One JSON file per job, ``{state_dir}/jobs/{id}.json``: where the job went, what was sent and
where its results should go. Never the API key: that is resolved again from the environment or
the configuration each time it is needed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foldserve.config import Endpoint, EndpointKind, endpoint_at, state_dir
from foldserve.errors import InputError
from foldserve.files import write_text
from foldserve.jobs.ids import checked_job_id


@dataclass(frozen=True)
class JobRecord:
    id: str
    base_url: str
    kind: EndpointKind
    profile: str | None
    msa: str | None
    output: str | None
    out_dir: str | None
    submitted_at: str
    status: str = "IN_QUEUE"

    @classmethod
    def new(
        cls,
        job_id: str,
        endpoint: Endpoint,
        *,
        msa: str | Path | None,
        output: str | Path | None,
        out_dir: str | Path | None,
    ) -> JobRecord:
        def absolute(path: str | Path | None) -> str | None:
            return None if path is None else str(Path(path).absolute())

        return cls(
            id=checked_job_id(job_id, where="JOB"),
            base_url=endpoint.base_url,
            kind=endpoint.kind,
            profile=endpoint.profile,
            msa=absolute(msa),
            output=absolute(output),
            out_dir=absolute(out_dir),
            submitted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def endpoint(self) -> Endpoint:
        """The job's endpoint, its key resolved afresh from the environment or configuration."""
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
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        record = JobRecord(**raw)
        checked_job_id(record.id, where="JOB")
    except (ValueError, TypeError, InputError) as exc:
        raise InputError(
            f"the job record is damaged ({exc})",
            where=str(path),
            fix="delete it and name the job's endpoint with --url, --endpoint-id or --profile",
        ) from None
    if record.kind not in ("runpod", "url"):
        raise InputError(
            f"the job record names an unknown kind of endpoint {record.kind!r}",
            where=str(path),
            fix="delete it and name the job's endpoint with --url, --endpoint-id or --profile",
        )
    return record


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


def find(job_id: str) -> JobRecord | None:
    """The record of ``job_id``, or None when there is none."""
    return load(job_id) if record_path(job_id).exists() else None


def update_status(record: JobRecord, status: str, path: Path | None = None) -> JobRecord:
    """Save ``record`` (at ``path``, by default its own place) with its last known ``status``."""
    updated = replace(record, status=status)
    save(updated, path)
    return updated
