"""The durable job queue: one SQLite file (WAL) in the server's data directory.

Every state change is one short transaction, so the server and its worker processes can share
the file. A job is claimed with ``BEGIN IMMEDIATE`` and gets a fresh ``run_token``; every later
write by the worker names that token, so a worker that lost its job (the job was cancelled,
timed out, or handed to another worker after a restart) can neither overwrite the job nor keep
it running: its next progress report tells it to stop. That, and killing workers whose jobs
were taken from them, is what keeps a job from ever running twice at the same time.

Progress events are numbered per job (``events.seq``). ``/stream`` hands each event out once,
as RunPod hands out stream chunks: the job's ``stream_cursor`` is the last ``seq`` handed out.

Storage faults: a file that is not a database, or whose pages are damaged, is refused at start
(:meth:`JobStore.check`) with what to do. At run time a full disk raises :class:`StoreFull` and
any other damage :class:`StoreUnavailable`, each logged once per :data:`LOG_EVERY_S`; nothing is
written half (every change is one transaction), so when there is room again the store simply
works again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal

from foldserve.errors import InputError, StoreFull, StoreUnavailable
from foldserve.jobs.schema import FoldJobInput, JobOutput, JobProgress, JobStatus, Policy

#: A job whose worker died is run once more; the second death fails it.
MAX_ATTEMPTS = 2
#: Why a job running when the server stopped went back to the queue.
SERVER_STOPPED = "the server stopped while it ran"
#: Progress events kept per job for ``/stream``.
MAX_EVENTS = 2000
#: A storage fault is logged at most once per this many seconds (per process and kind).
LOG_EVERY_S = 60.0

log = logging.getLogger("foldserve.store")

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


#: Columns added after the first release. ``ALTER TABLE`` adds them to every database, new or
#: old, so each is defined here alone. ``stream_cursor``: the last event ``/stream`` handed out.
_ADDED_COLUMNS = {"stream_cursor": "INTEGER NOT NULL DEFAULT 0"}

_JOB_COLUMNS = (
    "id, status, input, execution_timeout_ms, ttl_ms, webhook, submitted_at, started_at,"
    " finished_at, attempts, retried, worker, run_token, progress, output, error"
)


def open_database(path: Path) -> sqlite3.Connection:
    """A connection to the store's file, in autocommit mode (transactions are explicit)."""
    return sqlite3.connect(path, timeout=30.0, isolation_level=None)


class WorkerState(StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    RUNNING = "running"


class WebhookState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Job:
    """One row of the queue, as the API and the workers see it."""

    id: str
    status: JobStatus
    #: The input as stored, validated at submission; parsed on first use (:attr:`input`), so
    #: a status poll does not parse a 10 MB MSA.
    input_json: str = field(repr=False)
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
    progress: JobProgress | None
    output: JobOutput | None
    error: str | None

    @cached_property
    def input(self) -> FoldJobInput:
        return FoldJobInput.model_validate_json(self.input_json)

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
    state: WorkerState
    job_id: str | None
    since: float


@dataclass(frozen=True)
class StreamChunk:
    """Progress events of one job, in order, from ``/stream``."""

    status: JobStatus
    events: list[JobProgress]
    #: The ``seq`` of the last event in ``events``; where the reader was, when there is none.
    cursor: int


class StopReason(str):
    """Why a running job must stop: it was cancelled, timed out, or taken away."""


class JobStore:
    """The queue in ``path``; every method is one transaction on a private connection.

    ``clock`` is the wall clock every timestamp and deadline is read from (tests pass their own
    to step past a deadline without waiting for it); ``connect`` opens the file (tests pass one
    that caps its size, to fill a "disk" without filling the real one). A file that is not a
    job store raises :class:`InputError`.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        connect: Callable[[Path], sqlite3.Connection] = open_database,
    ) -> None:
        self.path = path
        self.clock = clock
        self._open = connect
        self._faults = _FaultLog(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
            with self._transaction() as db:
                present = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
                for column, definition in _ADDED_COLUMNS.items():
                    if column not in present:
                        db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {definition}")
        except StoreFull:
            raise
        except StoreUnavailable as exc:
            raise _damaged(path, exc.problem) from None

    def check(self) -> None:
        """Refuse a store with damaged pages (``PRAGMA quick_check``), at server start: one
        that opens but fails later would answer 500s and lose jobs."""
        try:
            with self._connect() as db:
                found = [row[0] for row in db.execute("PRAGMA quick_check(1)")]
        except StoreFull:
            raise
        except StoreUnavailable as exc:
            raise _damaged(self.path, exc.problem) from None
        if found != ["ok"]:
            raise _damaged(self.path, str(found[0]) if found else "no answer from quick_check")

    # -- the API's side ------------------------------------------------------------------------

    def submit(self, job_input: FoldJobInput, policy: Policy, webhook: str | None) -> Job:
        job_id = f"{uuid.uuid4()}-fs"
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, status, input, execution_timeout_ms, ttl_ms, webhook,"
                " webhook_state, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    JobStatus.IN_QUEUE,
                    job_input.model_dump_json(exclude_none=True, exclude_unset=True),
                    policy.executionTimeout,
                    policy.ttl,
                    webhook,
                    WebhookState.PENDING if webhook else None,
                    self.clock(),
                ),
            )
        return self._require(job_id)

    def get(self, job_id: str) -> Job | None:
        with self._connect() as db:
            row = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def stream(self, job_id: str, since: int | None = None) -> StreamChunk | None:
        """The job's progress events after ``since``; None for an unknown job.

        Without ``since``, the events not yet handed out, as RunPod's ``/stream`` answers:
        the job's cursor moves past them in the same transaction, so each is handed out once.
        With it, a reader keeps its own cursor and nothing is consumed.
        """
        with self._transaction("IMMEDIATE" if since is None else "DEFERRED") as db:
            job = db.execute(
                "SELECT status, stream_cursor FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if job is None:
                return None
            after = job["stream_cursor"] if since is None else since
            rows = db.execute(
                "SELECT seq, payload FROM events WHERE job_id = ? AND seq > ? ORDER BY seq",
                (job_id, after),
            ).fetchall()
            cursor = rows[-1]["seq"] if rows else after
            if since is None and rows:
                db.execute("UPDATE jobs SET stream_cursor = ? WHERE id = ?", (cursor, job_id))
        events = [JobProgress.model_validate_json(row["payload"]) for row in rows]
        return StreamChunk(JobStatus(job["status"]), events, cursor)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job at once; a running one stops at its next recycle."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ?"
                " WHERE id = ? AND status IN (?, ?)",
                (
                    JobStatus.CANCELLED,
                    self.clock(),
                    "cancelled on request",
                    job_id,
                    JobStatus.IN_QUEUE,
                    JobStatus.IN_PROGRESS,
                ),
            )
        return self.get(job_id)

    def retry(self, job_id: str) -> Job | None:
        """Queue a FAILED or TIMED_OUT job again; None when it is in another state.

        The earlier run's events are deleted: the new run's are numbered from 1 again.
        """
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET status = ?, submitted_at = ?, started_at = NULL,"
                " finished_at = NULL, attempts = 0, retried = retried + 1, worker = NULL,"
                " run_token = NULL, progress = NULL, output = NULL, error = NULL,"
                " stream_cursor = 0,"
                " webhook_state = CASE WHEN webhook IS NULL THEN NULL ELSE ? END"
                " WHERE id = ? AND status IN (?, ?)",
                (
                    JobStatus.IN_QUEUE,
                    self.clock(),
                    WebhookState.PENDING,
                    job_id,
                    JobStatus.FAILED,
                    JobStatus.TIMED_OUT,
                ),
            ).rowcount
            if changed:
                db.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
        return self.get(job_id) if changed else None

    def purge_queue(self) -> int:
        """Cancel every job still waiting; the count."""
        with self._transaction() as db:
            return db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE status = ?",
                (JobStatus.CANCELLED, self.clock(), "removed by purge-queue", JobStatus.IN_QUEUE),
            ).rowcount

    def counts(self) -> dict[str, int]:
        with self._connect() as db:
            rows = db.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
            retried = db.execute("SELECT COUNT(*) AS n FROM jobs WHERE retried > 0").fetchone()["n"]
        by_status = {row["status"]: row["n"] for row in rows}
        return {
            "completed": by_status.get(JobStatus.COMPLETED, 0),
            "failed": by_status.get(JobStatus.FAILED, 0) + by_status.get(JobStatus.TIMED_OUT, 0),
            "cancelled": by_status.get(JobStatus.CANCELLED, 0),
            "inProgress": by_status.get(JobStatus.IN_PROGRESS, 0),
            "inQueue": by_status.get(JobStatus.IN_QUEUE, 0),
            "retried": int(retried),
        }

    # -- the workers' side ---------------------------------------------------------------------

    def claim(self, worker: str, job_id: str | None = None) -> Job | None:
        """Take the oldest queued job for ``worker`` (or ``job_id``, while it is queued); None
        when there is none."""
        token = uuid.uuid4().hex
        with self._transaction() as db:
            now = self.clock()
            self._expire_queued(db, now)
            row = db.execute(
                "SELECT id FROM jobs WHERE status = ? AND (? IS NULL OR id = ?)"
                " ORDER BY seq LIMIT 1",
                (JobStatus.IN_QUEUE, job_id, job_id),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = ?, started_at = ?, attempts = attempts + 1,"
                " worker = ?, run_token = ?, progress = NULL WHERE id = ?",
                (JobStatus.IN_PROGRESS, now, worker, token, row["id"]),
            )
            db.execute(
                "UPDATE workers SET state = ?, job_id = ?, since = ? WHERE name = ?",
                (WorkerState.RUNNING, row["id"], now, worker),
            )
        return self._require(row["id"])

    def next_queued(self, skip: Collection[str]) -> Job | None:
        """The oldest queued job not in ``skip``, left in the queue (the Ray backend claims a
        job only when a replica starts it, so a job waiting for one still reads IN_QUEUE)."""
        marks = ", ".join("?" * len(skip))
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = ? AND id NOT IN ({marks})"
                " ORDER BY seq LIMIT 1",
                (JobStatus.IN_QUEUE, *skip),
            ).fetchone()
        return _job(row) if row else None

    def report(self, job: Job, progress: JobProgress | None = None) -> StopReason | None:
        """Record ``progress`` of ``job`` (none: only ask); say why it must stop, if it must (a
        job past its deadline is timed out here)."""
        with self._transaction() as db:
            if progress is not None:
                payload = _json(progress)
                changed = db.execute(
                    "UPDATE jobs SET progress = ? WHERE id = ? AND run_token = ? AND status = ?",
                    (payload, job.id, job.run_token, JobStatus.IN_PROGRESS),
                ).rowcount
                if changed:
                    db.execute(
                        "INSERT INTO events (job_id, seq, payload) SELECT ?,"
                        " COALESCE(MAX(seq), 0) + 1, ? FROM events WHERE job_id = ?",
                        (job.id, payload, job.id),
                    )
                    db.execute(
                        "DELETE FROM events WHERE job_id = ? AND seq <= "
                        "(SELECT MAX(seq) FROM events WHERE job_id = ?) - ?",
                        (job.id, job.id, MAX_EVENTS),
                    )
            row = db.execute(
                "SELECT status, run_token FROM jobs WHERE id = ?", (job.id,)
            ).fetchone()
            reason = _stop_reason(job, row, self.clock())
            if reason == "timed out" and row["status"] == JobStatus.IN_PROGRESS:
                # Past its deadline before the supervisor noticed: time it out here, with the
                # same message enforce_deadlines gives.
                db.execute(
                    "UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                    (JobStatus.TIMED_OUT, self.clock(), _timeout_message(job), job.id),
                )
        return reason

    def finish(
        self,
        job: Job,
        status: JobStatus,
        *,
        output: JobOutput | None = None,
        error: str | None = None,
    ) -> bool:
        """Record the end of ``job`` as run by its claimant; False when it was taken away."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, output = ?, error = ?"
                " WHERE id = ? AND run_token = ? AND status = ?",
                (
                    status,
                    self.clock(),
                    _json(output) if output is not None else None,
                    error,
                    job.id,
                    job.run_token,
                    JobStatus.IN_PROGRESS,
                ),
            ).rowcount
            _free_worker(db, job, self.clock())
        return bool(changed)

    def give_back(self, job: Job) -> None:
        """The claimant cannot finish ``job`` now (its disk is full, its request ended early):
        back to the queue if it still runs under this claim, this attempt not counted; its
        worker idle either way."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, started_at = NULL, attempts = attempts - 1,"
                " worker = NULL, run_token = NULL, progress = NULL"
                " WHERE id = ? AND run_token = ? AND status = ?",
                (JobStatus.IN_QUEUE, job.id, job.run_token, JobStatus.IN_PROGRESS),
            )
            _free_worker(db, job, self.clock())

    def stopped(self, job: Job) -> None:
        """The claimant of ``job`` stopped it when told to (the job is already CANCELLED or
        TIMED_OUT): its worker is idle, and not a straggler for the supervisor to kill."""
        with self._transaction() as db:
            _free_worker(db, job, self.clock())

    # -- the supervisor's side -----------------------------------------------------------------

    def register_worker(
        self, name: str, pid: int, state: WorkerState = WorkerState.STARTING
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO workers (name, pid, state, job_id, since)"
                " VALUES (?, ?, ?, NULL, ?)",
                (name, pid, state, self.clock()),
            )

    def set_worker_state(self, name: str, state: WorkerState) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE workers SET state = ?, since = ? WHERE name = ?",
                (state, self.clock(), name),
            )

    def workers(self) -> list[WorkerRow]:
        with self._connect() as db:
            rows = db.execute("SELECT name, pid, state, job_id, since FROM workers").fetchall()
        return [
            WorkerRow(
                name=row["name"],
                pid=row["pid"],
                state=WorkerState(row["state"]),
                job_id=row["job_id"],
                since=row["since"],
            )
            for row in rows
        ]

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
            attempts = row["attempts"] if count_attempt else row["attempts"] - 1
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
                        self.clock(),
                        f"{reason}; it had already been retried once",
                        job_id,
                    ),
                )

    def release(self, worker: str, reason: str, *, count_attempt: bool) -> None:
        """``worker`` is gone or stopping: the job it was running, if any, is requeued or failed
        (:meth:`requeue_or_fail`)."""
        job_id = self.running_job_of(worker)
        if job_id is not None:
            self.requeue_or_fail(job_id, reason, count_attempt=count_attempt)

    def running_job_of(self, worker: str) -> str | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE worker = ? AND status = ?",
                (worker, JobStatus.IN_PROGRESS),
            ).fetchone()
        return row["id"] if row else None

    def orphaned_jobs(self) -> list[str]:
        """Jobs marked running: at server start, their workers are gone."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE status = ?", (JobStatus.IN_PROGRESS,)
            ).fetchall()
        return [row["id"] for row in rows]

    def enforce_deadlines(self, now: float) -> list[str]:
        """Time out running jobs past their deadline and queued ones past their ttl."""
        timed_out = []
        with self._transaction() as db:
            self._expire_queued(db, now)
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = ?", (JobStatus.IN_PROGRESS,)
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
        """When the job ``worker`` still runs was cancelled or timed out, else None.

        "Still runs" is read from the worker's own row in the same query: once the worker has
        stopped the job (:meth:`stopped`) the answer is None, even to a supervisor that listed
        the worker as busy with it a moment before.
        """
        with self._connect() as db:
            row = db.execute(
                "SELECT jobs.status, jobs.finished_at FROM jobs"
                " JOIN workers ON workers.name = jobs.worker AND workers.job_id = jobs.id"
                " WHERE jobs.id = ? AND jobs.worker = ?",
                (job_id, worker),
            ).fetchone()
        if row and row["status"] in (JobStatus.CANCELLED, JobStatus.TIMED_OUT):
            return float(row["finished_at"])
        return None

    def webhooks_due(self) -> list[Job]:
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE webhook_state = ? AND status NOT IN (?, ?)",
                (WebhookState.PENDING, JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS),
            ).fetchall()
        return [_job(row) for row in rows]

    def set_webhook_state(self, job_id: str, state: WebhookState) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET webhook_state = ? WHERE id = ?", (state, job_id))

    def expire(self, finished_before: float) -> list[str]:
        """Delete jobs that finished before the given time; their ids (to remove results)."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE finished_at < ? AND status NOT IN (?, ?)",
                (finished_before, JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS),
            ).fetchall()
            ids = [row["id"] for row in rows]
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

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A private connection, closed after use; a storage fault in it (also in the caller's
        statements) raises :class:`StoreFull` or :class:`StoreUnavailable`."""
        try:
            db = self._open(self.path)
        except sqlite3.DatabaseError as exc:
            if not _is_fault(exc):
                raise
            raise self._faults.raised(exc) from None
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout = 30000")
            db.execute("PRAGMA synchronous = NORMAL")
            yield db
        except sqlite3.DatabaseError as exc:
            if not _is_fault(exc):
                raise
            raise self._faults.raised(exc) from None
        finally:
            db.close()

    @contextmanager
    def _transaction(
        self, mode: Literal["IMMEDIATE", "DEFERRED"] = "IMMEDIATE"
    ) -> Iterator[sqlite3.Connection]:
        """One transaction: IMMEDIATE takes the write lock at once (for read-then-write);
        DEFERRED is a consistent read of several tables."""
        with self._connect() as db:
            db.execute(f"BEGIN {mode}")
            try:
                yield db
            except BaseException:
                # A full disk can end the transaction itself (SQLite rolls back on SQLITE_FULL).
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        if mode == "IMMEDIATE":
            self._faults.cleared()


#: SQLite's primary result codes for a file that cannot be used (``sqlite3.SQLITE_*``).
_FULL = {sqlite3.SQLITE_FULL}
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_IOERR}


def _is_fault(exc: sqlite3.DatabaseError) -> bool:
    """A fault of the file or the disk, not of a statement (those are bugs: they propagate)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _FULL | _DAMAGED


class _FaultLog:
    """Turns a storage fault into its error, logging each kind once per :data:`LOG_EVERY_S`
    (a full disk would otherwise log on every request and every supervisor tick)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._logged: dict[type[StoreUnavailable], float] = {}

    def raised(self, exc: sqlite3.DatabaseError) -> StoreUnavailable:
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        error: StoreUnavailable
        if code in _FULL:
            error = StoreFull(
                "the disk holding the job store is full",
                where=str(self.path),
                fix="free space on that disk; the server works again by itself when there is "
                "room, and no job is lost",
            )
        else:
            error = StoreUnavailable(
                f"the job store cannot be read or written ({exc})",
                where=str(self.path),
                fix="check the disk; if the file is damaged, stop the server and restore it "
                "from a backup or move it aside",
            )
        now = time.monotonic()
        kind = type(error)
        if now - self._logged.get(kind, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged[kind] = now
            log.error("%s (logged once per %g s while it lasts)", error.one_line(), LOG_EVERY_S)
        return error

    def cleared(self) -> None:
        """A write succeeded: say so once if faults were being logged."""
        if self._logged:
            self._logged.clear()
            log.warning("%s: the job store works again", self.path)


def _damaged(path: Path, detail: str) -> InputError:
    return InputError(
        f"the job store is damaged ({' '.join(detail.split())[:200]})",
        where=str(path),
        fix="restore it from a backup, or move it and its -wal and -shm files aside to start "
        "with an empty queue",
    )


def _job(row: sqlite3.Row) -> Job:
    """A row selected with :data:`_JOB_COLUMNS`."""
    return Job(
        id=row["id"],
        status=JobStatus(row["status"]),
        input_json=row["input"],
        execution_timeout_ms=row["execution_timeout_ms"],
        ttl_ms=row["ttl_ms"],
        webhook=row["webhook"],
        submitted_at=row["submitted_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        attempts=row["attempts"],
        retried=row["retried"],
        worker=row["worker"],
        run_token=row["run_token"],
        progress=JobProgress.model_validate_json(row["progress"]) if row["progress"] else None,
        output=JobOutput.model_validate_json(row["output"]) if row["output"] else None,
        error=row["error"],
    )


def _free_worker(db: sqlite3.Connection, job: Job, now: float) -> None:
    db.execute(
        "UPDATE workers SET state = ?, job_id = NULL, since = ? WHERE name = ? AND job_id = ?",
        (WorkerState.IDLE, now, job.worker, job.id),
    )


def _json(model: JobProgress | JobOutput) -> str:
    """A progress event or an output as stored: its JSON as sent."""
    return json.dumps(model.to_wire(), separators=(",", ":"))


def _stop_reason(job: Job, row: sqlite3.Row | None, now: float) -> StopReason | None:
    if row is None:
        return StopReason("the job was deleted")
    status, token = row["status"], row["run_token"]
    if token != job.run_token:
        return StopReason("the job was handed to another worker")
    if status == JobStatus.CANCELLED:
        return StopReason("cancelled on request")
    if status == JobStatus.TIMED_OUT:
        return StopReason("timed out")
    if now > job.deadline:
        return StopReason("timed out")
    return None


def _timeout_message(job: Job) -> str:
    assert job.started_at is not None
    if job.started_at + job.execution_timeout_ms / 1000 <= job.submitted_at + job.ttl_ms / 1000:
        return f"execution timeout of {job.execution_timeout_ms / 1000:g} s exceeded"
    return f"ttl of {job.ttl_ms / 1000:g} s (from submission) exceeded"
