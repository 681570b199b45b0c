"""Job ids and result file names: checked wherever they become parts of URLs or paths.

Both the server (routes, its results folder) and the client (job records, downloads) use them,
so a hostile id or file name can never reach outside the folder it is meant for.
"""

from __future__ import annotations

import re

from foldserve.errors import InputError

JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")


def checked_job_id(job_id: str, *, where: str = "id") -> str:
    """``job_id`` when it is a well-formed id; a user error otherwise (no path tricks)."""
    if not JOB_ID.fullmatch(job_id):
        raise InputError(
            f"{job_id[:80]!r} is not a job id",
            where=where,
            fix="use the id /run or foldserve submit printed (letters, digits, '-' and '_')",
        )
    return job_id


def checked_file_name(name: str) -> str:
    """``name`` when it is a plain file name (no directories, no '..')."""
    if not FILE_NAME.fullmatch(name) or ".." in name:
        raise InputError(
            f"{name[:80]!r} is not a result file name",
            where="file",
            fix="use a name listed in the job's output files",
        )
    return name
