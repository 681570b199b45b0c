"""Webhook deliveries: concurrent, bounded, retried, signed, and under the outbound policy.

Receivers are loopback servers allowed by prefix; every wait is on an event with a deadline.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from foldserve.outbound import OutboundPolicy
from foldserve.retry import RetryPolicy
from foldserve.server.store import WebhookState
from foldserve.server.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSender,
    signature,
)

SECRET = "s3cret-for-tests"
NOW = 1_700_000_000


@dataclass
class Receiver:
    """A loopback server: ``/stall`` answers once ``release`` is set, ``/busy`` answers 503
    until ``busy_left`` runs out, anything else 200 at once."""

    release: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    arrived: threading.Event = field(default_factory=threading.Event)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    busy_left: int = 2
    base: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((self.path, dict(self.headers), body))
            code = 200
            if self.path == "/stall":
                state.stalled.release()
                state.release.wait(30)
            elif self.path == "/busy" and state.busy_left > 0:
                state.busy_left -= 1
                code = 503
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if self.path == "/fast":
                state.arrived.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


@dataclass
class Outcomes:
    """The ``done`` callback: each job's recorded state, waitable."""

    states: dict[str, WebhookState] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, job_id: str, state: WebhookState) -> None:
        with self.changed:
            self.states[job_id] = state
            self.changed.notify_all()

    def wait(self, *job_ids: str, timeout: float = 20) -> dict[str, WebhookState]:
        with self.changed:
            assert self.changed.wait_for(lambda: all(j in self.states for j in job_ids), timeout)
            return {j: self.states[j] for j in job_ids}


def sender(
    receiver: Receiver, outcomes: Outcomes, *, secret: str | None = SECRET, **retry: object
) -> WebhookSender:
    return WebhookSender(
        outbound=OutboundPolicy(allow_http=True, allow_prefixes=(f"{receiver.base}/",)),
        secret=SecretStr(secret) if secret is not None else None,
        retry=RetryPolicy(**{"max_retries": 2, "first_s": 0.0, "max_s": 0.0, **retry}),  # type: ignore[arg-type]
        done=outcomes,
        stopping=threading.Event(),
        clock=lambda: NOW,
        timeout=30.0,
    )


@pytest.mark.timeout(60)
def test_stalled_receivers_do_not_delay_another_jobs_webhook(receiver: Receiver) -> None:
    outcomes = Outcomes()
    webhooks = sender(receiver, outcomes)
    try:
        webhooks.send("job-a", f"{receiver.base}/stall", {"id": "job-a"})
        webhooks.send("job-b", f"{receiver.base}/stall", {"id": "job-b"})
        for _ in range(2):
            assert receiver.stalled.acquire(timeout=10), "a stalling delivery never started"
        # A job already under way is not sent twice.
        webhooks.send("job-a", f"{receiver.base}/stall", {"id": "job-a"})
        webhooks.send("job-c", f"{receiver.base}/fast", {"id": "job-c"})
        assert receiver.arrived.wait(5), "job-c's webhook waited for the stalled receivers"
        assert outcomes.wait("job-c") == {"job-c": WebhookState.SENT}
        assert not receiver.release.is_set() and "job-a" not in outcomes.states
        receiver.release.set()
        assert outcomes.wait("job-a", "job-b") == {
            "job-a": WebhookState.SENT,
            "job-b": WebhookState.SENT,
        }
        assert [path for path, _, _ in receiver.requests].count("/stall") == 2
    finally:
        receiver.release.set()
        webhooks.close()


@pytest.mark.timeout(30)
def test_each_post_is_signed_over_timestamp_and_body(receiver: Receiver) -> None:
    outcomes = Outcomes()
    webhooks = sender(receiver, outcomes)
    webhooks.send("job-s", f"{receiver.base}/fast", {"id": "job-s", "status": "COMPLETED"})
    assert outcomes.wait("job-s") == {"job-s": WebhookState.SENT}
    webhooks.close()
    _, headers, body = receiver.requests[0]
    assert headers[TIMESTAMP_HEADER] == str(NOW)
    # What a receiver does: recompute over "<timestamp>.<raw body>" and compare in constant time.
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], f"sha256={expected}")
    assert signature(SECRET, str(NOW + 1), body) != headers[SIGNATURE_HEADER]  # no replay
    assert signature(SECRET, str(NOW), body + b" ") != headers[SIGNATURE_HEADER]


@pytest.mark.timeout(30)
def test_without_a_secret_no_signature_is_sent(receiver: Receiver) -> None:
    outcomes = Outcomes()
    webhooks = sender(receiver, outcomes, secret=None)
    webhooks.send("job-u", f"{receiver.base}/fast", {"id": "job-u"})
    assert outcomes.wait("job-u") == {"job-u": WebhookState.SENT}
    webhooks.close()
    _, headers, _ = receiver.requests[0]
    assert SIGNATURE_HEADER not in headers and TIMESTAMP_HEADER not in headers


@pytest.mark.timeout(30)
def test_failures_are_retried_with_backoff(receiver: Receiver) -> None:
    outcomes = Outcomes()
    waits: list[float] = []
    webhooks = sender(
        receiver, outcomes, first_s=1.0, max_s=4.0, sleep=waits.append, jitter=lambda a, b: b
    )
    webhooks.send("job-r", f"{receiver.base}/busy", {"id": "job-r"})
    assert outcomes.wait("job-r") == {"job-r": WebhookState.SENT}
    webhooks.close()
    assert len(receiver.requests) == 3 and waits == [1.0, 2.0]


@pytest.mark.timeout(30)
def test_a_refused_address_fails_without_a_connection(receiver: Receiver) -> None:
    outcomes = Outcomes()
    webhooks = sender(receiver, outcomes)
    webhooks.send("job-m", "http://169.254.169.254/latest/meta-data/", {"id": "job-m"})
    webhooks.send("job-l", "http://localhost:1/hook", {"id": "job-l"})
    assert outcomes.wait("job-m", "job-l") == {
        "job-m": WebhookState.FAILED,
        "job-l": WebhookState.FAILED,
    }
    webhooks.close()
    assert receiver.requests == []
