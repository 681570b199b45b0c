"""Where the self-hosted endpoint keeps things inside its data directory."""

from __future__ import annotations

import re
from pathlib import Path

from foldserve.errors import UserInputError

JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")


def database(data_dir: Path) -> Path:
    return data_dir / "jobs.sqlite3"


def results_dir(data_dir: Path, job_id: str) -> Path:
    return data_dir / "results" / checked_job_id(job_id)


def log_file(data_dir: Path, worker: str) -> Path:
    return data_dir / "logs" / f"{worker}.log"


def server_lock(data_dir: Path) -> Path:
    return data_dir / "server.lock"


def checked_job_id(job_id: str, *, where: str = "id") -> str:
    """``job_id`` when it is a well-formed id; a user error otherwise (no path tricks).

    Ids become parts of URLs and file names on both the server and the client.
    """
    if not JOB_ID.fullmatch(job_id):
        raise UserInputError(
            f"{job_id[:80]!r} is not a job id",
            where=where,
            fix="use the id /run or foldserve submit printed (letters, digits, '-' and '_')",
        )
    return job_id


def checked_file_name(name: str) -> str:
    """``name`` when it is a plain file name (no directories, no '..')."""
    if not FILE_NAME.fullmatch(name) or ".." in name:
        raise UserInputError(
            f"{name[:80]!r} is not a result file name",
            where="file",
            fix="use a name listed in the job's output files",
        )
    return name
