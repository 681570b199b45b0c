"""One replica of the Ray backend: every served engine warm on one device, one job at a time.

Ray Serve starts it on a GPU node (the class becomes a deployment in
:mod:`foldserve.server.ray.deployment`); the engines load once, in the constructor. ``run``
streams one job's :mod:`~foldserve.server.ray.events`. The job itself runs in a thread, so the
replica's event loop is never blocked (Serve restarts a replica whose loop stops answering).

``run`` is an async generator, not the plain generator a thread-pooled method could be: when the
API cancels a running request, Serve cancels an async generator (``CancelledError`` at its
``await``) but leaves a plain one suspended for good, so the prediction would run on unseen.
The cancellation sets the job's stop flag; the engine checks it at every stage and recycle, so
the replica stops there and stays warm.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from foldserve.errors import Cancelled, FoldserveError, InputError
from foldserve.fold.engine import Engines
from foldserve.jobs.failures import crash_message
from foldserve.jobs.output import LinkedFile
from foldserve.jobs.run import run_fold_job
from foldserve.jobs.schema import FoldJobInput, JobProgress
from foldserve.server import layout
from foldserve.server.ray.events import Failed, Finished, Progressed, ReplicaEvent, Started
from foldserve.server.settings import ServeSettings
from foldserve.server.worker import no_room

log = logging.getLogger("foldserve.replica")

Emit = Callable[[ReplicaEvent], None]


class ReplicaCannotStart(RuntimeError):
    """The replica's engines cannot load; Serve shows the message as the deployment's status."""


class FoldReplica:
    """The engines ``settings`` names, loaded once; jobs run one at a time."""

    def __init__(self, settings: ServeSettings) -> None:
        from ray import serve

        self.settings = settings
        self.replica = serve.get_replica_context().replica_id.unique_id
        self.engines = Engines(settings.engines, settings.params_dir, precision=settings.precision)
        try:
            self.engines.load()
        except FoldserveError as exc:  # missing weights or extra: one line, last in Serve's log
            raise ReplicaCannotStart(exc.one_line()) from None
        for line in self.engines.describe():
            log.info("%s", line)
        # Held by a job until it has really ended: a cancelled job still unwinding (up to its
        # next recycle) keeps the device from the next job Serve sends.
        self._device = threading.Lock()
        self._broken: str | None = None

    def check_health(self) -> None:
        """Serve's health check: a replica that crashed on a job is replaced by a fresh one, as a
        local worker process is restarted after a crash."""
        if self._broken is not None:
            raise RuntimeError(self._broken)

    async def run(
        self, job_id: str, job_input: str, timeout_s: float
    ) -> AsyncIterator[ReplicaEvent]:
        """Run one job (its stored input JSON) for at most ``timeout_s`` once started; stream
        its events.

        The API cancels a job past its deadline itself; the replica's own limit is for a request
        whose API process died (Ray does not cancel it then): it ends within the job's execution
        timeout, and the restarted API runs the job again from its store.
        """
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[ReplicaEvent | None] = asyncio.Queue()
        stop = threading.Event()

        def emit(event: ReplicaEvent | None) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def work() -> None:
            try:
                with self._device:
                    if stop.is_set():  # cancelled while it waited for the device
                        return
                    emit(Started(replica=self.replica, node=socket.gethostname(), pid=os.getpid()))
                    deadline = time.monotonic() + timeout_s

                    def stopped() -> bool:
                        return stop.is_set() or time.monotonic() > deadline

                    end = self._fold(job_id, job_input, emit, stopped)
                    if end is not None:
                        emit(end)
            finally:
                emit(None)

        done = loop.run_in_executor(None, work)
        try:
            while (event := await events.get()) is not None:
                yield event
        finally:
            stop.set()
        await done

    def _fold(
        self, job_id: str, job_input: str, emit: Emit, stopped: Callable[[], bool]
    ) -> Finished | Failed | None:
        """The job's end: its output, or why it failed; None when it was stopped."""

        def progress(update: JobProgress) -> None:
            if stopped():
                raise Cancelled(f"before {update.stage}")
            emit(Progressed(update))

        def url_for(name: str, _path: Path) -> str:
            return layout.result_url(self.settings.endpoint_id, job_id, name)

        work_dir = Path(tempfile.mkdtemp(prefix=f"foldserve-{job_id}-"))
        try:
            output = run_fold_job(
                FoldJobInput.model_validate_json(job_input),
                self.engines,
                work_dir,
                progress=progress,
                cancel=stopped,
                inline_limit=self.settings.inline_limit,
                url_for=url_for,
                outbound=self.settings.outbound,
                limits=self.settings.msa_limits,
            )
            linked = {
                name: (work_dir / name).read_bytes()
                for name, entry in output.files.items()
                if isinstance(entry, LinkedFile)
            }
            return Finished(output=output, files=linked)
        except Cancelled:
            log.info("job %s stopped", job_id)
            return None
        except InputError as exc:
            return Failed(exc.one_line(), "input")
        except Exception as exc:
            if no_room(exc):
                return Failed(f"no room on replica {self.replica} ({exc})", "no_room")
            log.error("job %s crashed:\n%s", job_id, traceback.format_exc())
            self._broken = f"job {job_id} crashed: {exc!r}"
            return Failed(crash_message(exc, "its replica was replaced"), "crash")
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
