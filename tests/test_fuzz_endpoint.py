"""OpenAPI-driven fuzzing (schemathesis) of a real ``foldserve serve`` on 127.0.0.1 with test
weights, and the hygiene of its HTTP layer: headers bounded before auth, the schema behind the
key. Bounded and derandomised: about a minute on two cores.

Asserted: no 5xx, no worker crash (the worker keeps its pid, its log has no crash), no lost job
(every id ``/run`` answered is still in the store).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from foldserve.server import layout
from tests.serving import API_KEY, Server, running_server

AUTH = {"Authorization": f"Bearer {API_KEY}"}
EXAMPLES = 400


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, test_params: Path) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("fuzz") / "server", test_params) as running:
        yield running


@pytest.mark.timeout(60)
def test_a_huge_header_is_refused_before_auth(server: Server) -> None:
    answer = httpx.get(f"{server.base}/health", headers={"X-Big": "a" * 4_000_000}, timeout=30)
    assert answer.status_code in (400, 431)
    assert server.request("GET", "/health").status_code == 200  # still up


@pytest.mark.timeout(60)
def test_openapi_needs_the_key_and_there_are_no_docs(server: Server) -> None:
    assert httpx.get(f"{server.root}/openapi.json").status_code == 401
    assert httpx.get(f"{server.root}/docs").status_code == 404
    document = httpx.get(f"{server.root}/openapi.json", headers=AUTH).json()
    run = document["paths"]["/v2/{endpoint_id}/run"]["post"]
    body = run["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/RunRequest"}
    assert "FoldJobInput" in document["components"]["schemas"]


@pytest.mark.timeout(240)
def test_fuzz_the_endpoint(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.root}/openapi.json", headers=AUTH)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document has an invalid operation: {result.err()}"
        operations.append(result.ok())
    assert len(operations) >= 9
    worker_pid = server.worker_pid()
    submitted: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        deadline=None,
    )
    @given(st.one_of([operation.as_strategy() for operation in operations]))
    def call(case: Any) -> None:
        case.path_parameters = {**(case.path_parameters or {}), "endpoint_id": "local"}
        response = case.call(base_url=server.root, headers=AUTH, timeout=30)
        case.validate_response(response, checks=[not_a_server_error])
        if case.path.endswith("/run") and response.status_code == 200:
            submitted.append(response.json()["id"])

    call()

    health = server.request("GET", "/health")
    assert health.status_code == 200
    assert server.worker_pid() == worker_pid, "a worker was restarted"
    worker_log = layout.log_file(server.data_dir, "worker-0").read_text()
    assert "crashed" not in worker_log, worker_log[-2000:]
    store = server.store
    assert all(store.get(job_id) is not None for job_id in submitted), "a job was lost"
    server.request("POST", "/purge-queue")
