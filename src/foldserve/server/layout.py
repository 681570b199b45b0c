"""Where the self-hosted endpoint keeps things inside its data directory."""

from __future__ import annotations

from pathlib import Path

from foldserve.jobs.ids import checked_job_id


def database(data_dir: Path) -> Path:
    return data_dir / "jobs.sqlite3"


def results_dir(data_dir: Path, job_id: str) -> Path:
    return data_dir / "results" / checked_job_id(job_id)


def log_file(data_dir: Path, worker: str) -> Path:
    return data_dir / "logs" / f"{worker}.log"


def server_lock(data_dir: Path) -> Path:
    return data_dir / "server.lock"


def result_url(endpoint_id: str, job_id: str, name: str) -> str:
    """Where the API serves a job's result file that did not go inline (a path on the host)."""
    return f"/v2/{endpoint_id}/results/{job_id}/{name}"
