"""A worker process of the self-hosted endpoint: its warm engines, jobs from the store.

Started by :class:`foldserve.server.pool.WorkerPool` as ``python -m foldserve.server.worker``,
with its :class:`~foldserve.server.settings.WorkerLaunch` (its name and the server's settings,
whole) as JSON in ``$FOLDSERVE_WORKER``: no setting is spelled out again on a command line.

Every engine the server serves (``--engines``) is loaded in every worker before it takes a
job; a job for another engine fails with one line naming ``input.engine``.

A worker dies with its server (``PR_SET_PDEATHSIG`` where Linux offers it, and a watchdog
thread everywhere), so a restarted server never finds an old worker still running a job.
Anything a job does wrong that is not the user's fault ends the worker after the job is
failed, so the next job starts on a fresh process and device.

A full disk (the store's, or the results' ``ENOSPC``) is not the job's fault: the job goes back
to the queue with its attempt unspent and the worker waits for room; an outcome already
computed is kept until the store takes it.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from foldserve.errors import Cancelled, FoldserveError, InputError, StoreFull, StoreUnavailable
from foldserve.fold.engine import Engines
from foldserve.jobs.failures import crash_message
from foldserve.jobs.run import run_fold_job
from foldserve.jobs.schema import JobProgress, JobStatus
from foldserve.server import layout
from foldserve.server.settings import WORKER_VARIABLE, ServeSettings, WorkerLaunch
from foldserve.server.store import Job, JobStore, StopReason, WorkerState

POLL_SECONDS = 0.2
#: How long a worker waits before it tries a store it could not write again.
STORE_RETRY_SECONDS = 5.0
#: The ``errno`` values of a full disk (or quota).
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
EXIT_NO_MODEL = 3

log = logging.getLogger("foldserve.worker")
T = TypeVar("T")


#: How the server starts a worker; what it is to do comes in ``$FOLDSERVE_WORKER``.
COMMAND = (sys.executable, "-m", "foldserve.server.worker")


def run_job(store: JobStore, job: Job, engines: Engines, settings: ServeSettings) -> None:
    """Run one claimed job to its end and record the outcome."""
    work_dir = layout.results_dir(settings.data_dir, job.id)
    stop: StopReason | None = None

    def progress(update: JobProgress) -> None:
        # A stop learned here is acted on here: the steps between two cancel checks (fetching
        # and featurising the MSA, compiling a new shape, writing the files) can outlast the
        # stop grace, and a worker still busy then is killed and restarts cold.
        nonlocal stop
        stop = store.report(job, update)
        if stop is not None:
            raise Cancelled(f"before {update.stage}")

    def cancelled() -> bool:
        nonlocal stop
        stop = store.report(job)
        return stop is not None

    def url_for(name: str, _path: Path) -> str:
        return layout.result_url(settings.endpoint_id, job.id, name)

    try:
        output = run_fold_job(
            job.input,
            engines,
            work_dir,
            progress=progress,
            cancel=cancelled,
            inline_limit=settings.inline_limit,
            url_for=url_for,
            outbound=settings.outbound,
            limits=settings.msa_limits,
        )
    except Cancelled as exc:
        # Cancelled or timed out: the store already says so (report() times a job out itself
        # when it is past its deadline).
        until_stored(lambda: store.stopped(job))
        log.info("job %s stopped: %s (%s)", job.id, stop, exc.problem)
        return
    except InputError as exc:
        error = exc.one_line()
        until_stored(lambda: store.finish(job, JobStatus.FAILED, error=error))
        log.info("job %s failed: %s", job.id, error)
        return
    except Exception as exc:
        if no_room(exc):
            shutil.rmtree(work_dir, ignore_errors=True)
            until_stored(lambda: store.give_back(job))
            raise StoreFull(
                f"no room to run job {job.id} ({exc}); it is back in the queue",
                where=str(settings.data_dir),
                fix="free space on that disk; the worker tries again by itself",
            ) from None
        log.error("job %s crashed:\n%s", job.id, traceback.format_exc())
        store.finish(job, JobStatus.FAILED, error=crash_message(exc, "it was restarted"))
        raise SystemExit(1) from None
    until_stored(lambda: store.finish(job, JobStatus.COMPLETED, output=output))
    log.info("job %s completed", job.id)


def until_stored(write: Callable[[], T]) -> T:
    """``write`` to the store, waiting while it cannot be written (the store logs why)."""
    while True:
        try:
            return write()
        except StoreUnavailable:
            time.sleep(STORE_RETRY_SECONDS)


def no_room(exc: Exception) -> bool:
    """A full disk, under the store or the results."""
    return isinstance(exc, StoreUnavailable) or (
        isinstance(exc, OSError) and exc.errno in _NO_SPACE
    )


def serve_jobs(settings: ServeSettings, name: str) -> None:
    """Load every engine once, then run jobs until the process is stopped."""
    store = JobStore(layout.database(settings.data_dir))
    store.set_worker_state(name, WorkerState.STARTING)
    try:
        engines = Engines(settings.engines, settings.params_dir, precision=settings.precision)
        engines.load()
    except FoldserveError as exc:  # missing weights or extra, damaged weights: one line
        log.error("cannot start: %s", exc.one_line())
        raise SystemExit(EXIT_NO_MODEL) from None
    for line in engines.describe():
        log.info("%s", line)
    store.set_worker_state(name, WorkerState.IDLE)
    while True:
        try:
            job = store.claim(name)
            if job is None:
                time.sleep(POLL_SECONDS)
                continue
            log.info("job %s claimed (attempt %d)", job.id, job.attempts)
            run_job(store, job, engines, settings)
        except StoreFull as exc:
            log.warning("%s", exc.one_line())
            time.sleep(STORE_RETRY_SECONDS)
        except StoreUnavailable:  # logged by the store, once per interval
            time.sleep(STORE_RETRY_SECONDS)


def _die_with_parent(parent_pid: int) -> None:
    """End this process when the server that started it ends, however it ends."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(1.0)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def main() -> None:
    launch = WorkerLaunch.model_validate_json(os.environ[WORKER_VARIABLE])
    # Ctrl-C in the server's terminal reaches the whole process group; the server decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(launch.server_pid)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {launch.name} %(levelname)s %(message)s"
    )
    serve_jobs(launch.settings, launch.name)


if __name__ == "__main__":
    main()
