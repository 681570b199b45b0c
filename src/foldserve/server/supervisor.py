"""The supervisor of the self-hosted endpoint: one loop over the store, whatever runs the jobs.

Its thread enforces execution timeouts and ttls, deletes results past their retention and
lets the backend (:class:`foldserve.server.pool.WorkerPool`: worker processes here, or
:class:`foldserve.server.ray.backend.RayBackend`: replicas on a Ray cluster) watch what it
runs; a second thread hands webhooks to :mod:`foldserve.server.webhooks`, so a slow receiver
never delays a timeout.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from typing import Protocol

from foldserve.errors import StoreUnavailable
from foldserve.retry import RetryPolicy
from foldserve.server import layout
from foldserve.server.settings import ServeSettings
from foldserve.server.status import status_body
from foldserve.server.store import JobStore
from foldserve.server.webhooks import WebhookSender

TICK_SECONDS = 0.25
EXPIRE_EVERY_SECONDS = 60.0

log = logging.getLogger("foldserve.supervisor")


class Backend(Protocol):
    """What runs the jobs of the store."""

    def start(self) -> None:
        """Begin taking jobs from the store."""

    def tick(self, now: float) -> None:
        """One round of watching: a death, a job that was stopped but still runs."""

    def stop(self, timeout: float) -> None:
        """Stop within ``timeout`` seconds; running jobs go back to the queue, retry unspent."""

    def describe(self) -> str:
        """What runs the jobs, in a few words, for the start-up line."""


class Supervisor:
    """Deadlines, expiry and webhooks over ``store``; ``backend`` runs the jobs."""

    def __init__(self, store: JobStore, settings: ServeSettings, backend: Backend) -> None:
        self.store = store
        self.settings = settings
        self.backend = backend
        self._stopping = threading.Event()
        self._webhooks = WebhookSender(
            outbound=settings.outbound,
            secret=settings.webhook_secret,
            # Waits between attempts end early when the server stops.
            retry=RetryPolicy(max_retries=2, first_s=1.0, max_s=10.0, sleep=self._pause),
            done=store.set_webhook_state,
            stopping=self._stopping,
        )
        self._threads = [
            threading.Thread(target=self._loop, args=(self._tick,), name="supervisor"),
            threading.Thread(target=self._loop, args=(self._send_webhooks,), name="webhooks"),
        ]
        self._last_expiry = 0.0
        # Check often enough that results never outlive their retention by more than a quarter.
        self._expire_every = min(EXPIRE_EVERY_SECONDS, settings.retention_s / 4)

    def _pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def start(self) -> None:
        self.backend.start()
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=timeout + 5)
        self._webhooks.close()
        self.backend.stop(timeout)

    def _loop(self, step: Callable[[], None]) -> None:
        while not self._stopping.is_set():
            try:
                step()
            except StoreUnavailable:  # a full disk: the store logs it, once per interval
                pass
            except Exception:  # the supervisor must outlive any one bad tick
                log.exception("%s failed", step.__name__)
            self._stopping.wait(TICK_SECONDS)

    def _tick(self) -> None:
        now = time.time()
        self.store.enforce_deadlines(now)
        self.backend.tick(now)
        if now - self._last_expiry > self._expire_every:
            self._last_expiry = now
            for job_id in self.store.expire(now - self.settings.retention_s):
                shutil.rmtree(
                    layout.results_dir(self.settings.data_dir, job_id), ignore_errors=True
                )

    def _send_webhooks(self) -> None:
        for job in self.store.webhooks_due():
            assert job.webhook is not None
            self._webhooks.send(job.id, job.webhook, status_body(job, self.settings.public_url))
