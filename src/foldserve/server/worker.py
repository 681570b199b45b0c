"""A worker process of the self-hosted endpoint: one warm Predictor, jobs from the store.

Started by :class:`foldserve.server.pool.WorkerPool` as ``python -m foldserve.server.worker``.
A worker dies with its server (``PR_SET_PDEATHSIG`` where Linux offers it, and a watchdog
thread everywhere), so a restarted server never finds an old worker still running a job.
Anything a job does wrong that is not the user's fault ends the worker after the job is
failed, so the next job starts on a fresh process and device.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foldserve.errors import Cancelled, InputError
from foldserve.fold.predictor import Precision, Predictor
from foldserve.jobs.failures import crash_message
from foldserve.jobs.run import run_fold_job
from foldserve.jobs.schema import JobStatus, parse_job_input
from foldserve.server import layout
from foldserve.server.store import Job, JobStore, StopReason

POLL_SECONDS = 0.2
EXIT_NO_MODEL = 3

log = logging.getLogger("foldserve.worker")


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker of one server shares."""

    data_dir: Path
    endpoint_id: str
    params_dir: Path | None = None
    precision: Precision = "auto"
    inline_limit: int = 2 << 20

    def command(self, name: str) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "foldserve.server.worker",
            "--name",
            name,
            "--data-dir",
            str(self.data_dir),
            "--endpoint-id",
            self.endpoint_id,
            "--precision",
            self.precision,
            "--inline-limit",
            str(self.inline_limit),
            "--parent-pid",
            str(os.getpid()),
        ]
        if self.params_dir is not None:
            command += ["--params-dir", str(self.params_dir)]
        return command


def run_job(store: JobStore, job: Job, predictor: Predictor, settings: WorkerSettings) -> None:
    """Run one claimed job to its end and record the outcome."""
    work_dir = layout.results_dir(settings.data_dir, job.id)
    stop: StopReason | None = None

    def progress(payload: dict[str, Any]) -> None:
        nonlocal stop
        stop = store.report(job, payload) or stop

    def cancelled() -> bool:
        nonlocal stop
        stop = stop or store.report(job, {})
        return stop is not None

    def url_for(name: str, _path: Path) -> str:
        return f"/v2/{settings.endpoint_id}/results/{job.id}/{name}"

    try:
        output = run_fold_job(
            parse_job_input(job.input),
            predictor,
            work_dir,
            progress=progress,
            cancel=cancelled,
            inline_limit=settings.inline_limit,
            url_for=url_for,
        )
        store.finish(job, JobStatus.COMPLETED, output=output)
        log.info("job %s completed", job.id)
    except Cancelled:
        # Cancelled or timed out: the store already says so (report() times a job out itself
        # when it is past its deadline).
        log.info("job %s stopped: %s", job.id, stop)
    except InputError as exc:
        store.finish(job, JobStatus.FAILED, error=exc.one_line())
        log.info("job %s failed: %s", job.id, exc.one_line())
    except Exception as exc:
        log.error("job %s crashed:\n%s", job.id, traceback.format_exc())
        store.finish(job, JobStatus.FAILED, error=crash_message(exc, "it was restarted"))
        raise SystemExit(1) from None


def serve_jobs(settings: WorkerSettings, name: str) -> None:
    """Load the model once, then run jobs until the process is stopped."""
    store = JobStore(layout.database(settings.data_dir))
    store.set_worker_state(name, "starting")
    try:
        predictor = Predictor(settings.params_dir, precision=settings.precision)
    except InputError as exc:
        log.error("cannot start: %s", exc.one_line())
        raise SystemExit(EXIT_NO_MODEL) from None
    log.info("ready: %s, %d evoformer blocks", predictor.device, predictor.evoformer_blocks)
    store.set_worker_state(name, "idle")
    while True:
        job = store.claim(name)
        if job is None:
            time.sleep(POLL_SECONDS)
            continue
        log.info("job %s claimed (attempt %d)", job.id, job.attempts)
        run_job(store, job, predictor, settings)


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m foldserve.server.worker")
    parser.add_argument("--name", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--endpoint-id", required=True)
    parser.add_argument("--params-dir", type=Path)
    parser.add_argument("--precision", default="auto", choices=["auto", "bfloat16", "float32"])
    parser.add_argument("--inline-limit", type=int, default=2 << 20)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    # Ctrl-C in the server's terminal reaches the whole process group; the server decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(args.parent_pid)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {args.name} %(levelname)s %(message)s"
    )
    settings = WorkerSettings(
        data_dir=args.data_dir,
        endpoint_id=args.endpoint_id,
        params_dir=args.params_dir,
        precision=args.precision,
        inline_limit=args.inline_limit,
    )
    serve_jobs(settings, args.name)


if __name__ == "__main__":
    main()
