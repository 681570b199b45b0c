"""The SageMaker container, run as SageMaker runs it: ``foldserve serve --sagemaker`` in its own
process, here on a loopback port, answering ``GET /ping`` and ``POST /invocations`` with test
weights; and SIGTERM, as SageMaker stops it.

Whether the engines are warm yet is made observable with a weights download that a local
server holds until the test lets it go: the container cannot be warm before that.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from foldserve.cloud.sagemaker.container_weights import engine_param_dir
from foldserve.jobs.output import InlineFile, JobOutput
from tests.cli_runner import foldserve
from tests.conftest import data
from tests.serving import (
    SMALL_MSA,
    WAIT_S,
    ArchiveServer,
    MsaHolder,
    archive_server,
    free_port,
    held_msas,
    params_archive,
    small_job,
    until,
)

pytestmark = pytest.mark.timeout(600)


@dataclass
class Container:
    process: subprocess.Popen[bytes]
    url: str  # http://127.0.0.1:PORT
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def ping(self) -> int | None:
        """``/ping``'s status, None while nothing listens yet."""
        try:
            return httpx.get(f"{self.url}/ping", timeout=10).status_code
        except httpx.TransportError:
            return None

    def invoke(self, body: Any, timeout: float = WAIT_S) -> httpx.Response:
        content = body if isinstance(body, bytes) else None
        payload = None if content is not None else body
        return httpx.post(f"{self.url}/invocations", content=content, json=payload, timeout=timeout)

    def until_logged(self, text: str) -> None:
        """Poll the log until it holds ``text``; fail at once if the process ended."""

        def logged() -> bool:
            assert self.process.poll() is None, f"the container exited:\n{self.log()}"
            return text in self.log()

        until(logged, repr(text))

    def until_warm(self) -> None:
        def warm() -> bool:
            assert self.process.poll() is None, f"the container exited:\n{self.log()}"
            return self.ping() == 200

        until(warm, "GET /ping to answer 200", timeout=300)

    def stop(self) -> int:
        """SIGTERM, as SageMaker stops a container; the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=WAIT_S)


@contextmanager
def running_container(
    tmp: Path, params: Path, *flags: str, env: dict[str, str] | None = None
) -> Iterator[Container]:
    """``foldserve serve --sagemaker`` on a free loopback port; killed on the way out if the
    test left it running."""
    port = free_port()
    log = tmp / f"container-{port}.log"
    command = [
        sys.executable, "-m", "foldserve.cli", "serve", "--sagemaker",
        "--host", "127.0.0.1", "--port", str(port), "--params-dir", str(params), *flags,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        yield Container(process, f"http://127.0.0.1:{port}", log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def in_background(call: Any, *args: Any, **kwargs: Any) -> Future[Any]:
    return ThreadPoolExecutor(max_workers=1).submit(call, *args, **kwargs)


def one_line_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error, str) and "\n" not in error, error
    return error


# One warm container with the test weights as its model data, for the invocations.


@pytest.fixture(scope="module")
def holder() -> Iterator[MsaHolder]:
    with held_msas(data(SMALL_MSA).read_text()) as msas:
        yield msas


@pytest.fixture(scope="module")
def container(
    tmp_path_factory: pytest.TempPathFactory, test_params: Path, holder: MsaHolder
) -> Iterator[Container]:
    tmp = tmp_path_factory.mktemp("sagemaker")
    # The held MSAs are served over http on loopback: allowed for them alone.
    allow = ("--allow-http", "--allow-url-prefix", holder.prefix)
    with running_container(tmp, test_params, *allow) as started:
        started.until_warm()
        yield started
        assert started.stop() == 0, started.log()
        assert "Traceback" not in started.log(), started.log()


@pytest.mark.parametrize("wrapped", [False, True], ids=["input", "run-body"])
def test_invocation_returns_the_job_output_with_the_best_model_inline(
    container: Container, wrapped: bool
) -> None:
    job = small_job(data(SMALL_MSA))
    response = container.invoke({"input": job} if wrapped else job)
    assert response.status_code == 200, response.text
    output = JobOutput.model_validate(response.json())
    assert output.test_weights and output.query.length == 62
    best = output.files["ranked_0.pdb"]
    assert isinstance(best, InlineFile)
    assert hashlib.sha256(best.data.encode()).hexdigest() == best.sha256
    assert best.data.startswith("REMARK")
    # SageMaker writes the response to S3: every file comes back inline.
    assert all(isinstance(entry, InlineFile) for entry in output.files.values())


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"colour": "blue"}, "input.colour", r"input\.colour: unknown field\. Fix: remove it"),
        ({"models": [7]}, "input.models", r"input\.models: no AlphaFold2 model 7\. Fix: "),
    ],
    ids=["unknown-field", "unknown-model"],
)
def test_bad_input_is_a_400_with_one_line_naming_the_field(
    container: Container, fields: dict[str, Any], field: str, message: str
) -> None:
    response = container.invoke({**small_job(data(SMALL_MSA)), **fields})
    assert re.match(message, one_line_error(response, 400))
    assert response.json()["field"] == field


def test_a_malformed_msa_is_a_400_naming_its_line(container: Container) -> None:
    malformed = data("edge_cases/easel_fasta.bad.1_bad_char.fa").read_text()
    response = container.invoke({"msa": malformed})
    assert re.match(r"input\.msa:\d+: invalid character '1'", one_line_error(response, 400))
    assert response.json()["field"] == "input.msa"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"msa": ', r"body: not valid JSON \(Expecting value at line 1, column 9\)"),
        (b'{"input": {}, "policy": {}}', r"policy: unknown field beside input"),
    ],
    ids=["not-json", "policy"],
)
def test_a_body_that_is_no_job_input_is_a_400(
    container: Container, body: bytes, message: str
) -> None:
    assert re.match(message, one_line_error(container.invoke(body), 400))


def test_a_second_invocation_while_one_runs_is_refused_with_429(
    container: Container, holder: MsaHolder
) -> None:
    held = holder.hold()
    first = in_background(container.invoke, {"msa_url": held.url, "models": [1], "num_recycles": 0})
    held.wait_requested()  # the first job holds the container, fetching its MSA
    second = container.invoke(small_job(data(SMALL_MSA)))
    assert "one at a time" in one_line_error(second, 429)
    held.release()
    assert first.result().status_code == 200, first.result().text


# Warming up and stopping, each in a container of its own.


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, test_params: Path) -> Path:
    folder = tmp_path_factory.mktemp("archive")
    return params_archive(test_params, folder / "alphafold_params_2022-12-06.tar")


@contextmanager
def fetching_container(tmp: Path, archive: Path) -> Iterator[tuple[Container, ArchiveServer]]:
    """A container whose model data has no weights: it fetches them from a held archive."""
    with archive_server(archive) as server:
        env = {
            "FOLDSERVE_PARAMS_URL": server.url,
            "FOLDSERVE_PARAMS_SHA256": hashlib.sha256(archive.read_bytes()).hexdigest(),
        }
        with running_container(tmp, tmp / "model", env=env) as started:
            assert server.requested.wait(WAIT_S), started.log()
            yield started, server


def test_ping_answers_503_until_the_fetched_weights_are_loaded_then_200(
    tmp_path: Path, archive: Path
) -> None:
    with fetching_container(tmp_path, archive) as (container, server):
        until(lambda: container.ping() is not None, "the container to listen")
        assert container.ping() == 503
        refused = container.invoke(small_job(data(SMALL_MSA)))
        assert "still loading" in one_line_error(refused, 503)
        server.released.set()
        container.until_warm()
        assert "(verified)" in container.log()  # fetched under the lock, checked
        assert container.stop() == 0
    assert "Traceback" not in container.log(), container.log()


def test_sigterm_while_the_weights_download_exits_cleanly(tmp_path: Path, archive: Path) -> None:
    with fetching_container(tmp_path, archive) as (container, _):
        until(lambda: container.ping() == 503, "the container to listen")
        assert container.stop() == 0, container.log()
    assert "stopped before the engines were loaded" in container.log()
    assert "Traceback" not in container.log(), container.log()


def test_sigterm_stops_the_running_job_and_exits_cleanly(tmp_path: Path, test_params: Path) -> None:
    with running_container(tmp_path, test_params) as container:
        container.until_warm()
        # Five runs of 49 recycles: minutes of work, unless SIGTERM reaches the recycle loop.
        job = small_job(data(SMALL_MSA), num_seeds=5, num_recycles=48)
        running = in_background(container.invoke, job, timeout=300)
        container.until_logged("invocation 1: predict")
        assert container.stop() == 0, container.log()
        assert "stopped (SIGTERM)" in one_line_error(running.result(), 503)
    assert "Traceback" not in container.log(), container.log()


# The pieces without a container around them.


def test_read_only_model_data_is_read_through_a_writable_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    (model / "params").mkdir(parents=True)
    (model / "jax-cache").mkdir()  # a cache that came with the model data stays unused
    read_only = str(model)
    real_access = os.access
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the stand-in is made
    monkeypatch.setattr(
        "os.access", lambda path, mode: str(path) != read_only and real_access(path, mode)
    )
    folder = engine_param_dir(model)
    assert folder != model and (folder / "params").resolve() == model / "params"
    assert sorted(p.name for p in folder.iterdir()) == ["params"]
    monkeypatch.undo()
    assert engine_param_dir(model) == model


def test_flags_of_the_job_server_are_refused_with_sagemaker() -> None:
    ran = foldserve("serve", "--sagemaker", "--workers", "2")
    assert ran.exit_code == 2
    assert ran.stderr.strip().startswith("error: --workers: does not apply"), ran.stderr
