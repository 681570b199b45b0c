"""Choosing the engine everywhere but the pipeline: ``predict --engine``, the job's ``engine``
and ``num_diffusion_samples``, ``serve --engines``, the RunPod worker's ``FOLDSERVE_ENGINES``,
``submit --engine``, ``weights … --engine openfold3``.

Refusals are checked without running a model. One real OpenFold3 job (random test weights, on
the CPU) goes through a real ``foldserve serve`` on 127.0.0.1 and ``foldserve submit``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from foldserve.client.records import InputKey
from foldserve.client.request import build_request
from foldserve.cloud.runpod.settings import RunpodSettings
from foldserve.cloud.runpod.startup import prepare_weights
from foldserve.errors import InputError
from foldserve.fold.engine import Engines
from foldserve.fold.openfold3.layout import installed_checkpoint
from foldserve.fold.results import PredictOptions
from foldserve.jobs.run import run_fold_job
from foldserve.jobs.schema import (
    JobOutput,
    JobStatus,
    job_schema,
    parse_job_input,
    parse_run_request,
)
from foldserve.server import layout, worker
from foldserve.server.settings import ServeSettings
from foldserve.server.store import JobStore, WorkerState
from tests.cli_runner import Ran, foldserve
from tests.conftest import data
from tests.serving import API_KEY, SMALL_MSA, Server, running_server

pytestmark = pytest.mark.timeout(120)

MSA = ">q\nMKV\n"


def one_line_error(ran: Ran, where: str, text: str) -> None:
    """Exit 2 with one line naming ``where`` and saying ``text``, no traceback."""
    assert ran.exit_code == 2, ran.stderr
    assert ran.stderr.count("\n") == 1 and "Traceback" not in ran.stderr, ran.stderr
    assert f"{where}: " in ran.stderr and text in ran.stderr, ran.stderr


# --- foldserve predict --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "where", "text"),
    [
        (("--engine", "rosetta"), "--engine", "unknown engine 'rosetta'"),
        (("--engine", "alphafold2,openfold3"), "--engine", "pipeline run --engines"),
        (("--engine", "openfold3", "--models", "1"), "--models", "an AlphaFold2 option"),
        (("--engine", "openfold3", "--model-type", "multimer"), "--model-type", "AlphaFold2"),
        (("--engine", "openfold3", "--max-msa", "16:32"), "--max-msa", "AlphaFold2"),
        (("--engine", "openfold3", "--stop-at-score", "80"), "--stop-at-score", "AlphaFold2"),
        (("--engine", "openfold3", "--templates", "x.cif"), "--templates", "AlphaFold2"),
        (("--num-diffusion-samples", "2"), "--num-diffusion-samples", "an OpenFold3 option"),
        (
            ("--engine", "openfold3", "--num-diffusion-samples", "0"),
            "--num-diffusion-samples",
            "outside 1..100",
        ),
    ],
)
def test_predict_refuses_a_bad_engine_choice_before_reading_anything(
    tmp_path: Path, flags: tuple[str, ...], where: str, text: str
) -> None:
    ran = foldserve("predict", str(data(SMALL_MSA)), str(tmp_path / "out"), *flags)
    one_line_error(ran, where, text)
    assert not (tmp_path / "out").exists()


def test_predict_without_openfold3_weights_says_how_to_get_them(tmp_path: Path) -> None:
    ran = foldserve(
        "predict", str(data(SMALL_MSA)), str(tmp_path / "out"), "--engine", "openfold3",
        "--params-dir", str(tmp_path / "empty"),
    )  # fmt: skip
    one_line_error(ran, "params", "no OpenFold3 checkpoint")
    assert "foldserve weights fetch --engine openfold3" in ran.stderr
    assert "foldserve weights make-test --engine openfold3" in ran.stderr


def test_predict_without_the_openfold3_extra_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the package were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "openfold3.projects.of3_all_atom.project_entry", None)
    ran = foldserve("predict", str(data(SMALL_MSA)), str(tmp_path / "out"), "--engine", "openfold3")
    one_line_error(ran, "--engine", "OpenFold3 is not installed here")
    assert "pip install 'foldserve[openfold3]'" in ran.stderr


# --- the job contract ---------------------------------------------------------------------


def test_a_job_for_openfold3_is_valid_and_carries_its_options() -> None:
    job = parse_job_input({"msa": MSA, "engine": "openfold3", "num_diffusion_samples": 3})
    assert job.engine == "openfold3" and job.options().num_diffusion_samples == 3
    request = {"input": {"msa": MSA, "engine": "openfold3", "num_diffusion_samples": 3}}
    jsonschema.Draft202012Validator({**job_schema(), "$ref": "#/run_request"}).validate(request)
    assert parse_run_request(request).input.engine == "openfold3"


@pytest.mark.parametrize(
    ("job", "where", "text"),
    [
        ({"engine": "rosetta"}, "input.engine", "'alphafold2' or 'openfold3'"),
        ({"num_diffusion_samples": 2}, "input.num_diffusion_samples", "an OpenFold3 option"),
        ({"engine": "openfold3", "num_diffusion_samples": 0}, "input.num_diffusion_samples", "1"),
        ({"engine": "openfold3", "models": [1, 2]}, "input.models", "an AlphaFold2 option"),
        (
            {"engine": "openfold3", "max_extra_msa": 16},
            "input.max_extra_msa",
            "an AlphaFold2 option",
        ),
        (
            {"engine": "openfold3", "templates": [{"name": "1abc.cif", "data": "x"}]},
            "input.templates",
            "an AlphaFold2 option",
        ),
    ],
)
def test_a_job_with_the_other_engines_options_is_refused_naming_the_field(
    job: dict[str, Any], where: str, text: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse_run_request({"input": {"msa": MSA, **job}})
    assert caught.value.where == where and text in caught.value.one_line()


def test_a_job_for_an_engine_not_served_fails_naming_the_field_before_any_loading(
    tmp_path: Path,
) -> None:
    engines = Engines(("alphafold2",))
    with pytest.raises(InputError) as caught:
        run_fold_job(
            parse_job_input({"msa": MSA, "engine": "openfold3"}),
            engines,
            tmp_path,
            progress=lambda _: None,
        )
    assert caught.value.where == "input.engine"
    assert "openfold3 is not served here (this worker runs alphafold2)" in caught.value.problem
    assert "--engines alphafold2,openfold3" in (caught.value.fix or "")
    assert engines.loaded == {}


def test_a_queued_job_for_an_engine_its_worker_does_not_serve_fails_the_worker_goes_on(
    tmp_path: Path,
) -> None:
    """A job queued for openfold3 before the server was restarted without it: FAILED with the
    one line, and the worker takes the next job."""
    store = JobStore(layout.database(tmp_path))
    run = parse_run_request({"input": {"msa": MSA, "engine": "openfold3"}})
    submitted = store.submit(run.input, run.policy, None)
    store.register_worker("worker-0", 1, WorkerState.IDLE)
    job = store.claim("worker-0")
    assert job is not None and job.id == submitted.id
    worker.run_job(store, job, Engines(("alphafold2",)), ServeSettings(data_dir=tmp_path))
    failed = store.get(job.id)
    assert failed is not None and failed.status == JobStatus.FAILED
    assert failed.error is not None and "\n" not in failed.error
    assert failed.error.startswith("input.engine: openfold3 is not served here")
    (row,) = store.workers()
    assert row.state == WorkerState.IDLE and row.job_id is None


def test_an_output_from_before_openfold3_reads_its_network_from_engine() -> None:
    old = {
        "foldserve_version": "0.1.0", "engine": "alphafold2_multimer_v3", "test_weights": False,
        "query": {"name": "q", "length": 3, "sequence": "MKV"}, "msa": {"depth": 1, "used": 1},
        "ranking": [], "files": {}, "timings": {},
    }  # fmt: skip
    output = JobOutput.model_validate(old)
    assert (output.engine, output.network) == ("alphafold2", "alphafold2_multimer_v3")
    new = JobOutput.model_validate({**old, "engine": "openfold3", "network": "openfold3"})
    assert (new.engine, new.network) == ("openfold3", "openfold3")


def test_the_client_sends_the_engine_only_when_it_is_not_the_default(tmp_path: Path) -> None:
    msa = data(SMALL_MSA)
    default = json.loads(build_request(msa, PredictOptions()).content)["input"]
    assert "engine" not in default and "num_diffusion_samples" not in default
    options = PredictOptions(num_diffusion_samples=2)
    sent = json.loads(build_request(msa, options, engine="openfold3").content)["input"]
    assert (sent["engine"], sent["num_diffusion_samples"]) == ("openfold3", 2)
    with pytest.raises(InputError, match=r"input\.models: an AlphaFold2 option"):
        build_request(msa, PredictOptions(models=(1,)), engine="openfold3")


def test_a_batch_reruns_an_msa_when_its_engine_changes_but_not_for_an_older_key(
    tmp_path: Path,
) -> None:
    msa = tmp_path / "q.a3m"
    msa.write_text(MSA)
    alphafold2 = InputKey.of(msa, PredictOptions())
    # A key written before the engine and num_diffusion_samples were part of it.
    settings = json.loads(alphafold2.settings)
    del settings["engine"], settings["num_diffusion_samples"]
    older = InputKey(alphafold2.msa_sha256, json.dumps(settings, sort_keys=True))
    assert alphafold2.changes_from(older) is None
    changed = InputKey.of(msa, PredictOptions(), "openfold3").changes_from(alphafold2)
    assert changed is not None and "engine alphafold2 -> openfold3" in changed


def test_submit_refuses_the_other_engines_flags_before_contacting_the_endpoint(
    tmp_path: Path,
) -> None:
    common = ("submit", "--url", "http://127.0.0.1:9", "--msa", str(data(SMALL_MSA)))
    ran = foldserve(*common, "--output", str(tmp_path / "x.pdb"), "--engine", "openfold3",
                    "--models", "1")  # fmt: skip
    one_line_error(ran, "--models", "an AlphaFold2 option")
    batch = foldserve("submit", "--url", "http://127.0.0.1:9", "--msa-dir", str(tmp_path),
                      "--out-dir", str(tmp_path / "out"), "--engine", "openfold3",
                      "--models", "1")  # fmt: skip
    one_line_error(batch, "--models", "an AlphaFold2 option")


# --- serve and the RunPod worker: settings and weights ------------------------------------


def test_serve_and_runpod_read_their_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLDSERVE_ENGINES", "openfold3, alphafold2,openfold3")
    assert ServeSettings().engines == ("openfold3", "alphafold2")
    assert RunpodSettings.load().engines == ("openfold3", "alphafold2")
    monkeypatch.setenv("FOLDSERVE_ENGINES", "of3")
    with pytest.raises(InputError, match="FOLDSERVE_ENGINES: unknown engine 'of3'"):
        RunpodSettings.load()
    with pytest.raises(InputError, match="FOLDSERVE_ENGINES: input should be 'alphafold2'"):
        ServeSettings.load({}, {})
    one_line_error(foldserve("serve", "--engines", "rosetta"), "--engines", "unknown engine")


def test_a_runpod_worker_fetches_the_openfold3_checkpoint_into_its_volume_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint = tmp_path / "of3.pt"
    checkpoint.write_bytes(b"not a real checkpoint: fetching does not read it")
    volume = tmp_path / "volume"
    monkeypatch.setenv("PARAM_DIR", str(volume))
    monkeypatch.setenv("FOLDSERVE_ENGINES", "openfold3")
    monkeypatch.setenv("FOLDSERVE_OPENFOLD3_URL", str(checkpoint))
    settings = RunpodSettings.load()
    with caplog.at_level(logging.INFO, logger="foldserve.runpod"):
        prepare_weights(settings)
        prepare_weights(settings)
    installed = installed_checkpoint(volume)
    assert installed is not None and installed.read_bytes() == checkpoint.read_bytes()
    assert "installed" in caplog.text and "OpenFold3 checkpoint found" in caplog.text
    assert not (volume / "params").exists()  # no AlphaFold2 weights for an OpenFold3 worker


# --- foldserve weights --engine openfold3 ------------------------------------------------


def test_weights_fetch_and_check_the_openfold3_checkpoint(tmp_path: Path) -> None:
    checkpoint = tmp_path / "of3.pt"
    checkpoint.write_bytes(b"0123456789" * 100)
    params = tmp_path / "params"
    missing = foldserve("weights", "check", "--engine", "openfold3", "--params-dir", str(params))
    assert missing.exit_code == 1 and "weights fetch --engine openfold3" in missing.stdout
    fetched = foldserve(
        "weights", "fetch", "--engine", "openfold3", "--params-dir", str(params),
        "--source", str(checkpoint), "--size", "1000",
    )  # fmt: skip
    assert fetched.exit_code == 0, fetched.stderr
    assert f"installed: {params / 'openfold3'}" in fetched.stderr
    checked = foldserve(
        "weights", "check", "--engine", "openfold3", "--params-dir", str(params), "--json"
    )
    report = json.loads(checked.stdout)["openfold3"]
    assert checked.exit_code == 0 and report["ok"] and report["verified"] is True
    assert report["bytes"] == 1000 and not report["test_weights"]
    # Beside AlphaFold2's report, the checkpoint is reported (and counted) when present.
    installed = installed_checkpoint(params)
    assert installed is not None
    installed.write_bytes(b"x" * 1000)
    damaged = foldserve("weights", "check", "--params-dir", str(params))
    assert damaged.exit_code == 1 and "OpenFold3 checkpoint" in damaged.stdout
    assert "MISMATCH" in damaged.stdout


def test_weights_make_test_for_openfold3_refuses_alphafold2s_flags(tmp_path: Path) -> None:
    for flag in (("--blocks", "2"), ("--multimer",)):
        ran = foldserve(
            "weights", "make-test", "--engine", "openfold3", "--out", str(tmp_path), *flag
        )
        one_line_error(ran, flag[0], "an AlphaFold2 option")


# --- one real OpenFold3 job through foldserve serve ---------------------------------------


@pytest.fixture(scope="module")
def openfold3_server(
    tmp_path_factory: pytest.TempPathFactory, openfold3_params: Path
) -> Iterator[Server]:
    """``foldserve serve --engines openfold3``: one worker, OpenFold3 warm, no AlphaFold2
    weights at all."""
    data_dir = tmp_path_factory.mktemp("openfold3-server") / "data"
    with running_server(data_dir, openfold3_params, "--engines", "openfold3") as running:
        yield running


def test_a_job_for_an_engine_the_server_does_not_serve_is_refused_at_run(
    openfold3_server: Server,
) -> None:
    answer = openfold3_server.request("POST", "/run", json={"input": {"msa": MSA}})
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(
        "input.engine: alphafold2 is not served here (this worker runs openfold3)"
    )


@pytest.mark.timeout(600)
def test_an_openfold3_job_through_serve_and_submit(
    openfold3_server: Server, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env = {
        "FOLDSERVE_API_KEY": API_KEY,
        "FOLDSERVE_STATE_DIR": str(state),
        "FOLDSERVE_CONFIG": str(state / "no-config.toml"),
    }
    best = tmp_path / "best.pdb"
    ran = foldserve(
        "submit", "--url", openfold3_server.root, "--msa", str(data(SMALL_MSA)),
        "--output", str(best), "--engine", "openfold3", "--num-recycles", "0",
        "--num-diffusion-samples", "2", "--seed", "3", "--no-plots",
        env=env,
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    assert "ranking (openfold3)" in ran.stderr and "score" in ran.stderr
    assert "weights fetch --engine openfold3" in ran.stderr  # the test-weights warning
    assert best.read_text().count(" CA ") == 62
    found = re.search(r"job (\S+) submitted", ran.stderr)
    assert found is not None
    output = openfold3_server.status(found.group(1))["output"]
    assert (output["engine"], output["network"], output["model_type"], output["rank_by"]) == (
        "openfold3", "openfold3", "openfold3", "engine",
    )  # fmt: skip
    # OpenFold3 read the query and the MSA's 4 distinct rows (it drops the 2 duplicates).
    assert output["test_weights"] is True and output["msa"] == {"depth": 6, "used": 5}
    # Best first by OpenFold3's own score (rounded in the output, so ties keep either order).
    ranking = output["ranking"]
    assert sorted((entry["model"], entry["seed"]) for entry in ranking) == [
        ("openfold3_sample_1", 3),
        ("openfold3_sample_2", 3),
    ]
    ranking_scores = [entry["ranking_score"] for entry in ranking]
    assert ranking_scores == sorted(ranking_scores, reverse=True)
    # Every JSON of the prediction says which engine made it.
    folder = tmp_path / "best_prediction"
    scores = json.loads((folder / "scores.json").read_text())
    assert {line["engine"] for line in scores} == {"openfold3"}
    assert json.loads((folder / "ranking_debug.json").read_text())["engine"] == "openfold3"
