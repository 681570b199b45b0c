"""Stopping a running job on the self-hosted endpoint: a worker that learns of the stop stops at
once and stays warm; one stuck where it cannot look is killed after the stop grace.

The worker is held at a known point by serving its MSA (``msa_url``) from 127.0.0.1 and holding
the response back: while it waits it has reported "parse" and not yet "features".
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from foldserve.jobs.schema import FoldJobInput, JobStatus, Policy
from foldserve.server import layout
from foldserve.server.store import JobStore
from tests.conftest import data
from tests.serving import SMALL_MSA, WAIT_S, HeldMsa, Server, held_msa, running_server, small_job

#: Long enough for a worker that was told to stop to stop; shorter than featurising and
#: compiling a new shape on a CPU.
GRACE_S = 3.0

pytestmark = pytest.mark.timeout(240)


@contextmanager
def server_fetching_from(msa: HeldMsa, data_dir: Path, params: Path) -> Iterator[Server]:
    allow = ("--allow-http", "--allow-url-prefix", msa.url)
    with running_server(data_dir, params, *allow, env={"FOLDSERVE_STOP_GRACE": str(GRACE_S)}) as s:
        yield s


def worker_log(server: Server) -> str:
    return layout.log_file(server.data_dir, "worker-0").read_text()


def test_a_worker_told_to_stop_stops_before_compiling_and_stays_warm(
    tmp_path: Path, test_params: Path
) -> None:
    with (
        held_msa(data(SMALL_MSA).read_text()) as msa,
        server_fetching_from(msa, tmp_path / "data", test_params) as server,
    ):
        pid = server.worker_pid()
        job_id = server.submit({"msa_url": msa.url, "models": [1], "num_recycles": 1})
        msa.wait_requested()
        assert server.request("POST", f"/cancel/{job_id}").json()["status"] == "CANCELLED"
        msa.release()
        # Its next report ("features") tells it to stop: it stops there, before featurising
        # and compiling, well within the grace, and takes the next job on the same process.
        after = server.submit(small_job(data(SMALL_MSA)))
        body = server.wait_finished(after, timeout=WAIT_S)
        assert body["status"] == "COMPLETED"
        assert server.worker_pid() == pid
        assert "killing it" not in server.log.read_text()
        assert f"job {job_id} stopped: cancelled on request (before features)" in worker_log(server)
        # The cancelled job compiled nothing: the first compilation is the next job's.
        assert body["output"]["timings"]["compile"] > 0.1


def test_a_worker_stuck_past_the_grace_is_killed_and_restarted(
    tmp_path: Path, test_params: Path
) -> None:
    with (
        held_msa(data(SMALL_MSA).read_text()) as msa,
        server_fetching_from(msa, tmp_path / "data", test_params) as server,
    ):
        pid = server.worker_pid()
        job_id = server.submit({"msa_url": msa.url, "models": [1], "num_recycles": 1})
        msa.wait_requested()  # fetching: a step with no report and no cancel check
        server.request("POST", f"/cancel/{job_id}")
        wait_for_new_worker(server.store, pid)
        job = server.store.get(job_id)
        assert job is not None and job.status == "CANCELLED" and job.finished_at is not None
        assert time.time() - job.finished_at > GRACE_S  # not killed before the grace was up
        assert f"worker-0 did not stop job {job_id} in time: killing it" in server.log.read_text()


def wait_for_new_worker(store: JobStore, old_pid: int) -> None:
    """Return once the supervisor has started another process as worker-0."""
    deadline = time.monotonic() + WAIT_S
    while True:
        (row,) = [w for w in store.workers() if w.name == "worker-0"]
        if row.pid != old_pid:
            return
        assert time.monotonic() < deadline, "worker-0 was never restarted"
        time.sleep(0.1)


@pytest.mark.timeout(30)
def test_a_worker_that_stopped_its_job_between_two_looks_is_no_straggler(tmp_path: Path) -> None:
    """The supervisor lists the busy workers, then asks about each one's job: a worker that
    stopped its job in between is not taken for one still running it."""
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.register_worker("worker-0", 1)
    job_id = store.submit(FoldJobInput(msa=">q\nACD\n"), Policy(), None).id
    claimed = store.claim("worker-0")
    assert claimed is not None
    store.cancel(job_id)
    busy = {w.name: w.job_id for w in store.workers() if w.job_id}
    assert busy == {"worker-0": job_id}
    assert store.stopped_while_running("worker-0", job_id) is not None
    store.stopped(claimed)
    assert store.stopped_while_running("worker-0", job_id) is None


def test_sigterm_stops_the_server_and_hands_its_running_job_back(
    tmp_path: Path, test_params: Path
) -> None:
    """systemd, Docker and Kubernetes stop a server with SIGTERM: it stops its workers, hands
    the running job back to the queue (the attempt not counted) and exits 0."""
    with (
        held_msa(data(SMALL_MSA).read_text()) as msa,
        server_fetching_from(msa, tmp_path / "data", test_params) as server,
    ):
        worker = server.worker_pid()
        job_id = server.submit({"msa_url": msa.url, "models": [1], "num_recycles": 1})
        msa.wait_requested()
        server.process.send_signal(signal.SIGTERM)
        msa.release()
        assert server.process.wait(timeout=WAIT_S) == 0, server.log.read_text()
    job = server.store.get(job_id)
    assert job is not None and job.status is JobStatus.IN_QUEUE and job.attempts == 0
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)  # stopped and reaped by the server, not left behind
    assert "Traceback" not in server.log.read_text()
