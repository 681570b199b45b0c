"""``foldserve submit`` against a real ``foldserve serve`` on 127.0.0.1: MSA in, PDB out."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from foldserve import Client
from foldserve.fold.results import PredictOptions
from foldserve.jobs.schema import JobStatus
from tests.conftest import data
from tests.serving import API_KEY, SMALL_MSA, Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, test_params: Path) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("serve-e2e") / "data"
    # A small inline limit, so that some files come back inline and some by URL.
    with running_server(data_dir, test_params, "--inline-limit", "0.1") as running:
        yield running


def foldserve(*args: str, state: Path, key: str = API_KEY) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FOLDSERVE_API_KEY": key,
        "FOLDSERVE_STATE_DIR": str(state),
        "FOLDSERVE_CONFIG": str(state / "no-config.toml"),
    }
    return subprocess.run(
        [sys.executable, "-m", "foldserve.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_submit_writes_the_prediction_and_later_shells_find_the_job(
    server: Server, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    output = tmp_path / "q60262.pdb"
    submitted = foldserve(
        "submit", "--url", server.root, "--msa", str(data(SMALL_MSA)), "--output", str(output),
        "--models", "1,2", "--num-recycles", "1", state=state,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    assert "Traceback" not in submitted.stderr
    out_dir = tmp_path / "q60262_prediction"
    pdb = output.read_text()
    assert pdb == (out_dir / "ranked_0.pdb").read_text()
    assert "TEST WEIGHTS" in pdb and sum(line.startswith("ATOM") for line in pdb.splitlines()) > 400
    for name in ("ranked_1.pdb", "ranked_1.cif", "ranking_debug.json", "scores.json"):
        assert (out_dir / name).is_file(), name
    ranking = json.loads((out_dir / "ranking_debug.json").read_text())
    assert len(ranking["order"]) == 2 and ranking["test_weights"] is True

    (record,) = (state / "jobs").glob("*.json")
    job_id = record.stem
    assert job_id in submitted.stderr
    assert API_KEY not in record.read_text()  # keys are never kept on disk

    status = foldserve("status", job_id, "--json", state=state)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "COMPLETED"

    again = tmp_path / "again"
    fetched = foldserve("fetch", job_id, "--out-dir", str(again), state=state)
    assert fetched.returncode == 0, fetched.stderr
    for name in ("ranked_0.pdb", "ranked_1.cif", "scores.json"):
        assert (again / name).read_bytes() == (out_dir / name).read_bytes(), name


def test_bad_msa_is_refused_before_upload_and_wrong_key_is_one_line(
    server: Server, tmp_path: Path
) -> None:
    bad = data("edge_cases/easel_fasta.bad.1_bad_char.fa")
    result = foldserve(
        "submit", "--url", server.root, "--msa", str(bad), "--output", str(tmp_path / "x.pdb"),
        state=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(bad) in result.stderr
    assert server.request("GET", "/health").json()["jobs"]["inQueue"] == 0

    wrong = foldserve(
        "submit", "--url", server.root, "--msa", str(data(SMALL_MSA)), "--output",
        str(tmp_path / "y.pdb"), state=tmp_path, key="not-the-key",
    )  # fmt: skip
    assert wrong.returncode == 2
    lines = [line for line in wrong.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "API key" in lines[0] and "not-the-key" not in wrong.stderr


def test_python_client_submit_wait_result(server: Server, tmp_path: Path) -> None:
    with Client(url=server.root, api_key=API_KEY) as client:
        job_id = client.submit(data(SMALL_MSA), PredictOptions(models=(1,), num_recycles=0))
        state = client.wait(job_id)
        assert state.status == JobStatus.COMPLETED
        files = client.download(client.result(job_id), tmp_path)
    pdb = files["ranked_0.pdb"].read_bytes()
    expected = state.output["files"]["ranked_0.pdb"]["sha256"]
    assert hashlib.sha256(pdb).hexdigest() == expected


def test_batch_submits_each_msa_and_skips_finished_ones_on_rerun(
    server: Server, tmp_path: Path
) -> None:
    msa_dir = tmp_path / "msas"
    msa_dir.mkdir()
    for name in ("one.a3m", "two.a3m"):
        (msa_dir / name).write_bytes(data(SMALL_MSA).read_bytes())
    out = tmp_path / "out"
    args = ("submit", "--url", server.root, "--msa-dir", str(msa_dir), "--out-dir", str(out),
            "--models", "1", "--num-recycles", "0", "--concurrency", "2")  # fmt: skip
    first = foldserve(*args, state=tmp_path / "state")
    assert first.returncode == 0, first.stderr
    assert (out / "one.pdb").is_file() and (out / "two" / "ranked_0.pdb").is_file()
    completed = server.request("GET", "/health").json()["jobs"]["completed"]
    rerun = foldserve(*args, state=tmp_path / "state")
    assert rerun.returncode == 0, rerun.stderr
    assert server.request("GET", "/health").json()["jobs"]["completed"] == completed
