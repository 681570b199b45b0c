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
