"""The SQLite job store: claims are exclusive, lost workers cannot write, deadlines apply,
each progress event is streamed once, and older databases keep working."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from foldserve.jobs.schema import (
    FoldJobInput,
    JobOutput,
    JobProgress,
    JobStatus,
    MsaSummary,
    Policy,
    QuerySummary,
)
from foldserve.server.store import JobStore, WorkerState

pytestmark = pytest.mark.timeout(60)


def job_input(msa: str) -> FoldJobInput:
    return FoldJobInput(msa=msa)


def job_output(name: str) -> JobOutput:
    """A small output whose query name tells which run wrote it."""
    return JobOutput(
        foldserve_version="0",
        engine="alphafold2",
        test_weights=True,
        query=QuerySummary(name=name, length=3, sequence="ACD"),
        msa=MsaSummary(depth=1, used=1),
        ranking=(),
        files={},
        timings={},
    )


def stage(name: str, recycle: int | None = None) -> JobProgress:
    return JobProgress(stage=name, recycle=recycle)


def test_concurrent_claims_hand_each_job_to_exactly_one_worker(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    submitted = {store.submit(job_input(str(i)), Policy(), None).id for i in range(60)}
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
    store.submit(job_input("x"), Policy(), None)
    first = store.claim("w0")
    assert first is not None
    store.requeue_or_fail(first.id, "its worker died (killed by SIGKILL)")
    second = store.claim("w1")
    assert second is not None and second.id == first.id and second.attempts == 2
    # The first worker wakes up: it is told to stop and cannot overwrite the new run.
    assert store.report(first, stage("predict")) == "the job was handed to another worker"
    assert not store.finish(first, JobStatus.COMPLETED, output=job_output("stale"))
    assert store.finish(second, JobStatus.COMPLETED, output=job_output("fresh"))
    job = store.get(first.id)
    assert job is not None and job.output == job_output("fresh") and job.retried == 1


def test_second_worker_death_fails_the_job_with_the_reason(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    job_id = store.submit(job_input("x"), Policy(), None).id
    for _ in range(2):
        assert store.claim("w0") is not None
        store.requeue_or_fail(job_id, "its worker died (killed by SIGKILL)")
    job = store.get(job_id)
    assert job is not None and job.status == JobStatus.FAILED
    assert job.error == "its worker died (killed by SIGKILL); it had already been retried once"


def test_deadlines_time_out_running_jobs_and_stale_queued_ones(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    running = store.submit(job_input("a"), Policy(executionTimeout=1000), None)
    stale = store.submit(job_input("b"), Policy(ttl=1000), None)
    claimed = store.claim("w0")
    assert claimed is not None and claimed.id == running.id
    assert store.enforce_deadlines(time.time()) == []
    assert store.enforce_deadlines(time.time() + 2) == [running.id]
    timed_out = store.get(running.id)
    assert timed_out is not None and timed_out.status == JobStatus.TIMED_OUT
    assert timed_out.error == "execution timeout of 1 s exceeded"
    assert store.report(claimed, stage("predict")) == "timed out"
    queued = store.get(stale.id)
    assert queued is not None and queued.status == JobStatus.TIMED_OUT
    assert queued.error == "not started within its ttl of 1 s"


def test_a_worker_past_the_deadline_times_its_job_out_with_the_same_message(
    tmp_path: Path,
) -> None:
    now = [1_000_000.0]
    store = JobStore(tmp_path / "jobs.sqlite3", clock=lambda: now[0])
    store.submit(job_input("a"), Policy(executionTimeout=1), None)
    claimed = store.claim("w0")
    assert claimed is not None
    assert store.report(claimed, stage("predict")) is None  # within its 1 ms
    now[0] += 0.01
    # The worker notices before the supervisor does.
    assert store.report(claimed, stage("predict")) == "timed out"
    job = store.get(claimed.id)
    assert job is not None and job.status == JobStatus.TIMED_OUT
    assert job.error == "execution timeout of 0.001 s exceeded"
    assert store.enforce_deadlines(now[0]) == []  # nothing left to time out


def test_the_input_comes_back_as_the_model_it_was_submitted_as(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    submitted = FoldJobInput(msa=">q\nACD\n", models=[2], num_recycles=1)
    job = store.submit(submitted, Policy(), None)
    assert job.input == submitted
    claimed = store.claim("w0")
    assert claimed is not None and claimed.input == submitted
    assert claimed.input.num_seeds == 1  # not sent: the default


def test_stream_hands_each_event_out_once_and_ends_empty(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    job_id = store.submit(job_input("a"), Policy(), None).id
    queued = store.stream(job_id)
    assert queued is not None and (queued.status, queued.events) == (JobStatus.IN_QUEUE, [])
    claimed = store.claim("w0")
    assert claimed is not None
    store.report(claimed, stage("parse"))
    store.report(claimed, stage("predict", 0))
    first = store.stream(job_id)
    assert first is not None and first.events == [stage("parse"), stage("predict", 0)]
    assert first.status == JobStatus.IN_PROGRESS and first.cursor == 2
    store.report(claimed)  # a cancellation check records nothing
    store.report(claimed, stage("predict", 1))
    second = store.stream(job_id)
    assert second is not None and second.events == [stage("predict", 1)]
    assert store.finish(claimed, JobStatus.COMPLETED, output=job_output("done"))
    last = store.stream(job_id)
    assert last is not None and (last.status, last.events) == (JobStatus.COMPLETED, [])
    assert store.stream("no-such-job") is None


def test_reading_since_a_cursor_consumes_nothing(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    job_id = store.submit(job_input("a"), Policy(), None).id
    claimed = store.claim("w0")
    assert claimed is not None
    for recycle in range(3):
        store.report(claimed, stage("predict", recycle))
    everything = store.stream(job_id, since=0)
    assert everything is not None and len(everything.events) == 3 and everything.cursor == 3
    later = store.stream(job_id, since=2)
    assert later is not None and later.events == [stage("predict", 2)] and later.cursor == 3
    nothing_new = store.stream(job_id, since=3)
    assert nothing_new is not None and (nothing_new.events, nothing_new.cursor) == ([], 3)
    consumed = store.stream(job_id)  # RunPod's reader still gets every chunk
    assert consumed is not None and len(consumed.events) == 3


def test_a_retried_job_streams_its_new_run_from_the_start(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    job_id = store.submit(job_input("a"), Policy(), None).id
    first = store.claim("w0")
    assert first is not None
    store.report(first, stage("parse"))
    assert store.stream(job_id) is not None
    store.finish(first, JobStatus.FAILED, error="broken")
    assert store.retry(job_id) is not None
    second = store.claim("w0")
    assert second is not None
    store.report(second, stage("features"))
    chunk = store.stream(job_id)
    assert chunk is not None and chunk.events == [stage("features")]


OLD_SCHEMA = """
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, status TEXT NOT NULL,
    input TEXT NOT NULL, execution_timeout_ms INTEGER NOT NULL, ttl_ms INTEGER NOT NULL,
    webhook TEXT, webhook_state TEXT, submitted_at REAL NOT NULL, started_at REAL,
    finished_at REAL, attempts INTEGER NOT NULL DEFAULT 0, retried INTEGER NOT NULL DEFAULT 0,
    worker TEXT, run_token TEXT, progress TEXT, output TEXT, error TEXT
);
CREATE TABLE events (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (job_id, seq)
);
INSERT INTO jobs (id, status, input, execution_timeout_ms, ttl_ms, submitted_at, attempts)
    VALUES ('old-job', 'IN_PROGRESS', '{"msa": ">q\\nACD\\n"}', 600000, 86400000, 1.0, 1);
INSERT INTO events VALUES ('old-job', 1, '{"stage": "parse", "elapsed": 0.0}');
"""


def test_a_database_from_before_the_stream_cursor_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    store = JobStore(path)
    job = store.get("old-job")
    assert job is not None and job.status == JobStatus.IN_PROGRESS
    assert job.input.msa == ">q\nACD\n"
    chunk = store.stream("old-job")
    assert chunk is not None and chunk.events == [JobProgress(stage="parse", elapsed=0.0)]
    again = store.stream("old-job")
    assert again is not None and again.events == []
    JobStore(path)  # opening it again finds the column there


def test_a_worker_that_stopped_a_cancelled_job_is_idle_not_a_straggler(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.register_worker("w0", 1)
    job_id = store.submit(job_input("a"), Policy(), None).id
    claimed = store.claim("w0")
    assert claimed is not None
    store.cancel(job_id)
    assert store.report(claimed, stage("predict")) == "cancelled on request"
    assert store.stopped_while_running("w0", job_id) is not None  # killed if it kept going
    store.stopped(claimed)
    (worker,) = store.workers()
    assert (worker.state, worker.job_id) == (WorkerState.IDLE, None)
