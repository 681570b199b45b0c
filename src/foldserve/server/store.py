"""The durable job queue: one SQLite file (WAL) in the server's data directory.

Every state change is one short transaction, so the server and its worker processes can share
the file. A job is claimed with ``BEGIN IMMEDIATE`` and gets a fresh ``run_token``; every later
write by the worker names that token, so a worker that lost its job (the job was cancelled,
timed out, or handed to another worker after a restart) can neither overwrite the job nor keep
it running: its next progress report tells it to stop. That, and killing workers whose jobs
were taken from them, is what keeps a job from ever running twice at the same time.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foldserve.jobs.schema import JobStatus, Policy

#: A job whose worker died is run once more; the second death fails it.
MAX_ATTEMPTS = 2
#: Progress events kept per job for ``/stream``.
MAX_EVENTS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    execution_timeout_ms INTEGER NOT NULL,
    ttl_ms INTEGER NOT NULL,
    webhook TEXT,
    webhook_state TEXT,
    submitted_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    run_token TEXT,
    progress TEXT,
    output TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS workers (
    name TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    state TEXT NOT NULL,
    job_id TEXT,
    since REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Job:
    """One row of the queue, as the API and the workers see it."""

    id: str
    status: JobStatus
    input: dict[str, Any]
    execution_timeout_ms: int
    ttl_ms: int
    webhook: str | None
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    retried: int
    worker: str | None
    run_token: str | None
    progress: dict[str, Any] | None
    output: dict[str, Any] | None
    error: str | None

    @property
    def deadline(self) -> float:
        """When the job must be finished: its execution timeout, capped by its ttl."""
        expires = self.submitted_at + self.ttl_ms / 1000
        if self.started_at is None:
            return expires
        return min(expires, self.started_at + self.execution_timeout_ms / 1000)

    def delay_ms(self, now: float) -> int:
        """Time spent waiting in the queue."""
        waited = (self.started_at or self.finished_at or now) - self.submitted_at
        return max(0, round(waited * 1000))

    def execution_ms(self, now: float) -> int:
        """Time spent running."""
        if self.started_at is None:
            return 0
        return round(((self.finished_at or now) - self.started_at) * 1000)


@dataclass(frozen=True)
class WorkerRow:
    name: str
    pid: int
    state: str  # starting | idle | running
    job_id: str | None
    since: float


class StopReason(str):
    """Why a running job must stop: it was cancelled, timed out, or taken away."""


class JobStore:
    """The queue in ``path``; every method is one transaction on a private connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    # -- the API's side ------------------------------------------------------------------------

    def submit(self, job_input: dict[str, Any], policy: Policy, webhook: str | None) -> Job:
        job_id = f"{uuid.uuid4()}-fs"
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, status, input, execution_timeout_ms, ttl_ms, webhook,"
                " webhook_state, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    JobStatus.IN_QUEUE,
                    json.dumps(job_input),
                    policy.executionTimeout,
                    policy.ttl,
                    webhook,
                    "pending" if webhook else None,
                    time.time(),
                ),
            )
        return self._require(job_id)

    def get(self, job_id: str) -> Job | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def events(self, job_id: str) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT payload FROM events WHERE job_id = ? ORDER BY seq", (job_id,)
            ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job at once; a running one stops at its next recycle."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ?"
                " WHERE id = ? AND status IN (?, ?)",
                (
                    JobStatus.CANCELLED,
                    time.time(),
                    "cancelled on request",
                    job_id,
                    JobStatus.IN_QUEUE,
                    JobStatus.IN_PROGRESS,
                ),
            )
        return self.get(job_id)

    def retry(self, job_id: str) -> Job | None:
        """Queue a FAILED or TIMED_OUT job again; None when it is in another state."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET status = ?, submitted_at = ?, started_at = NULL,"
                " finished_at = NULL, attempts = 0, retried = retried + 1, worker = NULL,"
                " run_token = NULL, progress = NULL, output = NULL, error = NULL,"
                " webhook_state = CASE WHEN webhook IS NULL THEN NULL ELSE 'pending' END"
                " WHERE id = ? AND status IN (?, ?)",
                (JobStatus.IN_QUEUE, time.time(), job_id, JobStatus.FAILED, JobStatus.TIMED_OUT),
            ).rowcount
            if changed:
                db.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
        return self.get(job_id) if changed else None

    def purge_queue(self) -> int:
        """Cancel every job still waiting; the count."""
        with self._transaction() as db:
            return db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE status = ?",
                (JobStatus.CANCELLED, time.time(), "removed by purge-queue", JobStatus.IN_QUEUE),
            ).rowcount

    def counts(self) -> dict[str, int]:
        with self._connect() as db:
            by_status = dict(
                db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
            )
            retried = db.execute("SELECT COUNT(*) FROM jobs WHERE retried > 0").fetchone()[0]
        return {
            "completed": by_status.get(JobStatus.COMPLETED, 0),
            "failed": by_status.get(JobStatus.FAILED, 0) + by_status.get(JobStatus.TIMED_OUT, 0),
            "cancelled": by_status.get(JobStatus.CANCELLED, 0),
            "inProgress": by_status.get(JobStatus.IN_PROGRESS, 0),
            "inQueue": by_status.get(JobStatus.IN_QUEUE, 0),
            "retried": int(retried),
        }

    # -- the workers' side ---------------------------------------------------------------------

    def claim(self, worker: str) -> Job | None:
        """Take the oldest queued job for ``worker``, or None when the queue is empty."""
        token = uuid.uuid4().hex
        with self._transaction() as db:
            now = time.time()
            self._expire_queued(db, now)
            row = db.execute(
                "SELECT id FROM jobs WHERE status = ? ORDER BY seq LIMIT 1", (JobStatus.IN_QUEUE,)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = ?, started_at = ?, attempts = attempts + 1,"
                " worker = ?, run_token = ?, progress = NULL WHERE id = ?",
                (JobStatus.IN_PROGRESS, now, worker, token, row[0]),
            )
            db.execute(
                "UPDATE workers SET state = 'running', job_id = ?, since = ? WHERE name = ?",
                (row[0], now, worker),
            )
        return self._require(row[0])

    def report(self, job: Job, payload: dict[str, Any]) -> StopReason | None:
        """Record progress of ``job``; say why it must stop, if it must (a job past its
        deadline is timed out here)."""
        with self._transaction() as db:
            if payload:
                changed = db.execute(
                    "UPDATE jobs SET progress = ? WHERE id = ? AND run_token = ? AND status = ?",
                    (json.dumps(payload), job.id, job.run_token, JobStatus.IN_PROGRESS),
                ).rowcount
                if changed:
                    db.execute(
                        "INSERT INTO events (job_id, seq, payload) SELECT ?,"
                        " COALESCE(MAX(seq), 0) + 1, ? FROM events WHERE job_id = ?",
                        (job.id, json.dumps(payload), job.id),
                    )
                    db.execute(
                        "DELETE FROM events WHERE job_id = ? AND seq <= "
                        "(SELECT MAX(seq) FROM events WHERE job_id = ?) - ?",
                        (job.id, job.id, MAX_EVENTS),
                    )
            row = db.execute(
                "SELECT status, run_token FROM jobs WHERE id = ?", (job.id,)
            ).fetchone()
            reason = _stop_reason(job, row)
            if reason == "timed out" and row[0] == JobStatus.IN_PROGRESS:
                # Past its deadline before the supervisor noticed: time it out here, with the
                # same message enforce_deadlines gives.
                db.execute(
                    "UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                    (JobStatus.TIMED_OUT, time.time(), _timeout_message(job), job.id),
                )
        return reason

    def finish(
        self,
        job: Job,
        status: JobStatus,
        *,
        output: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Record the end of ``job`` as run by its claimant; False when it was taken away."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, output = ?, error = ?"
                " WHERE id = ? AND run_token = ? AND status = ?",
                (
                    status,
                    time.time(),
                    json.dumps(output) if output is not None else None,
                    error,
                    job.id,
                    job.run_token,
                    JobStatus.IN_PROGRESS,
                ),
            ).rowcount
            db.execute(
                "UPDATE workers SET state = 'idle', job_id = NULL, since = ?"
                " WHERE name = ? AND job_id = ?",
                (time.time(), job.worker, job.id),
            )
        return bool(changed)

    # -- the supervisor's side -----------------------------------------------------------------

    def register_worker(self, name: str, pid: int, state: str = "starting") -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO workers (name, pid, state, job_id, since)"
                " VALUES (?, ?, ?, NULL, ?)",
                (name, pid, state, time.time()),
            )

    def set_worker_state(self, name: str, state: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE workers SET state = ?, since = ? WHERE name = ?", (state, time.time(), name)
            )

    def workers(self) -> list[WorkerRow]:
        with self._connect() as db:
            rows = db.execute("SELECT name, pid, state, job_id, since FROM workers").fetchall()
        return [WorkerRow(*row) for row in rows]

    def forget_workers(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM workers")

    def requeue_or_fail(self, job_id: str, reason: str, *, count_attempt: bool = True) -> None:
        """The job's worker is gone: run it once more, or fail it when it already was.

        ``count_attempt=False`` is for a planned shutdown: the job goes back to the queue
        without using up its retry.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT attempts FROM jobs WHERE id = ? AND status = ?",
                (job_id, JobStatus.IN_PROGRESS),
            ).fetchone()
            if row is None:
                return
            attempts = row[0] if count_attempt else row[0] - 1
            if attempts < MAX_ATTEMPTS:
                db.execute(
                    "UPDATE jobs SET status = ?, started_at = NULL, attempts = ?,"
                    " retried = retried + ?, worker = NULL, run_token = NULL, progress = NULL,"
                    " error = ? WHERE id = ?",
                    (JobStatus.IN_QUEUE, attempts, int(count_attempt), reason, job_id),
                )
            else:
                db.execute(
                    "UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                    (
                        JobStatus.FAILED,
                        time.time(),
                        f"{reason}; it had already been retried once",
                        job_id,
                    ),
                )

    def running_job_of(self, worker: str) -> str | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE worker = ? AND status = ?",
                (worker, JobStatus.IN_PROGRESS),
            ).fetchone()
        return row[0] if row else None

    def orphaned_jobs(self) -> list[str]:
        """Jobs marked running: at server start, their workers are gone."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE status = ?", (JobStatus.IN_PROGRESS,)
            ).fetchall()
        return [row[0] for row in rows]

    def enforce_deadlines(self, now: float) -> list[str]:
        """Time out running jobs past their deadline and queued ones past their ttl."""
        timed_out = []
        with self._transaction() as db:
            self._expire_queued(db, now)
            rows = db.execute(
                "SELECT * FROM jobs WHERE status = ?", (JobStatus.IN_PROGRESS,)
            ).fetchall()
            for row in rows:
                job = _job(row)
                if job.deadline < now:
                    db.execute(
                        "UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                        (JobStatus.TIMED_OUT, now, _timeout_message(job), job.id),
                    )
                    timed_out.append(job.id)
        return timed_out

    def stopped_while_running(self, worker: str, job_id: str) -> float | None:
        """When the job ``worker`` still runs was cancelled or timed out, else None."""
        with self._connect() as db:
            row = db.execute(
                "SELECT status, finished_at FROM jobs WHERE id = ? AND worker = ?",
                (job_id, worker),
            ).fetchone()
        if row and row[0] in (JobStatus.CANCELLED, JobStatus.TIMED_OUT):
            return float(row[1])
        return None

    def webhooks_due(self) -> list[Job]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM jobs WHERE webhook_state = 'pending' AND status NOT IN (?, ?)",
                (JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS),
            ).fetchall()
        return [_job(row) for row in rows]

    def set_webhook_state(self, job_id: str, state: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET webhook_state = ? WHERE id = ?", (state, job_id))

    def expire(self, finished_before: float) -> list[str]:
        """Delete jobs that finished before the given time; their ids (to remove results)."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE finished_at < ? AND status NOT IN (?, ?)",
                (finished_before, JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS),
            ).fetchall()
            ids = [row[0] for row in rows]
            db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])
            db.executemany("DELETE FROM events WHERE job_id = ?", [(i,) for i in ids])
        return ids

    # -- plumbing ------------------------------------------------------------------------------

    def _expire_queued(self, db: sqlite3.Connection, now: float) -> None:
        db.execute(
            "UPDATE jobs SET status = ?, finished_at = ?,"
            " error = 'not started within its ttl of ' || (ttl_ms / 1000) || ' s'"
            " WHERE status = ? AND submitted_at + ttl_ms / 1000.0 < ?",
            (JobStatus.TIMED_OUT, now, JobStatus.IN_QUEUE, now),
        )

    def _require(self, job_id: str) -> Job:
        job = self.get(job_id)
        assert job is not None, job_id
        return job

    def _connect(self) -> closing[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 30000")
        db.execute("PRAGMA synchronous = NORMAL")
        return closing(db)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")


def _job(row: sqlite3.Row | tuple[Any, ...]) -> Job:
    (
        _seq,
        job_id,
        status,
        job_input,
        timeout,
        ttl,
        webhook,
        _webhook_state,
        submitted,
        started,
        finished,
        attempts,
        retried,
        worker,
        token,
        progress,
        output,
        error,
    ) = row
    return Job(
        id=job_id,
        status=JobStatus(status),
        input=json.loads(job_input),
        execution_timeout_ms=timeout,
        ttl_ms=ttl,
        webhook=webhook,
        submitted_at=submitted,
        started_at=started,
        finished_at=finished,
        attempts=attempts,
        retried=retried,
        worker=worker,
        run_token=token,
        progress=json.loads(progress) if progress else None,
        output=json.loads(output) if output else None,
        error=error,
    )


def _stop_reason(job: Job, row: tuple[str, str | None] | None) -> StopReason | None:
    if row is None:
        return StopReason("the job was deleted")
    status, token = row
    if token != job.run_token:
        return StopReason("the job was handed to another worker")
    if status == JobStatus.CANCELLED:
        return StopReason("cancelled on request")
    if status == JobStatus.TIMED_OUT:
        return StopReason("timed out")
    if time.time() > job.deadline:
        return StopReason("timed out")
    return None


def _timeout_message(job: Job) -> str:
    assert job.started_at is not None
    if job.started_at + job.execution_timeout_ms / 1000 <= job.submitted_at + job.ttl_ms / 1000:
        return f"execution timeout of {job.execution_timeout_ms / 1000:g} s exceeded"
    return f"ttl of {job.ttl_ms / 1000:g} s (from submission) exceeded"
