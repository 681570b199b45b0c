"""The SQLite job store: claims are exclusive, lost workers cannot write, deadlines apply."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from foldserve.jobs.schema import JobStatus, Policy
from foldserve.server.store import JobStore


def test_concurrent_claims_hand_each_job_to_exactly_one_worker(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    submitted = {store.submit({"msa": str(i)}, Policy(), None).id for i in range(60)}
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        other = JobStore(tmp_path / "jobs.sqlite3")  # its own connections, like a process
        other.register_worker(name, 0)
        while (job := other.claim(name)) is not None:
            with lock:
                claimed.append((job.id, name))

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [job_id for job_id, _ in claimed]
    assert sorted(ids) == sorted(submitted)  # every job once, none twice
    assert store.counts()["inProgress"] == 60


def test_a_worker_that_lost_its_job_cannot_finish_it(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.submit({"msa": "x"}, Policy(), None)
    first = store.claim("w0")
    assert first is not None
    store.requeue_or_fail(first.id, "its worker died (killed by SIGKILL)")
    second = store.claim("w1")
    assert second is not None and second.id == first.id and second.attempts == 2
    # The first worker wakes up: it is told to stop and cannot overwrite the new run.
    assert store.report(first, {"stage": "predict"}) == "the job was handed to another worker"
    assert not store.finish(first, JobStatus.COMPLETED, output={"stale": True})
    assert store.finish(second, JobStatus.COMPLETED, output={"fresh": True})
    job = store.get(first.id)
    assert job is not None and job.output == {"fresh": True} and job.retried == 1


def test_second_worker_death_fails_the_job_with_the_reason(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    job_id = store.submit({"msa": "x"}, Policy(), None).id
    for _ in range(2):
        assert store.claim("w0") is not None
        store.requeue_or_fail(job_id, "its worker died (killed by SIGKILL)")
    job = store.get(job_id)
    assert job is not None and job.status == JobStatus.FAILED
    assert job.error == "its worker died (killed by SIGKILL); it had already been retried once"


def test_deadlines_time_out_running_jobs_and_stale_queued_ones(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    running = store.submit({"msa": "a"}, Policy(executionTimeout=1000), None)
    stale = store.submit({"msa": "b"}, Policy(ttl=1000), None)
    claimed = store.claim("w0")
    assert claimed is not None and claimed.id == running.id
    assert store.enforce_deadlines(time.time()) == []
    assert store.enforce_deadlines(time.time() + 2) == [running.id]
    timed_out = store.get(running.id)
    assert timed_out is not None and timed_out.status == JobStatus.TIMED_OUT
    assert timed_out.error == "execution timeout of 1 s exceeded"
    assert store.report(claimed, {"stage": "predict"}) == "timed out"
    queued = store.get(stale.id)
    assert queued is not None and queued.status == JobStatus.TIMED_OUT
    assert queued.error == "not started within its ttl of 1 s"


def test_a_worker_past_the_deadline_times_its_job_out_with_the_same_message(
    tmp_path: Path,
) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.submit({"msa": "a"}, Policy(executionTimeout=1), None)
    claimed = store.claim("w0")
    assert claimed is not None
    time.sleep(0.01)
    # The worker notices before the supervisor does.
    assert store.report(claimed, {"stage": "predict"}) == "timed out"
    job = store.get(claimed.id)
    assert job is not None and job.status == JobStatus.TIMED_OUT
    assert job.error == "execution timeout of 0.001 s exceeded"
    assert store.enforce_deadlines(time.time()) == []  # nothing left to time out
