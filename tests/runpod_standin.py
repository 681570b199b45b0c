"""RunPod's side of the serverless worker protocol, on 127.0.0.1, and real worker processes.

What the SDK's worker loop speaks (runpod 1.12: ``serverless/modules/rp_job.py``,
``rp_http.py``, ``rp_progress.py``, ``rp_ping.py``), every request carrying
``Authorization: $RUNPOD_AI_API_KEY``:

* ``GET $RUNPOD_WEBHOOK_GET_JOB&job_in_progress=0|1`` (``$ID`` = ``RUNPOD_POD_ID``): the next
  job as ``{"id", "input"}``, or 204. Long-polled.
* ``GET`` the same URL with ``/job-take/`` replaced by ``/job-stop/``: ``{"jobsToStop": [id]}``
  or 204. RunPod's cancel and execution timeout reach the worker here; the SDK then cancels
  the asyncio task running the handler.
* ``POST $RUNPOD_WEBHOOK_POST_OUTPUT&isStream=false`` (``$ID`` = the job id), a JSON body sent
  as a form: ``{"status": "IN_PROGRESS", "output": ...}`` for each progress update, then the
  result, ``{"output": ...}`` or ``{"error": "<JSON of error_type, error_message, ...>"}``.
* ``GET $RUNPOD_WEBHOOK_PING?job_id=...``: the heartbeat.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

AI_API_KEY = "rp-ai-key-for-tests"
LONG_POLL_SECONDS = 0.5
T = TypeVar("T")


@dataclass
class JobRecord:
    id: str
    input: Any
    worker: str | None = None
    taken_at: float | None = None
    progress: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    #: Progress that arrived after the result: the SDK sends each update from a thread of its
    #: own, so the last ones can overtake the result.
    late_progress: list[dict[str, Any]] = field(default_factory=list)

    @property
    def updates(self) -> list[dict[str, Any]]:
        return self.progress + self.late_progress

    @property
    def error(self) -> dict[str, Any]:
        """The SDK's error report, decoded: ``error_type``, ``error_message``, ..."""
        assert self.result is not None and "error" in self.result, self.result
        decoded: dict[str, Any] = json.loads(self.result["error"])
        return decoded


class RunpodStandin(ThreadingHTTPServer):
    """Queues jobs, hands them out, takes progress and results, delivers stop signals."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.changed = threading.Condition()
        self.jobs: dict[str, JobRecord] = {}
        self.queue: deque[str] = deque()
        self.stops: deque[str] = deque()
        self.take_polls: Counter[str] = Counter()
        self.pings: Counter[str] = Counter()
        self.refused = 0
        self._ids = itertools.count(1)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/v2/standin"

    def worker_env(self, worker_id: str) -> dict[str, str]:
        """What RunPod sets in a worker's environment, pointing here."""
        return {
            "RUNPOD_POD_ID": worker_id,
            "RUNPOD_AI_API_KEY": AI_API_KEY,
            "RUNPOD_WEBHOOK_GET_JOB": f"{self.base}/job-take/$ID?gpu=test",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{self.base}/job-done/$RUNPOD_POD_ID/$ID?gpu=test",
            "RUNPOD_WEBHOOK_PING": f"{self.base}/ping/$RUNPOD_POD_ID",
            # The SDK's start-up checks dial 8.8.8.8 and look for a GPU: neither exists here.
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
        }

    def __enter__(self) -> RunpodStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    def submit(self, job_input: Any) -> str:
        with self.changed:
            job_id = f"job-{next(self._ids)}"
            self.jobs[job_id] = JobRecord(job_id, job_input)
            self.queue.append(job_id)
            self.changed.notify_all()
        return job_id

    def cancel(self, job_id: str) -> None:
        """What RunPod does on ``POST /cancel/{id}`` for a running job: signal its worker."""
        with self.changed:
            self.stops.append(job_id)
            self.changed.notify_all()

    def wait_for(self, check: Callable[[], T | None], timeout: float = 120) -> T:
        """Wait until ``check()`` (called under the lock) answers something other than None."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while (value := check()) is None:
                left = deadline - time.monotonic()
                assert left > 0, "gave up waiting on the worker"
                self.changed.wait(left)
            return value

    def result(self, job_id: str, timeout: float = 120) -> JobRecord:
        job = self.jobs[job_id]
        self.wait_for(lambda: job.result, timeout)
        return job

    # Called by the request handler.

    def take(self, worker: str) -> JobRecord | None:
        with self.changed:
            self.take_polls[worker] += 1
            self.changed.notify_all()
            if not self.queue:
                self.changed.wait(LONG_POLL_SECONDS)
            if not self.queue:
                return None
            job = self.jobs[self.queue.popleft()]
            job.worker, job.taken_at = worker, time.monotonic()
            self.changed.notify_all()
            return job

    def stop_signals(self) -> list[str]:
        with self.changed:
            if not self.stops:
                self.changed.wait(LONG_POLL_SECONDS)
            signals = list(self.stops)
            self.stops.clear()
            return signals

    def done(self, job_id: str, body: dict[str, Any]) -> None:
        with self.changed:
            job = self.jobs[job_id]
            if body.get("status") != "IN_PROGRESS":
                assert job.result is None, f"{job_id}: a second result"
                job.result = body
            elif job.result is None:
                job.progress.append(body["output"])
            else:
                job.late_progress.append(body["output"])
            self.changed.notify_all()


class _Handler(BaseHTTPRequestHandler):
    server: RunpodStandin

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on what arrived, not on a log."""

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == AI_API_KEY:
            return True
        with self.server.changed:
            self.server.refused += 1
        self._answer(401, {"error": "unauthorised"})
        return False

    def _answer(self, code: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path).path.split("/")  # /v2/standin/<route>/<worker>
        route, worker = parts[3], parts[4]
        if route == "ping":
            with self.server.changed:
                self.server.pings[worker] += 1
            return self._answer(200, {})
        if not self._authorised():
            return None
        if route == "job-take":
            job = self.server.take(worker)
            return self._answer(204) if job is None else self._answer(200, _job_body(job))
        if route == "job-stop":
            stops = self.server.stop_signals()
            return self._answer(200, {"jobsToStop": stops}) if stops else self._answer(204)
        return self._answer(404, {"error": f"no route {route}"})

    def do_POST(self) -> None:
        parts = urlsplit(self.path).path.split("/")  # /v2/standin/job-done/<worker>/<job>
        if not self._authorised():
            return
        length = int(self.headers.get("Content-Length", 0))
        self.server.done(parts[5], json.loads(self.rfile.read(length)))
        self._answer(200, {})


def _job_body(job: JobRecord) -> dict[str, Any]:
    return {"id": job.id, "input": job.input}


@dataclass
class Worker:
    id: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(
    standin: RunpodStandin, worker_id: str, log_dir: Path, env: dict[str, str | None]
) -> Worker:
    """``python -m foldserve.cloud.runpod``, as RunPod starts the image's command.

    ``env`` adds to this process's environment; a None value removes the variable.
    """
    log = log_dir / f"{worker_id}.log"
    home = log_dir / f"{worker_id}-home"  # no ~/.runpod credentials from the machine
    home.mkdir(exist_ok=True)
    merged = {**os.environ, "HOME": str(home), **standin.worker_env(worker_id), **env}
    full_env = {name: value for name, value in merged.items() if value is not None}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "foldserve.cloud.runpod"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    return Worker(worker_id, process, log)


def wait_ready(standin: RunpodStandin, worker: Worker, timeout: float = 120) -> None:
    """Wait for the worker's first job-take poll, the sign that it is warm."""
    deadline = time.monotonic() + timeout
    while not standin.take_polls[worker.id]:
        if worker.process.poll() is not None:
            raise AssertionError(f"worker {worker.id} exited:\n{worker.output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"worker {worker.id} not ready:\n{worker.output()}")
        time.sleep(0.1)


def stop_workers(workers: list[Worker]) -> None:
    """SIGTERM, as RunPod stops a worker (the SDK shuts its loop down), to all at once."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.terminate()
    for worker in workers:
        try:
            worker.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()


@contextmanager
def running_workers(
    standin: RunpodStandin, log_dir: Path, env: dict[str, str | None], count: int = 1
) -> Iterator[list[Worker]]:
    workers = [start_worker(standin, f"worker-{i}", log_dir, env) for i in range(count)]
    try:
        yield workers
    finally:
        stop_workers(workers)
