"""``foldserve deploy runpod``, run as a user runs it, against a stand-in for RunPod's REST API
on 127.0.0.1 that records every request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import Ran, foldserve

pytestmark = pytest.mark.timeout(60)

API_KEY = "rpa_TESTKEY0123456789abcdef"
IMAGE = "ghcr.io/example/foldserve:0.1.0"
SUBMIT_LINE = "foldserve submit --endpoint-id ep-789 --msa your_msa.a3m --output your_structure.pdb"


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None
    body: Any


class RestStandin(ThreadingHTTPServer):
    """RunPod's REST API v1 for volumes, templates and endpoints; ``fail`` maps a path to the
    error it answers."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RestHandler)
        self.requests: list[Request] = []
        self.fail: dict[str, tuple[int, dict[str, Any]]] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/v1"

    def answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(request)
        if request.authorization != f"Bearer {API_KEY}":
            return 401, {"error": "unauthorized"}
        if request.path in self.fail:
            return self.fail[request.path]
        body = request.body or {}
        if (request.method, request.path) == ("POST", "/v1/networkvolumes"):
            return 200, {"id": "vol-123", **body}
        if request.method == "GET" and request.path == "/v1/networkvolumes/vol-old":
            return 200, {"id": "vol-old", "name": "w", "size": 50, "dataCenterId": "US-KS-2"}
        if (request.method, request.path) == ("POST", "/v1/templates"):
            return 200, {"id": "tpl-456", **body}
        if (request.method, request.path) == ("POST", "/v1/endpoints"):
            return 200, {"id": "ep-789", **body}
        return 404, {"error": f"no {request.method} {request.path}"}


class _RestHandler(BaseHTTPRequestHandler):
    server: RestStandin

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = Request(
            self.command,
            self.path,
            self.headers.get("Authorization"),
            json.loads(raw) if raw else None,
        )
        code, body = self.server.answer(request)
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _handle


@pytest.fixture
def rest() -> Iterator[RestStandin]:
    server = RestStandin()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def deploy(rest: RestStandin, tmp_path: Path, *args: str, key: str | None = API_KEY) -> Ran:
    """``foldserve deploy runpod --image IMAGE ARGS`` against the stand-in; no key with None."""
    env = {
        "FOLDSERVE_RUNPOD_REST_URL": rest.url,
        "FOLDSERVE_CONFIG": str(tmp_path / "no-config.toml"),
        "RUNPOD_API_KEY": key,
    }
    return foldserve("deploy", "runpod", "--image", IMAGE, *args, env=env)


def test_deploy_creates_the_volume_the_template_and_the_endpoint(
    rest: RestStandin, tmp_path: Path
) -> None:
    result = deploy(
        rest,
        tmp_path,
        *("--gpu", "NVIDIA L40S", "--gpu", "NVIDIA GeForce RTX 4090"),
        *("--volume-size", "20", "--datacenter", "US-GA-1"),
        *("--min-workers", "1", "--max-workers", "5", "--idle-timeout", "120"),
        *("--env", "BUCKET_NAME=results", "--env", "BUCKET_ENDPOINT_URL=https://s3.example"),
    )
    assert result.exit_code == 0, result.stderr
    assert [(r.method, r.path) for r in rest.requests] == [
        ("POST", "/v1/networkvolumes"),
        ("POST", "/v1/templates"),
        ("POST", "/v1/endpoints"),
    ]
    assert {r.authorization for r in rest.requests} == {f"Bearer {API_KEY}"}
    volume, template, endpoint = (r.body for r in rest.requests)
    assert volume == {"name": "foldserve-weights", "size": 20, "dataCenterId": "US-GA-1"}
    assert template["imageName"] == IMAGE
    assert template["isServerless"] is True
    assert template["volumeInGb"] == 0
    assert template["name"].startswith("foldserve-")
    assert template["env"] == {
        "PARAM_DIR": "/runpod-volume",
        "BUCKET_NAME": "results",
        "BUCKET_ENDPOINT_URL": "https://s3.example",
    }
    assert endpoint["templateId"] == "tpl-456"
    assert endpoint["networkVolumeId"] == "vol-123"
    assert endpoint["gpuTypeIds"] == ["NVIDIA L40S", "NVIDIA GeForce RTX 4090"]
    assert endpoint["dataCenterIds"] == ["US-GA-1"]
    assert (endpoint["workersMin"], endpoint["workersMax"]) == (1, 5)
    assert endpoint["idleTimeout"] == 120
    assert endpoint["executionTimeoutMs"] > 600_000  # RunPod's default is too short
    assert "endpoint        ep-789" in result.stdout
    assert SUBMIT_LINE in result.stdout.splitlines()[-1]
    assert API_KEY not in result.stdout + result.stderr


def test_dry_run_sends_nothing_and_shows_no_key_or_secret(
    rest: RestStandin, tmp_path: Path
) -> None:
    result = deploy(
        rest,
        tmp_path,
        "--dry-run",
        *("--env", "BUCKET_SECRET_ACCESS_KEY=hunter2", "--env", "BUCKET_NAME=results"),
        *("--env", "BUCKET_ACCESS_KEY_ID={{ RUNPOD_SECRET_bucket_key }}"),
        *("--execution-timeout", "7200"),
    )
    assert result.exit_code == 0, result.stderr
    assert rest.requests == []
    text = result.stdout
    for route in ("networkvolumes", "templates", "endpoints"):
        assert f"POST {rest.url}/{route}" in text
    assert API_KEY not in text + result.stderr
    assert "hunter2" not in text
    assert '"BUCKET_SECRET_ACCESS_KEY": "<hidden>"' in text
    assert '"BUCKET_ACCESS_KEY_ID": "{{ RUNPOD_SECRET_bucket_key }}"' in text
    assert '"BUCKET_NAME": "results"' in text
    assert '"executionTimeoutMs": 7200000' in text


def test_an_existing_volume_is_read_not_created_and_sets_the_data_centre(
    rest: RestStandin, tmp_path: Path
) -> None:
    result = deploy(rest, tmp_path, "--volume-id", "vol-old")
    assert result.exit_code == 0, result.stderr
    assert [(r.method, r.path) for r in rest.requests] == [
        ("GET", "/v1/networkvolumes/vol-old"),
        ("POST", "/v1/templates"),
        ("POST", "/v1/endpoints"),
    ]
    endpoint = rest.requests[-1].body
    assert endpoint["networkVolumeId"] == "vol-old"
    assert endpoint["dataCenterIds"] == ["US-KS-2"]


def test_a_refused_key_is_one_line_and_creates_nothing(rest: RestStandin, tmp_path: Path) -> None:
    result = deploy(rest, tmp_path, key="rpa_wrong")
    assert result.exit_code == 1
    assert len(rest.requests) == 1
    assert "RunPod refused the API key (HTTP 401)" in result.stderr
    assert "rpa_wrong" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_failure_midway_says_what_was_created(rest: RestStandin, tmp_path: Path) -> None:
    rest.fail["/v1/endpoints"] = (400, {"error": "no NVIDIA B300 in US-GA-1"})
    result = deploy(rest, tmp_path, "--gpu", "NVIDIA B300")
    assert result.exit_code == 1
    stderr = " ".join(result.stderr.split())
    assert "POST /endpoints: HTTP 400: no NVIDIA B300 in US-GA-1" in stderr
    assert "network volume vol-123 (reuse it with --volume-id vol-123)" in stderr
    assert "template tpl-456" in stderr
    assert "Traceback" not in result.stderr


def test_no_key_and_bad_options_are_refused_before_any_request(
    rest: RestStandin, tmp_path: Path
) -> None:
    no_key = deploy(rest, tmp_path, key=None)
    assert no_key.exit_code == 2
    assert "RUNPOD_API_KEY: no RunPod API key" in no_key.stderr
    workers = deploy(rest, tmp_path, "--min-workers", "4", "--max-workers", "2")
    assert workers.exit_code == 2
    assert "--min-workers: 4 is not between 0 and --max-workers (2)" in workers.stderr
    env = deploy(rest, tmp_path, "--env", "PARAM_DIR=/elsewhere")
    assert env.exit_code == 2
    assert "--env: PARAM_DIR is set by the deployment" in env.stderr
    assert rest.requests == []
