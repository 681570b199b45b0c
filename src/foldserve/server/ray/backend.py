"""The Ray backend in the API process: jobs from the store to Serve replicas, and back.

The store stays the source of truth. Each of ``max_replicas`` dispatch threads takes the oldest
queued job no other thread holds, calls the deployment with a streaming response and blocks on
it: the replica's first event claims the job (IN_PROGRESS, with a fresh run token), progress
events feed ``/status`` and ``/stream``, the last event is the output (linked files are written
into the results folder here) or the failure. As many requests as replicas may run are in
flight, queued ones included, so Serve's autoscaler sees the demand and no more.

Failures are the store's to handle, because Serve does not retry a request whose replica died:
a dead replica's job is retried once and then failed with the reason, as a dead worker process's
is. A job cancelled or timed out has its request cancelled (the replica stops at its next
recycle and stays warm); so has a queued job cancelled or expired while it waited for a replica.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from foldserve.files import write_bytes
from foldserve.jobs.failures import first_line
from foldserve.jobs.schema import JobStatus
from foldserve.server import layout
from foldserve.server.ray.deployment import connect, deploy, deployment_problem, serve_app
from foldserve.server.ray.events import Failed, Finished, Progressed, ReplicaEvent, Started
from foldserve.server.settings import ServeSettings
from foldserve.server.store import SERVER_STOPPED, Job, JobStore, WorkerState

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

#: How long an idle dispatch thread waits before it looks at the queue again.
POLL_SECONDS = 0.2
#: How often the replicas' health is read from Serve.
HEALTH_EVERY_S = 10.0

log = logging.getLogger("foldserve.ray")


@dataclass
class _Dispatch:
    """One dispatch thread's request in flight, as the supervisor's tick sees it."""

    name: str
    job_id: str | None = None
    claimed: Job | None = None
    response: DeploymentResponseGenerator[Any] | None = field(default=None, repr=False)
    cancelled: bool = False


class RayBackend:
    """Jobs of ``store`` run on the Serve deployment ``settings`` describe."""

    def __init__(self, store: JobStore, settings: ServeSettings) -> None:
        self.store = store
        self.settings = settings
        self.address = settings.ray_address or "a local cluster"
        self._dispatches = [_Dispatch(f"ray-{i}") for i in range(settings.max_replicas)]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._handle: DeploymentHandle[Any] | None = None
        self._log_handlers: list[logging.Handler] = []
        self._where = serve_app(settings)
        self._next_health_check = 0.0
        self._problem: str | None = None

    def describe(self) -> str:
        gpus = f"{self.settings.gpus_per_replica:g} GPU"
        bounds = f"{self.settings.min_replicas}-{self.settings.max_replicas}"
        return f"Ray {self.address} · {bounds} replica(s) of {gpus}"

    def start(self) -> None:
        self._log_handlers = _attach_log(self.settings)
        try:
            self.address = connect(self.settings.ray_address)
            self._handle = deploy(self.settings)
        except BaseException:
            _detach_log(self._log_handlers)
            raise
        for dispatch in self._dispatches:
            self.store.register_worker(dispatch.name, os.getpid(), WorkerState.IDLE)
            thread = threading.Thread(
                target=self._serve, args=(dispatch,), name=dispatch.name, daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float) -> None:
        """Cancel every request; jobs that had started go back to the queue, retry unspent.
        The deployment stays: a restarted API process finds its replicas warm."""
        self._stopping.set()
        with self._lock:
            for dispatch in self._dispatches:
                if dispatch.response is not None:
                    _cancel(dispatch.response)
        for thread in self._threads:
            thread.join(timeout=timeout)
        for dispatch in self._dispatches:
            self.store.release(dispatch.name, SERVER_STOPPED, count_attempt=False)
        _detach_log(self._log_handlers)

    def tick(self, now: float) -> None:
        """Cancel the request of a job that was stopped (cancelled, timed out, expired) while
        it waited for a replica or ran on one; say when replicas cannot start."""
        if now >= self._next_health_check:
            self._next_health_check = now + HEALTH_EVERY_S
            self._watch_health()
        with self._lock:
            for dispatch in self._dispatches:
                if dispatch.response is None or dispatch.cancelled or dispatch.job_id is None:
                    continue
                if dispatch.claimed is None:
                    job = self.store.get(dispatch.job_id)
                    stopped = job is None or job.status != JobStatus.IN_QUEUE
                else:
                    stopped = (
                        self.store.stopped_while_running(dispatch.name, dispatch.job_id) is not None
                    )
                if stopped:
                    log.info("job %s was stopped: cancelling its request", dispatch.job_id)
                    _cancel(dispatch.response)
                    dispatch.cancelled = True

    def _watch_health(self) -> None:
        """Log, once per change, why replicas cannot start (missing weights, say): jobs wait in
        the queue meanwhile, as they do for a local worker that cannot load its engines."""
        problem = deployment_problem(self._where)
        if problem != self._problem:
            if problem is not None:
                log.error("replicas cannot start, jobs wait in the queue: %s", problem)
            elif self._problem is not None:
                log.warning("replicas start again")
            self._problem = problem

    # -- one dispatch thread ---------------------------------------------------------------

    def _serve(self, dispatch: _Dispatch) -> None:
        while not self._stopping.is_set():
            job = self._take(dispatch)
            if job is None:
                self._stopping.wait(POLL_SECONDS)
                continue
            try:
                self._run(dispatch, job)
            except Exception:  # the thread must outlive any one job
                log.exception("dispatching job %s failed", job.id)
            finally:
                with self._lock:
                    dispatch.job_id = dispatch.claimed = dispatch.response = None
                    dispatch.cancelled = False
                self.store.set_worker_state(dispatch.name, WorkerState.IDLE)

    def _take(self, dispatch: _Dispatch) -> Job | None:
        """The oldest queued job no other dispatch holds, now held by ``dispatch``."""
        with self._lock:
            held = [d.job_id for d in self._dispatches if d.job_id is not None]
            job = self.store.next_queued(held)
            if job is not None:
                dispatch.job_id = job.id
        return job

    def _run(self, dispatch: _Dispatch, job: Job) -> None:
        from ray.exceptions import ActorUnavailableError, RayActorError
        from ray.serve.exceptions import RequestCancelledError

        assert self._handle is not None
        response = cast(
            "DeploymentResponseGenerator[Any]",
            self._handle.options(stream=True).run.remote(
                job.id, job.input_json, job.execution_timeout_ms / 1000 + self.settings.stop_grace
            ),
        )
        with self._lock:
            dispatch.response = response
        self.store.set_worker_state(dispatch.name, WorkerState.STARTING)
        try:
            for event in response:
                if not self._on_event(dispatch, job.id, event):
                    _cancel(response)
                    break
        except RequestCancelledError:
            pass
        except (RayActorError, ActorUnavailableError) as exc:
            self._replica_lost(dispatch, job.id, first_line(exc))
            return
        claimed = dispatch.claimed
        if claimed is not None:
            # Cancelled or timed out: the store has its final state and this frees the worker.
            # A job the store still has running (the server is stopping, or its request ended
            # without a last event) goes back to the queue, this attempt not counted.
            self.store.give_back(claimed)

    def _on_event(self, dispatch: _Dispatch, job_id: str, event: ReplicaEvent) -> bool:
        """Record ``event``; False when the request must be cancelled."""
        if isinstance(event, Started):
            # While it runs the job, the dispatch's worker row names the replica's process.
            self.store.register_worker(dispatch.name, event.pid, WorkerState.STARTING)
            # Claimed under the lock: a tick in between would see the job IN_PROGRESS and not
            # yet claimed here, take it for cancelled, and cancel its request.
            with self._lock:
                claimed = dispatch.claimed = self.store.claim(dispatch.name, job_id)
            if claimed is None:  # cancelled or expired while it waited for a replica
                return False
            log.info("job %s started on replica %s (%s)", job_id, event.replica, event.node)
            return True
        claimed = dispatch.claimed
        if claimed is None:
            return False
        if isinstance(event, Progressed):
            return self.store.report(claimed, event.progress) is None
        with self._lock:
            dispatch.claimed = None  # the job ends here, whatever the store says
        if isinstance(event, Finished):
            results = layout.results_dir(self.settings.data_dir, job_id)
            for name, data in event.files.items():
                write_bytes(results / name, data)
            self.store.finish(claimed, JobStatus.COMPLETED, output=event.output)
            log.info("job %s completed", job_id)
        elif isinstance(event, Failed):
            if event.cause == "no_room":
                log.warning("job %s back in the queue: %s", job_id, event.error)
                self.store.give_back(claimed)
            else:
                self.store.finish(claimed, JobStatus.FAILED, error=event.error)
                log.info("job %s failed: %s", job_id, event.error)
        return True

    def _replica_lost(self, dispatch: _Dispatch, job_id: str, detail: str) -> None:
        """The replica died under the job: run it once more, or fail it (a job still waiting
        for a replica stays queued)."""
        if dispatch.claimed is None:
            return
        log.warning("job %s lost its replica: %s", job_id, detail)
        self.store.requeue_or_fail(job_id, f"its Ray replica died ({detail})")


def _attach_log(settings: ServeSettings) -> list[logging.Handler]:
    """The backend's log (jobs sent, started, ended; replicas lost), where the local backend
    keeps its workers' logs, and its problems on the terminal as well (a handler of its own
    keeps Python's last-resort handler from printing them). The replicas log on their own
    nodes, in Ray's log folder."""
    path = layout.log_file(settings.data_dir, "ray")
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    to_terminal = logging.StreamHandler()
    to_terminal.setLevel(logging.WARNING)
    to_terminal.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.setLevel(logging.INFO)
    for handler in (to_file, to_terminal):
        log.addHandler(handler)
    return [to_file, to_terminal]


def _detach_log(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        log.removeHandler(handler)
        handler.close()


def _cancel(response: DeploymentResponseGenerator[Any]) -> None:
    """Cancel a request, waiting or running (the replica stops at its next recycle)."""
    response.cancel()  # type: ignore[no-untyped-call]
