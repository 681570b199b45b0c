"""Worker processes of the self-hosted endpoint (the local backend), kept honest.

On each supervisor tick (:mod:`foldserve.server.supervisor`) the pool starts the workers,
restarts any that die (the job a dead worker held is retried once, then failed with the
reason), and kills a worker whose job was cancelled or timed out but which has not stopped
within the grace period.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import IO

from foldserve.server import layout
from foldserve.server.settings import WORKER_VARIABLE, ServeSettings, WorkerLaunch
from foldserve.server.store import SERVER_STOPPED, JobStore
from foldserve.server.worker import COMMAND, EXIT_NO_MODEL

#: A worker that dies this soon after starting, repeatedly, is restarted ever more slowly.
QUICK_DEATH_SECONDS = 30.0
MAX_RESTART_DELAY = 60.0

log = logging.getLogger("foldserve.pool")


@dataclass
class _Slot:
    name: str
    gpu: str | None
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick_deaths: int = 0
    restart_at: float = 0.0
    log: IO[bytes] | None = field(default=None, repr=False)


class WorkerPool:
    """``settings.workers`` worker processes, one per GPU when there are GPUs."""

    def __init__(self, store: JobStore, settings: ServeSettings) -> None:
        self.store = store
        self.settings = settings
        gpus = _gpu_ids(settings.workers)
        self._slots = [_Slot(name=f"worker-{i}", gpu=gpus[i]) for i in range(settings.workers)]

    def describe(self) -> str:
        return f"{self.settings.workers} worker(s)"

    def start(self) -> None:
        """Nothing to do yet: the first tick starts the workers."""

    def stop(self, timeout: float) -> None:
        """Stop every worker; jobs they were running go back to the queue, retry unspent."""
        for slot in self._slots:
            if slot.process and slot.process.poll() is None:
                slot.process.terminate()
        deadline = time.monotonic() + timeout
        for slot in self._slots:
            if slot.process is None:
                continue
            try:
                slot.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                slot.process.kill()
                slot.process.wait()
            self.store.release(slot.name, SERVER_STOPPED, count_attempt=False)

    def tick(self, now: float) -> None:
        """Deaths and stragglers."""
        for slot in self._slots:
            self._watch(slot, now)
        self._kill_stragglers(now)

    def _watch(self, slot: _Slot, now: float) -> None:
        process = slot.process
        if process is None:
            if now >= slot.restart_at:
                self._spawn(slot)
            return
        code = process.poll()
        if code is None:
            return
        reason = f"its worker died ({_describe_exit(code)})"
        log.warning("%s %s", slot.name, reason)
        self.store.release(slot.name, reason, count_attempt=True)
        slot.process = None
        lived = now - slot.started
        slot.quick_deaths = slot.quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
        delay = 0.0 if slot.quick_deaths <= 1 else min(2.0**slot.quick_deaths, MAX_RESTART_DELAY)
        if code == EXIT_NO_MODEL:
            delay = MAX_RESTART_DELAY
        slot.restart_at = now + delay

    def _spawn(self, slot: _Slot) -> None:
        log_path = layout.log_file(self.settings.data_dir, slot.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if slot.log is None:
            slot.log = open(log_path, "ab")  # noqa: SIM115 - kept open across restarts
        # Workers send no webhooks: the secret stays in this process.
        settings = self.settings.model_copy(update={"webhook_secret": None})
        launch = WorkerLaunch(name=slot.name, server_pid=os.getpid(), settings=settings)
        secret = ServeSettings.env_name("webhook_secret")
        env = {k: v for k, v in os.environ.items() if k != secret}
        env[WORKER_VARIABLE] = launch.model_dump_json()
        if slot.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot.gpu
        else:
            # CPU workers share the cores: PyTorch (OpenFold3) would take all of them in each
            # worker, and oversubscribed cores make a forward pass several times slower.
            env.setdefault("OMP_NUM_THREADS", str(_cpu_threads(self.settings.workers)))
        slot.process = subprocess.Popen(
            COMMAND,
            stdin=subprocess.DEVNULL,
            stdout=slot.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        slot.started = time.time()
        self.store.register_worker(slot.name, slot.process.pid)
        log.info("%s started (pid %d)", slot.name, slot.process.pid)

    def _kill_stragglers(self, now: float) -> None:
        """Kill workers still busy with a job that was cancelled or timed out too long ago."""
        busy = {w.name: w.job_id for w in self.store.workers() if w.job_id}
        for slot in self._slots:
            job_id = busy.get(slot.name)
            if not job_id or slot.process is None or slot.process.poll() is not None:
                continue
            stopped_at = self.store.stopped_while_running(slot.name, job_id)
            if stopped_at is not None and now - stopped_at > self.settings.stop_grace:
                log.warning("%s did not stop job %s in time: killing it", slot.name, job_id)
                slot.process.send_signal(signal.SIGKILL)


def _gpu_ids(count: int) -> list[str | None]:
    """Worker i gets the i-th visible GPU when there are GPUs; otherwise the default device."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [part for part in visible.split(",") if part.strip()]
    elif shutil.which("nvidia-smi"):
        found = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        )
        ids = found.stdout.split() if found.returncode == 0 else []
    else:
        ids = []
    if not ids:
        return [None] * count
    return [ids[i % len(ids)] for i in range(count)]


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _cpu_threads(workers: int) -> int:
    """Each CPU worker's share of the machine's cores (at least one)."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))
