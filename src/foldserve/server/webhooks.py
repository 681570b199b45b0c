"""Webhook deliveries: signed, under the outbound policy, from a small pool of threads.

Each delivery has its own thread from a bounded pool, per-request timeouts and retries with
backoff, so a receiver that stalls holds one thread for a bounded time and never delays another
job's webhook. With a secret (``FOLDSERVE_WEBHOOK_SECRET``) every POST carries
``X-Foldserve-Timestamp: <unix seconds>`` and ``X-Foldserve-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``<timestamp>.<body>``: a receiver recomputes it over the raw body and refuses
old timestamps, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pydantic import SecretStr

from foldserve.errors import InputError
from foldserve.outbound import OutboundPolicy
from foldserve.remote import SourceFailed
from foldserve.retry import RetryPolicy
from foldserve.server.store import WebhookState

SIGNATURE_HEADER = "X-Foldserve-Signature"
TIMESTAMP_HEADER = "X-Foldserve-Timestamp"
#: Deliveries at once; more wait their turn, each bounded by the timeouts and retries.
DELIVERY_THREADS = 4
#: Seconds for each attempt's connect and for each read of the answer.
ATTEMPT_TIMEOUT = 5.0

log = logging.getLogger("foldserve.webhooks")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with ``secret`` of ``timestamp``, ``.`` and ``body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


class _Stopped(Exception):
    """The server is stopping: the delivery stays pending, to be sent after the restart."""


@dataclass
class WebhookSender:
    """Delivers each job's final status once, concurrently; ``done(job_id, state)`` records it."""

    outbound: OutboundPolicy
    secret: SecretStr | None
    retry: RetryPolicy
    done: Callable[[str, WebhookState], None]
    stopping: threading.Event
    clock: Callable[[], float] = time.time
    timeout: float = ATTEMPT_TIMEOUT
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="webhook")
    )
    _in_flight: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, job_id: str, url: str, body: object) -> None:
        """Queue a delivery, unless one for ``job_id`` is already under way."""
        with self._lock:
            if job_id in self._in_flight:
                return
            self._in_flight.add(job_id)
        self._executor.submit(self._deliver, job_id, url, json.dumps(body).encode())

    def close(self) -> None:
        """Drop deliveries not yet started; those under way end at their next attempt."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _deliver(self, job_id: str, url: str, body: bytes) -> None:
        try:
            state = self._outcome(job_id, url, body)
            if state is not None:
                self.done(job_id, state)
        except Exception:  # a thread of the pool has no one else to report to
            log.exception("webhook for %s: could not record the outcome", job_id)
        finally:
            # Only after the outcome is recorded, or the next poll would send it again.
            with self._lock:
                self._in_flight.discard(job_id)

    def _outcome(self, job_id: str, url: str, body: bytes) -> WebhookState | None:
        """SENT or FAILED; None when the server stopped first."""
        try:
            self.retry.retrying(SourceFailed)(self._attempt, url, body)
        except _Stopped:
            return None
        except (InputError, SourceFailed) as exc:
            log.warning("webhook for %s not delivered: %s", job_id, exc)
            return WebhookState.FAILED
        return WebhookState.SENT

    def _attempt(self, url: str, body: bytes) -> None:
        if self.stopping.is_set():
            raise _Stopped
        headers = {"Content-Type": "application/json"}
        if self.secret is not None:
            timestamp = str(int(self.clock()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = signature(self.secret.get_secret_value(), timestamp, body)
        self.outbound.post(url, body, headers, where="webhook", timeout=self.timeout)
