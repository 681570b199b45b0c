"""Storage faults: a damaged job store is refused at start with what to do; a full disk gives
503 with Retry-After, is logged once, loses no job and passes by itself.

The full disk is SQLite's ``max_page_count`` on a test store (and a failing results writer for
the workers), never the real disk.
"""

from __future__ import annotations

import errno
import logging
import random
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from foldserve.errors import StoreFull
from foldserve.fold.engine import Engines
from foldserve.jobs.schema import JobStatus, RunRequest, parse_run_request
from foldserve.server import layout, worker
from foldserve.server.app import STORE_RETRY_AFTER_S, create_app
from foldserve.server.settings import ServeSettings
from foldserve.server.store import JobStore, WorkerState, open_database
from tests.cli_runner import foldserve
from tests.conftest import data
from tests.serving import SMALL_MSA, free_port


def small_run() -> RunRequest:
    return parse_run_request({"input": {"msa": data(SMALL_MSA).read_text()}})


class SizedDisk:
    """Opens the store with at most ``pages`` pages: a disk that fills up, and empties."""

    def __init__(self) -> None:
        self.pages: int | None = None

    def connect(self, path: Path) -> sqlite3.Connection:
        db = open_database(path)
        if self.pages is not None:
            db.execute(f"PRAGMA max_page_count = {self.pages}")
        return db

    def fill(self, store: JobStore) -> int:
        """Submit jobs until the store is full; how many fitted."""
        self.pages = _page_count(store.path) + 2
        run = small_run()
        for fitted in range(1000):
            try:
                store.submit(run.input, run.policy, None)
            except StoreFull:
                return fitted
        raise AssertionError("the store never filled up")


def _page_count(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA page_count").fetchone()[0])


def serve_args(data_dir: Path) -> list[str]:
    return ["serve", "--no-auth", "--port", str(free_port()), "--data-dir", str(data_dir)]


def a_store_with_jobs(data_dir: Path, jobs: int) -> Path:
    store = JobStore(layout.database(data_dir))
    run = small_run()
    for _ in range(jobs):
        store.submit(run.input, run.policy, None)
    return store.path


@pytest.mark.timeout(60)
def test_garbled_header_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = a_store_with_jobs(tmp_path / "server", 3)
    damaged = bytearray(path.read_bytes())
    damaged[:100] = random.Random(0).randbytes(100)
    path.write_bytes(bytes(damaged))

    ran = foldserve(*serve_args(tmp_path / "server"), env={"FOLDSERVE_API_KEY": None})

    assert ran.exit_code == 2
    (line,) = ran.stderr.strip().splitlines()
    assert str(path) in line and "damaged" in line
    assert "backup" in line and "aside" in line


@pytest.mark.timeout(60)
def test_damaged_pages_are_refused_at_start(tmp_path: Path) -> None:
    path = a_store_with_jobs(tmp_path / "server", 200)
    damaged = bytearray(path.read_bytes())
    page = 4096
    assert len(damaged) > 10 * page
    damaged[5 * page : 8 * page] = random.Random(1).randbytes(3 * page)
    path.write_bytes(bytes(damaged))

    ran = foldserve(*serve_args(tmp_path / "server"), env={"FOLDSERVE_API_KEY": None})

    assert ran.exit_code == 2
    (line,) = ran.stderr.strip().splitlines()
    assert str(path) in line and "damaged" in line and "backup" in line


@pytest.mark.timeout(60)
def test_full_disk_is_503_logged_once_and_passes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    disk = SizedDisk()
    store = JobStore(tmp_path / "jobs.sqlite3", connect=disk.connect)
    settings = ServeSettings(data_dir=tmp_path)
    client = TestClient(create_app(store, settings, ()), raise_server_exceptions=False)
    body = {"input": {"msa": data(SMALL_MSA).read_text()}}

    with caplog.at_level(logging.INFO, logger="foldserve.store"):
        assert disk.fill(store) > 0
        queued = store.counts()["inQueue"]
        answers = [client.post("/v2/local/run", json=body) for _ in range(5)]
        health = client.get("/v2/local/health")

        assert {answer.status_code for answer in answers} == {503}
        assert answers[0].headers["Retry-After"] == str(STORE_RETRY_AFTER_S)
        error = answers[0].json()["error"]
        assert "disk is full" in error and str(tmp_path) not in error
        assert health.status_code == 200  # reads need no room
        faults = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(faults) == 1, [r.getMessage() for r in faults]

        disk.pages = None  # room again
        answer = client.post("/v2/local/run", json=body)
        assert answer.status_code == 200, answer.text
        assert "works again" in caplog.text

    assert store.counts()["inQueue"] == queued + 1  # nothing lost, nothing half-written


@pytest.mark.timeout(60)
def test_worker_out_of_space_gives_the_job_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = JobStore(layout.database(tmp_path))
    run = small_run()
    submitted = store.submit(run.input, run.policy, None)
    store.register_worker("worker-0", 1, WorkerState.IDLE)
    job = store.claim("worker-0")
    assert job is not None and job.id == submitted.id
    results = layout.results_dir(tmp_path, job.id)

    def no_room(*_args: object, **_kwargs: object) -> None:
        results.mkdir(parents=True)
        (results / "ranked_0.pdb").write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(worker, "run_fold_job", no_room)
    settings = ServeSettings(data_dir=tmp_path)

    with pytest.raises(StoreFull, match="back in the queue"):
        worker.run_job(store, job, Engines(()), settings)

    again = store.get(job.id)
    assert again is not None
    assert again.status == JobStatus.IN_QUEUE and again.attempts == 0 and again.error is None
    assert not results.exists()
    (row,) = store.workers()
    assert row.state == WorkerState.IDLE and row.job_id is None
    assert store.claim("worker-0") is not None  # runs again when there is room
