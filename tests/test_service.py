"""The self-hosted endpoint, really started: ``foldserve serve`` on 127.0.0.1 with real worker
processes and test weights, driven over HTTP."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from foldserve.client.client import Client
from foldserve.errors import InputError
from foldserve.server.settings import WORKER_VARIABLE, ServeSettings, WorkerLaunch
from tests.conftest import data
from tests.serving import API_KEY, SMALL_MSA, Server, running_server, small_job

#: Long enough to be caught mid-run: a recycle of the 2-block test network takes ~0.5 s here.
LONG = {"num_recycles": 48}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, test_params: Path) -> Iterator[Server]:
    """One server for the tests that leave it healthy: a 0.1 MB inline limit by flag, which
    beats the environment's 5 MB (else no file would go by URL), and a 3 s stop grace from the
    environment."""
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    with running_server(
        data_dir,
        test_params,
        "--inline-limit",
        "0.1",
        env={"FOLDSERVE_STOP_GRACE": "3", "FOLDSERVE_INLINE_LIMIT_MB": "5"},
    ) as running:
        yield running


def test_job_runs_and_large_files_come_by_url(server: Server) -> None:
    job_id = server.submit(small_job(data(SMALL_MSA), models=[1, 2]))
    body = server.wait_finished(job_id)
    assert body["status"] == "COMPLETED", body
    assert body["delayTime"] >= 0 and body["executionTime"] > 0
    output = body["output"]
    assert output["test_weights"] is True
    assert output["query"]["length"] == 62 and output["msa"] == {"depth": 6, "used": 6}
    assert [r["model"] for r in output["ranking"]] != []
    files = output["files"]
    assert "data" in files["ranked_0.pdb"] and "REMARK" in files["ranked_0.pdb"]["data"]
    by_url = [name for name, entry in files.items() if "url" in entry]
    assert by_url, "with a 0.1 MB inline limit some files must go by URL"
    name = by_url[0]
    assert files[name]["url"] == f"{server.base}/results/{job_id}/{name}"
    fetched = server.request("GET", f"/results/{job_id}/{name}")
    assert fetched.status_code == 200 and len(fetched.content) == files[name]["bytes"]
    stream = server.request("GET", f"/stream/{job_id}").json()
    stages = [event["output"]["stage"] for event in stream["stream"]]
    assert stages[0] == "parse" and "predict" in stages and stages[-1] == "write"
    recycles = [e["output"].get("recycle") for e in stream["stream"] if "recycle" in e["output"]]
    assert recycles == [0, 1, 0, 1]
    # Each chunk is handed out once, as on RunPod: a finished job then streams nothing.
    again = server.request("GET", f"/stream/{job_id}").json()
    assert again == {"status": "COMPLETED", "stream": []}
    # foldserve's own client still reads every event, since a cursor, consuming nothing.
    with Client(url=server.root, api_key=API_KEY) as client:
        events, cursor = client.stream(job_id, since=0)
        assert [event.to_wire() for event in events] == [e["output"] for e in stream["stream"]]
        assert cursor == len(events)
        assert client.stream(job_id, since=cursor - 1) == (events[-1:], cursor)
        assert client.stream(job_id, since=cursor) == ([], cursor)
        assert client.stream(job_id) == []


def test_cancel_queued_and_running_jobs(server: Server) -> None:
    running = server.submit(small_job(data(SMALL_MSA), **LONG))
    queued = server.submit(small_job(data(SMALL_MSA)))
    server.wait_for(running, lambda b: (b.get("output") or {}).get("stage") == "predict")
    pid = server.worker_pid()

    assert server.request("POST", f"/cancel/{queued}").json()["status"] == "CANCELLED"
    assert server.request("POST", f"/cancel/{running}").json()["status"] == "CANCELLED"
    # The worker stops at its next recycle, stays alive and warm, and takes the next job.
    after = server.submit(small_job(data(SMALL_MSA)))
    assert server.wait_finished(after)["status"] == "COMPLETED"
    assert server.worker_pid() == pid
    assert server.status(running)["status"] == "CANCELLED"
    never_ran = server.store.get(queued)
    assert never_ran is not None and never_ran.attempts == 0 and never_ran.started_at is None
    stopped = server.store.get(running)
    assert stopped is not None and stopped.output is None


def test_execution_timeout(server: Server) -> None:
    job_id = server.submit(small_job(data(SMALL_MSA), **LONG), policy={"executionTimeout": 4000})
    body = server.wait_finished(job_id)
    assert body["status"] == "TIMED_OUT"
    assert body["error"] == "execution timeout of 4 s exceeded"
    assert 4000 <= body["executionTime"] < 15000
    retried = server.request("POST", f"/retry/{job_id}").json()
    assert retried == {"id": job_id, "status": "IN_QUEUE"}
    server.request("POST", f"/cancel/{job_id}")


def test_runsync_health_and_purge(server: Server) -> None:
    response = server.request(
        "POST", "/runsync", params={"wait": 120000}, json={"input": small_job(data(SMALL_MSA))}
    )
    assert response.json()["status"] == "COMPLETED"
    blocker = server.submit(small_job(data(SMALL_MSA), **LONG))
    waiting = [server.submit(small_job(data(SMALL_MSA))) for _ in range(3)]
    server.wait_for(blocker, lambda b: b["status"] == "IN_PROGRESS")
    health = server.request("GET", "/health").json()
    assert health["jobs"]["inQueue"] == 3 and health["workers"]["running"] == 1
    assert server.request("POST", "/purge-queue").json() == {"removed": 3, "status": "completed"}
    assert {server.status(j)["status"] for j in waiting} == {"CANCELLED"}
    server.request("POST", f"/cancel/{blocker}")


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": API_KEY}, 401)],
)
def test_requests_without_the_key_are_refused(
    server: Server, headers: dict[str, str], code: int
) -> None:
    import httpx

    for method, path in (("GET", "/health"), ("POST", "/run"), ("GET", "/status/abc")):
        response = httpx.request(method, server.base + path, headers=headers)
        assert response.status_code == code
        assert "Authorization: missing or wrong API key" in response.json()["error"]


def test_oversized_and_inflating_bodies_get_413(server: Server) -> None:
    big = {"input": {"msa": ">q\n" + "A" * 11_000_000}}
    response = server.request("POST", "/run", json=big)
    assert response.status_code == 413 and "10 MB limit" in response.json()["error"]

    bomb = gzip.compress(b'{"input": {"msa": "' + b"A" * 30_000_000 + b'"}}')
    assert len(bomb) < 100_000
    response = server.request(
        "POST",
        "/run",
        content=bomb,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status_code == 413

    msa_bomb = base64.b64encode(gzip.compress(b">q\n" + b"A" * 80_000_000)).decode()
    response = server.request("POST", "/run", json={"input": {"msa_gz_b64": msa_bomb}})
    assert response.status_code == 413
    assert response.json()["field"] == "input.msa_gz_b64"


@pytest.mark.parametrize(
    ("job_input", "field", "words"),
    [
        ({"msa": ">q\nACD\n", "colour": "red"}, "input.colour", "unknown field"),
        ({"msa": ">q\nACD\n", "models": [6]}, "input.models", "no AlphaFold2 model 6"),
        ({"msa": ">q\nACD\n", "num_recycles": "many"}, "input.num_recycles", "valid integer"),
        ({"models": [1]}, "input", "exactly one of msa, msa_gz_b64, msa_url and chains"),
        ({"msa_gz_b64": "%%%"}, "input.msa_gz_b64", "not valid base64"),
        ({"msa": ">q\nAC@D\n"}, "input.msa", "invalid character '@'"),
    ],
)
def test_bad_input_gets_400_naming_the_field(
    server: Server, job_input: dict[str, object], field: str, words: str
) -> None:
    response = server.request("POST", "/run", json={"input": job_input})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field and words in body["error"] and "Fix:" in body["error"]


def test_path_traversal_is_refused(server: Server) -> None:
    job_id = server.submit(small_job(data(SMALL_MSA)))
    server.wait_finished(job_id)
    secrets = ("SQLite format", "BEGIN", "root:")
    for path in (
        "/status/..%2F..%2Fjobs.sqlite3",
        "/status/%2e%2e",
        f"/results/{job_id}/..%2F..%2Fjobs.sqlite3",
        f"/results/{job_id}/%2e%2e%2f%2e%2e%2fjobs.sqlite3",
        f"/results/{job_id}/.hidden",
        f"/results/..%2F{job_id}/ranked_0.pdb",
        f"/results/{job_id}/unrelaxed_model_1_ptm_pred_0.pdb",  # on disk, but not an output
        "/results/x/%2Fetc%2Fpasswd",
    ):
        response = server.request("GET", path)
        assert response.status_code in (400, 404), path
        assert not any(s in response.text for s in secrets), path


def test_no_auth_only_on_loopback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "foldserve.cli", "serve", "--host", "0.0.0.0", "--no-auth",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, env={**os.environ, "FOLDSERVE_API_KEY": ""},
    )  # fmt: skip
    assert result.returncode == 2
    assert "--no-auth on 0.0.0.0" in result.stderr and "Traceback" not in result.stderr


def test_killed_worker_is_restarted_and_its_job_retried_once(
    tmp_path: Path, test_params: Path
) -> None:
    with running_server(tmp_path / "data", test_params) as server:
        job_id = server.submit(small_job(data(SMALL_MSA), num_recycles=6))
        server.wait_for(job_id, lambda b: (b.get("output") or {}).get("stage") == "predict")
        first = server.worker_pid()
        os.kill(first, signal.SIGKILL)
        body = server.wait_finished(job_id)
        assert body["status"] == "COMPLETED" and body["retries"] == 1
        assert server.worker_pid() != first

        doomed = server.submit(small_job(data(SMALL_MSA), **LONG))
        for retries in (0, 1):
            # Predicting in its first run, then in its second (once the supervisor requeued it
            # and the restarted worker took it): only then is worker-0's pid the one running it.
            server.wait_for(
                doomed,
                lambda b, retries=retries: (
                    b.get("retries", 0) == retries
                    and (b.get("output") or {}).get("stage") == "predict"
                ),
            )
            os.kill(server.worker_pid(), signal.SIGKILL)
        body = server.wait_finished(doomed)
        assert body["status"] == "FAILED"
        assert body["error"] == (
            "its worker died (killed by SIGKILL); it had already been retried once"
        )


def test_jobs_survive_a_server_crash(tmp_path: Path, test_params: Path) -> None:
    with running_server(tmp_path / "data", test_params) as server:
        running = server.submit(small_job(data(SMALL_MSA), num_recycles=6))
        queued = [server.submit(small_job(data(SMALL_MSA))) for _ in range(2)]
        server.wait_for(running, lambda b: b["status"] == "IN_PROGRESS")
        server.kill()  # SIGKILL: no shutdown code runs; the worker dies with it
    with running_server(tmp_path / "data", test_params) as restarted:
        for job_id in [running, *queued]:
            assert restarted.wait_finished(job_id)["status"] == "COMPLETED"
        assert restarted.status(running)["retries"] == 1
        job = restarted.store.get(queued[0])
        assert job is not None and job.attempts == 1


def test_webhook_gets_the_result_and_results_expire(tmp_path: Path, test_params: Path) -> None:
    received: list[dict[str, object]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    retention_hours = 4 / 3600  # four seconds
    webhook = f"http://127.0.0.1:{hook.server_address[1]}/done"
    # A loopback receiver over http is refused unless the operator allows it.
    allow = ("--allow-http", "--allow-url-prefix", webhook)
    try:
        with running_server(
            tmp_path / "data", test_params, "--retention", str(retention_hours), *allow
        ) as server:
            job_id = server.submit(small_job(data(SMALL_MSA)), webhook=webhook)
            assert server.wait_finished(job_id)["status"] == "COMPLETED"
            results = tmp_path / "data" / "results" / job_id
            assert (results / "ranked_0.pdb").is_file()
            deadline = time.monotonic() + 30
            while server.request("GET", f"/status/{job_id}").status_code != 404:
                assert time.monotonic() < deadline, "finished job never expired"
                time.sleep(0.5)
            assert not results.exists()
    finally:
        hook.shutdown()
    assert [(body["id"], body["status"]) for body in received] == [(job_id, "COMPLETED")]
    assert "ranked_0.pdb" in received[0]["output"]["files"]  # type: ignore[index]


def test_a_crashing_job_fails_with_the_reason_and_only_restarts_its_worker(
    tmp_path: Path, test_params: Path
) -> None:
    data_dir = tmp_path / "data"
    with running_server(data_dir, test_params) as server:
        first = server.worker_pid()
        # A file where the results folder goes: writing the job's files fails, which is no
        # fault of the job's input.
        in_the_way = data_dir / "results"
        in_the_way.write_text("not a folder")
        job_id = server.submit(small_job(data(SMALL_MSA)))
        body = server.wait_finished(job_id)
        assert body["status"] == "FAILED"
        assert body["error"].startswith("the worker crashed (")
        assert body["error"].endswith("it was restarted")
        in_the_way.unlink()
        after = server.submit(small_job(data(SMALL_MSA)))
        assert server.wait_finished(after)["status"] == "COMPLETED"
        assert server.worker_pid() != first


@pytest.mark.timeout(30)
def test_settings_name_the_flag_or_variable_and_reach_workers_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FOLDSERVE_WORKERS", "3")
    monkeypatch.setenv("FOLDSERVE_PRECISION", "half")
    with pytest.raises(InputError) as caught:
        ServeSettings.load({"data_dir": tmp_path}, {"data_dir": "--data-dir"})
    assert caught.value.where == "FOLDSERVE_PRECISION" and "'half'" in caught.value.problem
    with pytest.raises(InputError) as caught:
        ServeSettings.load({"precision": "fp16"}, {"precision": "--precision"})
    assert caught.value.where == "--precision"
    assert caught.value.fix == "use auto, bfloat16 or float32"
    monkeypatch.delenv("FOLDSERVE_PRECISION")
    settings = ServeSettings.load({"data_dir": tmp_path, "workers": 2}, {})
    assert settings.workers == 2  # the flag beats FOLDSERVE_WORKERS
    assert ServeSettings.load({"data_dir": tmp_path}, {}).workers == 3
    # A worker reads the server's settings back as they were, whatever its own environment.
    launch = WorkerLaunch(name="worker-0", server_pid=os.getpid(), settings=settings)
    monkeypatch.setenv(WORKER_VARIABLE, launch.model_dump_json())
    monkeypatch.setenv("FOLDSERVE_WORKERS", "5")
    assert WorkerLaunch.model_validate_json(os.environ[WORKER_VARIABLE]) == launch
