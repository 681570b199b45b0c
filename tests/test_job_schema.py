"""The job contract: ``docs/job-schema.json`` is current, a real job's output and progress follow
the models and the published schema, and the JSON on the wire is what it has always been."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from foldserve.cli import app
from foldserve.errors import RemoteError
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.jobs.run import run_fold_job
from foldserve.jobs.schema import (
    JobOutput,
    JobProgress,
    JobState,
    JobStatus,
    job_schema,
    job_schema_text,
    parse_job_input,
    parse_run_request,
)
from tests.conftest import data
from tests.serving import SMALL_MSA, small_job

pytestmark = pytest.mark.timeout(120)

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "job-schema.json"
REGENERATE = "foldserve jobs schema > docs/job-schema.json"
#: As in test_submit_e2e: the best model inline, some other files by URL.
INLINE_LIMIT = 100_000


def test_the_published_schema_is_current() -> None:
    assert SCHEMA_FILE.is_file(), f"docs/job-schema.json is missing; write it with: {REGENERATE}"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == job_schema_text(), (
        f"docs/job-schema.json is out of date; regenerate it with: {REGENERATE}"
    )


def test_the_command_prints_a_valid_json_schema() -> None:
    printed = CliRunner().invoke(app, ["jobs", "schema"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == job_schema_text()
    jsonschema.Draft202012Validator.check_schema(job_schema())


def check(part: str, value: Any) -> None:
    """Validate ``value`` against ``run_request``, ``output`` or ``progress`` of the schema."""
    jsonschema.Draft202012Validator({**job_schema(), "$ref": f"#/{part}"}).validate(value)


@dataclass(frozen=True)
class RanJob:
    output: JobOutput
    progress: list[JobProgress]


@pytest.fixture(scope="module")
def ran(predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> RanJob:
    """A real job on test weights, as the self-hosted worker runs it."""
    reported: list[JobProgress] = []
    job_input = parse_job_input(small_job(data(SMALL_MSA), models=[1, 2], num_recycles=1))
    output = run_fold_job(
        job_input,
        predictor,
        tmp_path_factory.mktemp("job"),
        progress=reported.append,
        inline_limit=INLINE_LIMIT,
        url_for=lambda name, _path: f"/v2/local/results/job-1/{name}",
    )
    return RanJob(output, reported)


def test_a_real_output_follows_the_model_and_the_schema(ran: RanJob) -> None:
    wire = ran.output.to_wire()
    check("output", wire)
    assert JobOutput.model_validate(json.loads(json.dumps(wire))) == ran.output
    # The keys the output has always had (``engine`` now names the engine), and version 2's
    # network, model type and ranking metric (``auto`` resolved); nothing absent is sent as
    # null (no ipTM, ranking score, chains or templates here).
    assert list(wire) == [
        "foldserve_version", "engine", "network", "model_type", "rank_by", "test_weights",
        "query", "msa", "ranking", "files", "timings",
    ]  # fmt: skip
    assert (wire["engine"], wire["network"], wire["model_type"], wire["rank_by"]) == (
        "alphafold2", "alphafold2_ptm", "monomer_ptm", "plddt",
    )  # fmt: skip
    assert list(wire["query"]) == ["name", "length", "sequence"]
    assert wire["test_weights"] is True and wire["query"]["length"] == 62
    assert wire["msa"] == {"depth": 6, "used": 6}
    assert [set(entry) for entry in wire["ranking"]] == [
        {"rank", "model", "seed", "mean_plddt", "ptm", "max_pae", "recycles"}
    ] * 2
    kinds = {name: tuple(sorted(entry)) for name, entry in wire["files"].items()}
    assert kinds["ranked_0.pdb"] == ("data", "sha256")
    assert set(kinds.values()) == {("data", "sha256"), ("bytes", "sha256", "url")}


def test_real_progress_follows_the_model_and_the_schema(ran: RanJob) -> None:
    events = [event.to_wire() for event in ran.progress]
    for event in events:
        check("progress", event)
    assert events[0] == {"stage": "parse", "elapsed": 0.0}
    assert events[-1]["stage"] == "write"
    predicting = [event for event in events if event["stage"] == "predict"]
    assert predicting and all(
        {"model", "seed", "recycle", "num_recycles", "run", "runs", "mean_plddt", "ptm"}
        <= set(event)
        for event in predicting
    )
    assert {event["run"] for event in predicting} == {1, 2}


def test_a_run_request_follows_the_schema() -> None:
    check("run_request", {"input": small_job(data(SMALL_MSA)), "policy": {"ttl": 60_000}})
    with pytest.raises(jsonschema.ValidationError, match="unknown"):
        check("run_request", {"input": {"msa": ">q\nM\n", "unknown": 1}})


def test_a_client_reads_the_output_and_the_progress_by_status(ran: RanJob) -> None:
    completed = JobState.from_json(
        {"id": "job-1", "status": "COMPLETED", "output": ran.output.to_wire(), "extra": 1}, "job-1"
    )
    assert completed.completed_output() == ran.output and completed.progress is None
    running = JobState.from_json(
        {"id": "job-1", "status": "IN_PROGRESS", "output": {"stage": "predict", "new": 1}},
        "job-1",
    )
    assert running.progress == JobProgress(stage="predict")


def test_an_output_that_breaks_the_contract_is_one_remote_error() -> None:
    body = {"id": "job-1", "status": "COMPLETED", "output": {"ranking": "best"}}
    with pytest.raises(RemoteError, match=r"job job-1: .*output\.") as caught:
        JobState.from_json(body, "job-1")
    assert "foldserve jobs schema" in (caught.value.fix or "")
    queued = JobState.from_json({"id": "job-1", "status": "IN_QUEUE"}, "job-1")
    assert queued.status is JobStatus.IN_QUEUE and queued.output is None


def test_a_version_2_request_follows_the_schema() -> None:
    complex_job = {
        "engine": "alphafold2",
        "chains": [
            {"id": "RelB", "msa": ">101\nMKV\n", "msa_format": "a3m", "copies": 2},
            {"msa_url": "https://example.org/relE.sto"},
        ],
        "paired_msa": {"msa_gz_b64": "H4sIAAAAAAAAA+NiAAAvWLSyAwAAAA=="},
        "model_type": "multimer",
        "num_predictions_per_model": 2,
        "rank_by": "multimer",
        "templates": [{"name": "1abc.cif", "data": "data_1abc\n"}],
        "max_template_date": "2021-11-01",
    }
    check("run_request", {"input": complex_job})
    parse_run_request({"input": complex_job})
    for bad in ({"copies": 0}, {"msa": ">q\nM\n", "unknown": 1}):
        with pytest.raises(jsonschema.ValidationError):
            check("run_request", {"input": {"chains": [{"msa": ">q\nM\n", **bad}]}})


def test_a_complex_output_follows_the_model_and_the_schema(tmp_path: Path) -> None:
    """A complex's output, from a hand-made multimer prediction of hemoglobin's 2 x 2 chains
    (tests/complex_prediction.py) written as a job writes it."""
    from foldserve.fold.outputs import write_prediction
    from foldserve.jobs.output import build_output
    from tests.complex_prediction import hemoglobin_prediction

    prediction = hemoglobin_prediction(test_weights=True)
    files = write_prediction(prediction, tmp_path)
    output = build_output(
        prediction, files, ["pdb", "scores"], timings={"total": 1.0}, chain_names=("HBA", None)
    )
    wire = output.to_wire()
    check("output", wire)
    assert JobOutput.model_validate(json.loads(json.dumps(wire))) == output
    assert (wire["engine"], wire["network"], wire["model_type"], wire["rank_by"]) == (
        "alphafold2", "alphafold2_multimer_v3", "multimer", "multimer",
    )  # fmt: skip
    chains = wire["query"]["chains"]
    assert [(c["id"], c["entity"], c["length"], c.get("name")) for c in chains] == [
        ("A", 1, 141, "HBA"), ("B", 1, 141, "HBA"), ("C", 2, 146, None), ("D", 2, 146, None),
    ]  # fmt: skip
    best = wire["ranking"][0]
    assert list(best) == [
        "rank", "model", "seed", "mean_plddt", "ptm", "iptm", "ranking_confidence", "max_pae",
        "recycles",
    ]  # fmt: skip
    assert best["ranking_confidence"] == pytest.approx(0.8 * best["iptm"] + 0.2 * best["ptm"])
    assert wire["templates"] == {"A": ["1a00_A"], "C": []}


def test_progress_of_a_multimer_run_carries_its_iptm() -> None:
    from foldserve.fold.results import ProgressEvent

    event = ProgressEvent(
        stage="predict", elapsed=1.04, model="model_1_multimer_v3", seed=0, recycle=1,
        num_recycles=3, run_index=0, num_runs=2, mean_plddt=70.123, ptm=0.61234, iptm=0.51234,
    )  # fmt: skip
    wire = JobProgress.from_event(event).to_wire()
    check("progress", wire)
    assert (wire["ptm"], wire["iptm"]) == (0.6123, 0.5123)
    check("progress", JobProgress(stage="templates", elapsed=0.5).to_wire())
