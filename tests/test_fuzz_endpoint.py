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
from tests.conftest import data
from tests.serving import API_KEY, SMALL_MSA, Server, running_server

AUTH = {"Authorization": f"Bearer {API_KEY}"}
EXAMPLES = 400


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, test_params: Path) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("fuzz") / "server", test_params) as running:
        yield running


@pytest.mark.timeout(60)
def test_a_huge_header_is_refused_before_auth(server: Server) -> None:
    try:
        answer = httpx.get(f"{server.base}/health", headers={"X-Big": "a" * 4_000_000}, timeout=30)
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
        # The server answered 400 and closed while the client was still sending the header:
        # the reset can reach the client before the answer does.
        pass
    else:
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


#: Row names a careless or hostile client might send: any Unicode must survive to the outputs.
ROW_NAMES = st.text(
    st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"], blacklist_characters=">"),
    min_size=1,
    max_size=12,
).filter(lambda name: name.strip() == name and name.split() == [name])


def _msa_with_query_named(name: str) -> str:
    """The 6-row test MSA with its query row renamed."""
    lines = data(SMALL_MSA).read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(">"))
    lines[first] = f">{name}"
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(300)
def test_valid_jobs_from_the_edges_of_the_contract_run_to_an_end(server: Server) -> None:
    """Inputs schemathesis hardly reaches (it seldom builds a valid MSA): valid jobs at the edges
    of every field run on the real worker, and each ends COMPLETED, or FAILED with one line;
    the worker never crashes."""
    worker_pid = server.worker_pid()
    finished: list[dict[str, Any]] = []

    @settings(max_examples=8, derandomize=True, database=None, deadline=None)
    @given(
        name=ROW_NAMES,
        models=st.lists(st.integers(1, 5), min_size=1, max_size=2, unique=True),
        seed=st.sampled_from([0, 1, 2**31, 2**32 - 2]),
        outputs=st.lists(st.sampled_from(["pdb", "cif", "scores", "pae", "msa"]), min_size=1),
        rank_by=st.sampled_from(["plddt", "ptm"]),
    )
    def job(name: str, models: list[int], seed: int, outputs: list[str], rank_by: str) -> None:
        job_input = {
            "msa": _msa_with_query_named(name),
            "models": models,
            "num_recycles": 0,
            "seed": seed,
            "outputs": sorted(set(outputs)),
            "rank_by": rank_by,
        }
        finished.append(server.wait_finished(server.submit(job_input), timeout=120))

    job()

    assert finished
    for body in finished:
        assert body["status"] in ("COMPLETED", "FAILED"), body
        if body["status"] == "FAILED":
            assert "\n" not in body["error"] and "crashed" not in body["error"], body["error"]
    assert any(body["status"] == "COMPLETED" for body in finished)
    assert server.worker_pid() == worker_pid, "a worker was restarted"
