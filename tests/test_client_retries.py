"""The client against a real HTTP server on 127.0.0.1 that misbehaves on purpose.

The server answers each route from a script (503, 429 with Retry-After, a dropped connection,
then success), and records what it received, so the tests can check what a user relies on: a
transient failure is retried, a job is never submitted twice, a damaged file is caught, and the
API key goes nowhere but the endpoint itself. The client sleeps on a :class:`FakeTime`, which
records each wait and moves its clock by it: the tests check the waits asked for, in no time.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from foldserve.cli import exit_code_for
from foldserve.client.client import POLL_FIRST_S, POLL_MAX_S, WAIT_OUTAGE_S, Client, save_best_model
from foldserve.client.request import build_request
from foldserve.client.transport import FIRST_CONNECT_S, RetryNotice
from foldserve.errors import (
    IntegrityError,
    JobFailed,
    JobNotFound,
    KeyRefused,
    MsaError,
    Refused,
    RemoteError,
    Unavailable,
    WaitTimedOut,
)
from foldserve.jobs.schema import JobOutput, JobProgress, JobStatus
from foldserve.msa.reading import read
from foldserve.retry import RetryPolicy
from tests.cli_runner import Ran
from tests.cli_runner import foldserve as run_cli
from tests.conftest import data
from tests.fake_time import FakeTime

KEY = "test-key-d41d8cd98f00b204"
SMALL_MSA = "msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m"
PDB = "ATOM      1  CA  MET A   1      11.104   6.134  -6.504  1.00 91.20           C\nEND\n"

Action = Callable[[BaseHTTPRequestHandler], int]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    authorization: str | None
    body: bytes


def reply(code: int, body: Any = None, headers: dict[str, str] | None = None) -> Action:
    payload = body if isinstance(body, bytes) else json.dumps(body or {}).encode()

    def act(handler: BaseHTTPRequestHandler) -> int:
        handler.send_response(code)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
        return code

    return act


def drop() -> Action:
    """Close the connection without an answer, as a crashing proxy or server would."""

    def act(handler: BaseHTTPRequestHandler) -> int:
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)
        return 0

    return act


class FakeEndpoint:
    """A scripted HTTP server: each route answers its actions in order, the last one repeats."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.answered: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.scripts: dict[tuple[str, str], list[Action]] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def do_GET(self) -> None:
                fake.handle(self)

            def do_POST(self) -> None:
                fake.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def base(self) -> str:
        return f"{self.origin}/v2/test"

    def on(self, method: str, route: str, *actions: Action) -> None:
        path = route if route.startswith("/files/") else f"/v2/test/{route}"
        self.scripts[(method, path)] = list(actions)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        key = (handler.command, handler.path.split("?")[0])
        with self.lock:
            self.seen.append(Seen(*key, handler.headers.get("Authorization"), body))
            script = self.scripts.get(key, [reply(404, {"error": "no such route"})])
            action = script.pop(0) if len(script) > 1 else script[0]
        send_response = handler.send_response

        def send_and_record(code: int, message: str | None = None) -> None:
            # Recorded before the answer is written, so a client that has read it finds it here.
            with self.lock:
                self.answered[key].append(code)
            send_response(code, message)

        handler.send_response = send_and_record  # type: ignore[method-assign]
        try:
            dropped = action(handler) == 0
        finally:  # one handler serves every request of a kept-alive connection
            handler.send_response = send_response  # type: ignore[method-assign]
        if dropped:
            with self.lock:
                self.answered[key].append(0)

    def requests(self, method: str, route: str) -> list[Seen]:
        path = route if route.startswith("/files/") else f"/v2/test/{route}"
        return [seen for seen in self.seen if (seen.method, seen.path) == (method, path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def backoff_range(retry: int) -> tuple[float, float]:
    """The bounds of the default policy's wait before retry ``retry`` (jitter: half to full)."""
    full = min(15.0, 0.5 * 2**retry)
    return full / 2, full


def within(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("RUNPOD_API_KEY", "FOLDSERVE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FOLDSERVE_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("FOLDSERVE_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    fake = FakeEndpoint()
    yield fake
    fake.close()


@pytest.fixture
def bucket() -> Iterator[FakeEndpoint]:
    """A second server, another origin: where presigned result URLs would point."""
    fake = FakeEndpoint()
    yield fake
    fake.close()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def client(endpoint: FakeEndpoint, fake_time: FakeTime) -> Iterator[Client]:
    with Client(url=endpoint.base, api_key=KEY, timeout=5.0, retry=fake_time.policy(3)) as made:
        yield made


def status(state: str, **extra: Any) -> Action:
    return reply(200, {"id": "job-1", "status": state, **extra})


def queued() -> dict[str, Any]:
    return {"id": "job-1", "status": "IN_QUEUE"}


def sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def output_with(files: dict[str, Any]) -> dict[str, Any]:
    """A job output's JSON, as an endpoint sends it, with these ``files``."""
    ranking = [
        {"rank": 0, "model": "model_3_ptm", "seed": 0, "mean_plddt": 91.2, "ptm": 0.83,
         "max_pae": 12.5, "recycles": 3}
    ]  # fmt: skip
    return {
        "foldserve_version": "0.1.0", "engine": "alphafold2_ptm", "test_weights": False,
        "query": {"name": "query", "length": 1, "sequence": "M"},
        "msa": {"depth": 1, "used": 1}, "ranking": ranking, "files": files,
        "timings": {"predict": 1.0, "total": 1.5},
    }  # fmt: skip


# --- retries ---------------------------------------------------------------------------------


def test_status_retries_503_then_succeeds(
    endpoint: FakeEndpoint, client: Client, fake_time: FakeTime
) -> None:
    endpoint.on(
        "GET",
        "status/job-1",
        reply(503, {"error": "busy"}),
        reply(502, b"<html>bad gateway</html>"),
        status("IN_PROGRESS", output={"stage": "predict", "model": "model_1_ptm"}),
    )
    state = client.status("job-1")
    assert state.status is JobStatus.IN_PROGRESS
    assert state.progress == JobProgress(stage="predict", model="model_1_ptm")
    assert endpoint.answered[("GET", "/v2/test/status/job-1")] == [503, 502, 200]
    assert len(fake_time.sleeps) == 2  # an exponential backoff before each retry
    assert all(within(s, backoff_range(n)) for n, s in enumerate(fake_time.sleeps))


def test_429_waits_as_long_as_retry_after_says(
    endpoint: FakeEndpoint, client: Client, fake_time: FakeTime
) -> None:
    endpoint.on(
        "GET",
        "status/job-1",
        reply(429, {"error": "slow down"}, {"Retry-After": "1"}),
        status("IN_QUEUE"),
    )
    started = fake_time.clock()
    assert client.status("job-1").status is JobStatus.IN_QUEUE
    assert fake_time.clock() - started >= 1.0
    assert fake_time.sleeps == [1.0]  # the server's wait, not the backoff's
    assert len(endpoint.requests("GET", "status/job-1")) == 2


def test_retry_after_is_capped(endpoint: FakeEndpoint, client: Client, fake_time: FakeTime) -> None:
    endpoint.on(
        "GET",
        "status/job-1",
        reply(503, {"error": "maintenance"}, {"Retry-After": "86400"}),
        status("IN_QUEUE"),
    )
    assert client.status("job-1").status is JobStatus.IN_QUEUE
    assert fake_time.sleeps == [300.0]


def test_status_survives_a_dropped_connection(endpoint: FakeEndpoint, client: Client) -> None:
    endpoint.on("GET", "status/job-1", drop(), status("COMPLETED", output=output_with({})))
    assert client.status("job-1").status is JobStatus.COMPLETED
    assert len(endpoint.requests("GET", "status/job-1")) == 2


def test_stream_and_cancel_are_retried(endpoint: FakeEndpoint, client: Client) -> None:
    events = [{"output": {"stage": "parse"}}, {"output": {"stage": "predict", "recycle": 0}}]
    endpoint.on(
        "GET", "stream/job-1", drop(), reply(200, {"status": "IN_PROGRESS", "stream": events})
    )
    endpoint.on("POST", "cancel/job-1", reply(503, {}), status("CANCELLED"))
    events = [event.to_wire() for event in client.stream("job-1")]
    assert events == [{"stage": "parse"}, {"stage": "predict", "recycle": 0}]
    assert client.cancel("job-1") is JobStatus.CANCELLED
    assert endpoint.answered[("POST", "/v2/test/cancel/job-1")] == [503, 200]


def test_gives_up_after_max_retries_with_one_line(
    endpoint: FakeEndpoint, client: Client, fake_time: FakeTime
) -> None:
    endpoint.on("GET", "status/job-1", reply(500, {"error": "database is locked"}))
    with pytest.raises(Unavailable) as caught:
        client.status("job-1")
    assert len(endpoint.requests("GET", "status/job-1")) == 4  # 1 + max_retries
    assert len(fake_time.sleeps) == 3  # none after the last attempt
    assert all(within(s, backoff_range(n)) for n, s in enumerate(fake_time.sleeps))
    message = caught.value.one_line()
    assert "database is locked" in message and "4 attempts" in message
    assert "\n" not in message


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: bound, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_nothing_listening_is_retried_then_reported(fake_time: FakeTime) -> None:
    port = closed_port()
    with (
        Client(url=f"http://127.0.0.1:{port}", retry=fake_time.policy(2)) as client,
        pytest.raises(Unavailable, match="connection refused") as caught,
    ):
        client.status("job-1")
    assert "3 attempts" in caught.value.one_line()
    assert len(fake_time.sleeps) == 2
    assert exit_code_for(caught.value) == 1


@pytest.mark.timeout(30)
def test_a_host_that_never_answered_gets_the_first_connection_budget(fake_time: FakeTime) -> None:
    """Nothing has ever answered there (a wrong URL, a server not started): the retries stop
    once their waits would pass FIRST_CONNECT_S, not after the whole policy, and whoever
    made the client hears at the first retry."""
    port = closed_port()
    notices: list[RetryNotice] = []
    policy = fake_time.policy(6)
    with (
        Client(url=f"http://127.0.0.1:{port}", retry=policy, on_retry=notices.append) as client,
        pytest.raises(Unavailable) as caught,
    ):
        client.status("job-1")
    assert len(fake_time.sleeps) == 3 < policy.max_retries
    assert sum(fake_time.sleeps) <= FIRST_CONNECT_S
    problem = f"cannot reach http://127.0.0.1:{port} (connection refused)"
    assert notices == [RetryNotice(problem, within_s=0.5 + 1.0 + 2.0)]
    message = caught.value.one_line()
    assert message.startswith(f"{problem}; gave up after 4 attempts")
    assert "nothing has answered there yet" in message and "\n" not in message


@pytest.mark.timeout(30)
def test_a_host_that_answered_before_gets_the_whole_policy(
    endpoint: FakeEndpoint, fake_time: FakeTime
) -> None:
    """A drop in the middle of a job: the server answered, then went away."""
    answer = reply(200, {"id": "job-1", "status": "IN_PROGRESS"}, {"Connection": "close"})
    endpoint.on("GET", "status/job-1", answer)
    notices: list[RetryNotice] = []
    with Client(url=endpoint.base, retry=fake_time.policy(6), on_retry=notices.append) as client:
        assert client.status("job-1").status is JobStatus.IN_PROGRESS
        endpoint.close()
        with pytest.raises(Unavailable, match=r"connection refused\); gave up after 7 attempts"):
            client.status("job-1")
    assert len(fake_time.sleeps) == 6
    assert [notice.within_s for notice in notices] == [0.5 + 1 + 2 + 4 + 8 + 15]


@pytest.mark.timeout(30)
def test_wait_reports_a_host_that_never_answered_without_polling_on(fake_time: FakeTime) -> None:
    """Riding out an outage is for an endpoint that answered: one that never did is reported
    after the first connection's retries, not polled for WAIT_OUTAGE_S."""
    with (
        Client(url=f"http://127.0.0.1:{closed_port()}", retry=fake_time.policy(6)) as client,
        pytest.raises(Unavailable, match="connection refused"),
    ):
        client.wait("job-1")
    assert len(fake_time.sleeps) == 3


@pytest.mark.timeout(60)
def test_status_with_nothing_listening_says_it_retries_then_one_error(tmp_path: Path) -> None:
    """The command line, with its real policy: the retrying is announced at once, and the
    first connection gives up after the short budget (counted in attempts, not timed)."""
    port = closed_port()
    result = foldserve(tmp_path, "status", "job-1", "--url", f"http://127.0.0.1:{port}")
    assert result.exit_code == 1
    notice, error = result.stderr.strip().splitlines()
    problem = f"cannot reach http://127.0.0.1:{port} (connection refused)"
    assert notice == f"{problem}; retrying for up to 3.5 s …"
    assert error.startswith(f"error: {problem}; gave up after 4 attempts")
    assert result.stdout == ""


# --- submission: never twice -------------------------------------------------------------------


def test_submit_retries_503_and_429_and_creates_one_job(
    endpoint: FakeEndpoint, client: Client, fake_time: FakeTime
) -> None:
    endpoint.on(
        "POST",
        "run",
        reply(503, {"error": "starting"}),
        reply(429, {"error": "queue full"}, {"Retry-After": "0"}),
        reply(200, queued()),
    )
    assert client.submit(data(SMALL_MSA)) == "job-1"
    assert endpoint.answered[("POST", "/v2/test/run")] == [503, 429, 200]
    backoff, retry_after = fake_time.sleeps
    assert within(backoff, backoff_range(0)) and retry_after == 0.0


@pytest.mark.parametrize(
    "failure",
    [drop(), reply(500, {"error": "oops"}), reply(504, b"gateway timeout")],
    ids=["dropped", "500", "504"],
)
def test_submit_is_not_repeated_when_it_may_have_arrived(
    endpoint: FakeEndpoint, client: Client, fake_time: FakeTime, failure: Action
) -> None:
    endpoint.on("POST", "run", failure, reply(200, queued()))
    with pytest.raises(Unavailable):
        client.submit(data(SMALL_MSA))
    assert len(endpoint.requests("POST", "run")) == 1
    assert fake_time.sleeps == []


def test_submit_read_timeout_is_not_repeated(endpoint: FakeEndpoint, fake_time: FakeTime) -> None:
    answered = threading.Event()

    def slow(handler: BaseHTTPRequestHandler) -> int:
        answered.wait(timeout=30)  # past the client's read timeout: it must give up first
        try:
            return reply(200, queued())(handler)
        except (BrokenPipeError, ConnectionResetError):  # the client has gone, as it should
            return 0

    endpoint.on("POST", "run", slow)
    try:
        with (
            Client(
                url=endpoint.base, api_key=KEY, timeout=0.3, retry=fake_time.policy(3)
            ) as client,
            pytest.raises(Unavailable, match="not resent"),
        ):
            client.submit(data(SMALL_MSA))
    finally:
        answered.set()
    assert len(endpoint.requests("POST", "run")) == 1
    assert fake_time.sleeps == []


def test_what_is_uploaded(endpoint: FakeEndpoint, client: Client) -> None:
    endpoint.on("POST", "run", reply(200, queued()))
    client.submit(data(SMALL_MSA), execution_timeout_s=7200)
    (seen,) = endpoint.requests("POST", "run")
    assert seen.authorization == f"Bearer {KEY}"
    body = json.loads(seen.body)
    assert body["policy"] == {"executionTimeout": 7_200_000}
    sent = gzip.decompress(base64.b64decode(body["input"]["msa_gz_b64"])).decode()
    original = read(data(SMALL_MSA))
    assert sent.splitlines()[1] == original.query_sequence
    assert sent.count(">") == len(original)


def test_a_bad_msa_is_never_uploaded(
    endpoint: FakeEndpoint, client: Client, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.a3m"
    bad.write_text(">query\nMKV\n>hit\nMK\n")
    with pytest.raises(MsaError) as caught:
        client.submit(bad)
    assert caught.value.where == f"{bad}:3"  # the record of the short row
    assert endpoint.seen == []


def test_an_msa_too_large_for_the_request_is_reduced(
    endpoint: FakeEndpoint, client: Client
) -> None:
    path = data("msa/fasta_aligned/pfam_PF02518_HATPase_c_seed_hmmalign_no_inserts.fasta")
    full = build_request(path)
    limit = len(full.content) // 2
    request = build_request(path, limit=limit)
    assert len(request.content) <= limit
    assert 1 < len(request.msa) < len(full.msa)
    assert request.msa.query_sequence == full.msa.query_sequence
    assert any(f"of {len(full.msa)} rows" in warning for warning in request.warnings)
    endpoint.on("POST", "run", reply(200, queued()))
    client.submit_request(request)
    assert endpoint.requests("POST", "run")[0].body == request.content


# --- answers the user must understand ----------------------------------------------------------


def test_401_is_an_auth_error_that_does_not_show_the_key(
    endpoint: FakeEndpoint, client: Client
) -> None:
    endpoint.on("GET", "status/job-1", reply(401, {"error": "missing or wrong API key"}))
    with pytest.raises(KeyRefused) as caught:
        client.status("job-1")
    assert len(endpoint.requests("GET", "status/job-1")) == 1  # not retried
    text = caught.value.one_line()
    assert "wrong API key" in text and "FOLDSERVE_API_KEY" in text
    assert KEY not in text
    assert exit_code_for(caught.value) == 2


def test_400_carries_the_servers_field_and_reason(endpoint: FakeEndpoint, client: Client) -> None:
    reason = "input.num_recycles: Input should be a valid integer. Fix: give a whole number"
    endpoint.on("POST", "run", reply(400, {"error": reason, "field": "input.num_recycles"}))
    with pytest.raises(Refused, match=r"input\.num_recycles: Input should be"):
        client.submit(data(SMALL_MSA))
    assert len(endpoint.requests("POST", "run")) == 1


def test_unknown_job_is_job_not_found(endpoint: FakeEndpoint, client: Client) -> None:
    endpoint.on("GET", "status/job-9", reply(404, {"error": "no such job"}))
    with pytest.raises(JobNotFound, match="job job-9 is not known"):
        client.status("job-9")


def test_wait_follows_progress_until_finished(endpoint: FakeEndpoint, client: Client) -> None:
    progress = {"stage": "predict", "model": "model_1_ptm", "recycle": 1, "num_recycles": 3}
    endpoint.on(
        "GET",
        "status/job-1",
        status("IN_QUEUE", delayTime=120),
        status("IN_PROGRESS", delayTime=800, executionTime=300, output=progress),
        status("COMPLETED", delayTime=800, executionTime=4200, output=output_with({})),
    )
    seen: list[JobStatus] = []
    final = client.wait("job-1", on_update=lambda state: seen.append(state.status))
    assert seen == [JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS, JobStatus.COMPLETED]
    assert (final.delay_time_s, final.execution_time_s) == (0.8, 4.2)
    assert final.progress is None and final.completed_output().ranking[0].model == "model_3_ptm"


def test_wait_rides_out_an_endpoint_restart(endpoint: FakeEndpoint, fake_time: FakeTime) -> None:
    endpoint.on(
        "GET",
        "status/job-1",
        status("IN_PROGRESS"),
        drop(),
        reply(503, {"error": "restarting"}),
        drop(),
        status("COMPLETED", output=output_with({})),
    )
    with Client(url=endpoint.base, retry=fake_time.policy(0)) as client:
        assert client.wait("job-1").status is JobStatus.COMPLETED
    assert len(endpoint.requests("GET", "status/job-1")) == 5
    poll, *outage = fake_time.sleeps  # one poll while it runs, then one wait per failure
    assert within(poll, (0.75 * POLL_FIRST_S, 1.25 * POLL_FIRST_S))
    assert len(outage) == 3
    assert all(within(s, (0.75 * POLL_MAX_S, 1.25 * POLL_MAX_S)) for s in outage)


def test_wait_gives_up_on_an_outage_after_its_limit(
    endpoint: FakeEndpoint, fake_time: FakeTime
) -> None:
    endpoint.on("GET", "status/job-1", reply(503, {"error": "down for good"}))
    with (
        Client(url=endpoint.base, retry=fake_time.policy(0)) as client,
        pytest.raises(Unavailable, match="down for good"),
    ):
        client.wait("job-1")
    slept = fake_time.sleeps
    assert sum(slept[:-1]) <= WAIT_OUTAGE_S < sum(slept)
    assert len(endpoint.requests("GET", "status/job-1")) == len(slept) + 1


def test_wait_times_out_with_the_job_still_running(
    endpoint: FakeEndpoint, client: Client, fake_time: FakeTime
) -> None:
    endpoint.on("GET", "status/job-1", status("IN_PROGRESS", output={"stage": "predict"}))
    with pytest.raises(WaitTimedOut, match="still IN_PROGRESS after 60 s"):
        client.wait("job-1", timeout=60)
    slept = fake_time.sleeps
    assert sum(slept) == pytest.approx(60.0)  # the last pause is cut to the deadline
    assert within(slept[0], (0.75 * POLL_FIRST_S, 1.25 * POLL_FIRST_S))
    assert max(slept) <= 1.25 * POLL_MAX_S  # polls slow down, up to a limit
    assert slept[-2] > 4 * slept[0]


def test_backoff_grows_to_its_cap() -> None:
    policy = RetryPolicy(first_s=0.5, max_s=15.0, jitter=lambda low, high: high)
    assert [policy.backoff(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    half = RetryPolicy(jitter=lambda low, high: low)
    assert half.backoff(0) == 0.25
    with pytest.raises(ValueError, match=r"first_s=2\.0, max_s=1\.0"):
        RetryPolicy(first_s=2.0, max_s=1.0)


def test_result_of_a_failed_job_raises_with_its_error(
    endpoint: FakeEndpoint, client: Client
) -> None:
    endpoint.on(
        "GET", "status/job-1", status("FAILED", error="worker ran out of GPU memory (L=2400)")
    )
    with pytest.raises(JobFailed) as caught:
        client.result("job-1")
    assert caught.value.state.status is JobStatus.FAILED
    assert caught.value.one_line() == "job job-1 FAILED: worker ran out of GPU memory (L=2400)"
    assert exit_code_for(caught.value) == 1


# --- result files ----------------------------------------------------------------------------


def test_download_inline_and_urls_and_the_key_stays_home(
    endpoint: FakeEndpoint, bucket: FakeEndpoint, client: Client, tmp_path: Path
) -> None:
    pae = b'[{"predicted_aligned_error": [[0.5]]}]'
    scores = b'{"model_3_ptm_pred_0": 91.2}'
    endpoint.on("GET", "/files/scores.json", reply(503, {"error": "busy"}), reply(200, scores))
    bucket.on("GET", "/files/pae.json", reply(200, pae))
    output = output_with(
        {
            "ranked_0.pdb": {"data": PDB, "sha256": sha(PDB)},
            "scores.json": {
                "url": f"{endpoint.origin}/files/scores.json",
                "sha256": sha(scores),
                "bytes": len(scores),
            },
            "pae.json": {
                "url": f"{bucket.origin}/files/pae.json?X-Amz-Signature=abc",
                "sha256": sha(pae),
                "bytes": len(pae),
            },
        }
    )
    files = client.download(JobOutput.model_validate(output), tmp_path / "out")
    assert files["ranked_0.pdb"].read_text() == PDB
    assert files["scores.json"].read_bytes() == scores
    assert files["pae.json"].read_bytes() == pae
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(files)
    assert {s.authorization for s in endpoint.requests("GET", "/files/scores.json")} == {
        f"Bearer {KEY}"
    }
    (to_bucket,) = bucket.requests("GET", "/files/pae.json")
    assert to_bucket.authorization is None

    best = save_best_model(files, tmp_path / "best.pdb")
    assert best.read_text() == PDB


@pytest.mark.parametrize("where", ["inline", "url"])
def test_a_damaged_file_is_caught_and_not_kept(
    where: str, bucket: FakeEndpoint, client: Client, tmp_path: Path
) -> None:
    wrong = sha("something else")
    entry: dict[str, Any]
    if where == "inline":
        entry = {"data": PDB, "sha256": wrong}
    else:
        bucket.on("GET", "/files/ranked_0.pdb", reply(200, PDB.encode()))
        entry = {"url": f"{bucket.origin}/files/ranked_0.pdb", "sha256": wrong, "bytes": 80}
    output = JobOutput.model_validate(output_with({"ranked_0.pdb": entry}))
    with pytest.raises(IntegrityError, match=r"ranked_0\.pdb: SHA-256"):
        client.download(output, tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a .partial


@pytest.mark.parametrize("name", ["../escape.pdb", "/etc/passwd", "sub/x.pdb", ".hidden"])
def test_file_names_from_the_server_cannot_escape(
    name: str, client: Client, tmp_path: Path
) -> None:
    output = JobOutput.model_validate(output_with({name: {"data": PDB, "sha256": sha(PDB)}}))
    with pytest.raises(RemoteError, match="not a plain name"):
        client.download(output, tmp_path / "out")
    assert not (tmp_path / "escape.pdb").exists()


def test_the_key_never_reaches_the_logs(
    endpoint: FakeEndpoint, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint.on("GET", "status/job-1", reply(503, {}), status("IN_QUEUE"))
    endpoint.on("POST", "run", reply(200, queued()))
    with caplog.at_level(logging.DEBUG):
        client.submit(data(SMALL_MSA))
        client.status("job-1")
    assert caplog.records  # httpx and httpcore did log the requests
    assert KEY not in caplog.text


# --- the command line ----------------------------------------------------------------------------


def foldserve(tmp_path: Path, *args: str) -> Ran:
    """``foldserve ARGS`` in this process, run from ``tmp_path`` with the test's key and state."""
    env = {
        "FOLDSERVE_API_KEY": KEY,
        "FOLDSERVE_CONFIG": str(tmp_path / "no-config.toml"),
        "FOLDSERVE_STATE_DIR": str(tmp_path / "state"),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        return run_cli(*args, env=env)


def test_submit_command_to_best_model(endpoint: FakeEndpoint, tmp_path: Path) -> None:
    endpoint.on("POST", "run", reply(200, queued()))
    endpoint.on(
        "GET",
        "status/job-1",
        status("IN_PROGRESS", output={"stage": "predict", "model": "model_3_ptm"}),
        status(
            "COMPLETED", output=output_with({"ranked_0.pdb": {"data": PDB, "sha256": sha(PDB)}})
        ),
    )
    msa = data(SMALL_MSA)
    args = ("--msa", str(msa), "--output", "best.pdb", "--url", endpoint.base, "--models", "3")
    result = foldserve(tmp_path, "submit", *args)
    assert result.exit_code == 0, result.stderr
    assert f"job job-1 submitted to {endpoint.base}" in result.stderr
    assert "model_3_ptm" in result.stderr  # the ranking table
    assert (tmp_path / "best.pdb").read_text() == PDB
    assert (tmp_path / "best_prediction" / "ranked_0.pdb").read_text() == PDB
    record = json.loads((tmp_path / "state" / "jobs" / "job-1.json").read_text())
    assert record["status"] == "COMPLETED" and record["msa"] == str(msa)
    assert KEY not in json.dumps(record) and KEY not in result.stderr + result.stdout
    body = json.loads(endpoint.requests("POST", "run")[0].body)
    assert body["input"]["models"] == [3]

    # A later shell: the record finds the endpoint and the key comes from the environment.
    later = foldserve(tmp_path, "status", "job-1")
    assert later.exit_code == 0, later.stderr
    assert later.stdout.startswith("job job-1: COMPLETED")
    endpoint.on("POST", "cancel/job-1", status("COMPLETED"))
    cancelled = foldserve(tmp_path, "cancel", "job-1")
    assert "already finished: COMPLETED" in cancelled.stderr
    assert {s.authorization for s in endpoint.seen} == {f"Bearer {KEY}"}


def test_failed_job_is_one_line_and_exit_1(endpoint: FakeEndpoint, tmp_path: Path) -> None:
    endpoint.on("POST", "run", reply(200, queued()))
    endpoint.on("GET", "status/job-1", status("TIMED_OUT", error="ran past 3600 s"))
    result = foldserve(
        tmp_path, "submit", "--msa", str(data(SMALL_MSA)), "-o", "x.pdb", "--url", endpoint.base
    )
    assert result.exit_code == 1
    assert "error: job job-1 TIMED_OUT: ran past 3600 s" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.pdb").exists()


def test_batch_skips_finished_and_lists_failures(endpoint: FakeEndpoint, tmp_path: Path) -> None:
    msas = tmp_path / "msas"
    msas.mkdir()
    (msas / "good.a3m").write_bytes(data(SMALL_MSA).read_bytes())
    (msas / "bad.a3m").write_text(">q\nMKV\n>h\nM\n")
    (msas / ".hidden.a3m").write_text("ignored")
    endpoint.on("POST", "run", reply(200, queued()))
    done = output_with({"ranked_0.pdb": {"data": PDB, "sha256": sha(PDB)}})
    endpoint.on("GET", "status/job-1", status("COMPLETED", output=done))
    args = ("submit", "--msa-dir", str(msas), "--out-dir", "out", "--url", endpoint.base)
    first = foldserve(tmp_path, *args)
    assert first.exit_code == 1  # bad.a3m failed, locally, before any upload
    assert "bad.a3m" in first.stderr and "1 done" in first.stderr
    assert (tmp_path / "out" / "good.pdb").read_text() == PDB
    assert (
        json.loads((tmp_path / "out" / "good" / "foldserve_job.json").read_text())["status"]
        == "COMPLETED"
    )
    assert len(endpoint.requests("POST", "run")) == 1

    (msas / "bad.a3m").unlink()
    again = foldserve(tmp_path, *args)
    assert again.exit_code == 0, again.stderr
    assert "1 already done" in again.stderr
    assert len(endpoint.requests("POST", "run")) == 1  # nothing submitted twice


def test_ctrl_c_without_a_terminal_leaves_the_job_running(
    endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    endpoint.on("POST", "run", reply(200, queued()))
    endpoint.on("GET", "status/job-1", status("IN_PROGRESS", output={"stage": "compile"}))
    command = ("submit", "--msa", str(data(SMALL_MSA)), "-o", "x.pdb", "--url", endpoint.base)
    env = {
        **os.environ,
        "FOLDSERVE_API_KEY": KEY,
        "FOLDSERVE_CONFIG": str(tmp_path / "no-config.toml"),
        "FOLDSERVE_STATE_DIR": str(tmp_path / "state"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "foldserve.cli", *command],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 60
    while not endpoint.requests("GET", "status/job-1") and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "job job-1 keeps running" in stderr and "foldserve cancel job-1" in stderr
    assert endpoint.requests("POST", "cancel/job-1") == []
