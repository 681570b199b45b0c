"""RunPod's own Python SDK (``runpod.Endpoint``) against a real ``foldserve serve`` on
127.0.0.1, with test weights: the self-hosted endpoint is a RunPod endpoint to RunPod's client.

What the SDK (runpod 1.12, ``runpod/endpoint/runner.py``) does: every call goes to
``{runpod.endpoint_url_base}/{endpoint_id}/...`` with ``Authorization: Bearer {key}``;
``Job.status()`` and ``Job.output()`` read ``/status`` (and keep the answer once it is final);
``Job.stream()`` asks ``/stream`` every second and ends only when the job is COMPLETED, FAILED
or TIMED_OUT and no new chunk came, so an endpoint that hands a chunk out twice never lets it
end; ``Endpoint.run_sync`` posts to ``/runsync`` and returns the output when the answer is final.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import data
from tests.serving import API_KEY, SMALL_MSA, Server, running_server, small_job, until

pytestmark = pytest.mark.timeout(300)

FINAL = ("COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED")
#: Long enough to be caught mid-run (a recycle of the test network takes ~0.5 s here).
LONG = {"num_recycles": 48}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, test_params: Path) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("sdk") / "data", test_params) as running:
        yield running


@pytest.fixture
def runpod_sdk(server: Server, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The ``runpod`` module, aimed at ``server`` with its key."""
    base = f"{server.root}/v2"
    monkeypatch.setenv("RUNPOD_ENDPOINT_BASE_URL", base)
    import runpod

    # runpod reads RUNPOD_ENDPOINT_BASE_URL once, when first imported, which may have been
    # before this test: set what it read, too.
    monkeypatch.setattr(runpod, "endpoint_url_base", base)
    monkeypatch.setattr(runpod, "api_key", API_KEY)
    return runpod


@pytest.fixture
def endpoint(runpod_sdk: Any) -> Any:
    return runpod_sdk.Endpoint("local")


def drain(stream: Iterator[Any], timeout: float = 120) -> list[Any]:
    """Everything ``stream`` yields; fails if it has not ended within ``timeout`` seconds."""
    chunks: list[Any] = []
    reader = threading.Thread(target=lambda: chunks.extend(stream), daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), f"Job.stream() had not ended after {timeout} s: {chunks}"
    return chunks


def test_run_status_output_and_a_stream_that_ends(server: Server, endpoint: Any) -> None:
    job = endpoint.run(
        {"input": small_job(data(SMALL_MSA)), "policy": {"executionTimeout": 120_000}}
    )
    assert job.status() in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
    # Followed from submission: chunks as they come, and the end once the job is done.
    chunks = drain(job.stream())
    assert job.status() == "COMPLETED"
    stages = [chunk["stage"] for chunk in chunks]
    assert stages[0] == "parse" and stages[-1] == "write" and "predict" in stages
    # Each chunk once: one model with one recycle predicts recycles 0 and 1, once each.
    assert [chunk["recycle"] for chunk in chunks if "recycle" in chunk] == [0, 1]
    # None was lost either: the job recorded exactly what the stream handed out.
    recorded = server.request("GET", f"/stream/{job.job_id}", params={"since": 0}).json()
    assert [entry["output"] for entry in recorded["stream"]] == chunks
    # A finished job with nothing new: the stream ends at once, empty.
    assert drain(job.stream(), timeout=30) == []

    output = job.output()
    assert output["test_weights"] is True and output["query"]["length"] == 62
    assert [entry["model"] for entry in output["ranking"]] == ["model_1_ptm"]
    assert output["files"]["ranked_0.pdb"]["data"].count(" CA ") == 62


def test_run_sync_returns_the_output(endpoint: Any) -> None:
    output = endpoint.run_sync({"input": small_job(data(SMALL_MSA), num_recycles=0)}, timeout=120)
    assert output["test_weights"] is True
    assert output["ranking"][0]["recycles"] == 0


def test_health_purge_queue_and_cancel(endpoint: Any) -> None:
    running = endpoint.run({"input": small_job(data(SMALL_MSA), **LONG)})
    waiting = [endpoint.run({"input": small_job(data(SMALL_MSA))}) for _ in range(2)]
    until(lambda: running.status() == "IN_PROGRESS", "the long job to start")

    health = endpoint.health()
    assert health["jobs"]["inQueue"] == 2
    assert health["workers"]["running"] == 1 and health["workers"]["idle"] == 0
    assert endpoint.purge_queue() == {"removed": 2, "status": "completed"}
    assert [job.status() for job in waiting] == ["CANCELLED", "CANCELLED"]

    assert running.cancel() == {"id": running.job_id, "status": "CANCELLED"}
    assert running.status() == "CANCELLED"
    # The worker stops at its next recycle and is idle again, ready for the next job.
    until(lambda: endpoint.health()["workers"]["idle"] == 1, "the worker to be idle again")
    assert endpoint.health()["jobs"]["inQueue"] == 0


def test_a_wrong_key_is_refused_as_runpod_refuses_it(runpod_sdk: Any) -> None:
    with pytest.raises(RuntimeError, match="401 Unauthorized"):
        runpod_sdk.Endpoint("local", api_key="not-the-key").health()
