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
from foldserve.fold.predictor import Predictor
from foldserve.jobs.run import run_fold_job
from foldserve.jobs.schema import (
    JobOutput,
    JobProgress,
    JobState,
    JobStatus,
    job_schema,
    job_schema_text,
    parse_job_input,
)
from tests.conftest import data
from tests.serving import SMALL_MSA, small_job

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
    # The keys the output has always had, and version 2's model type and ranking metric
    # (``auto`` resolved); nothing absent is sent as null (no ipTM, chains or templates here).
    assert list(wire) == [
        "foldserve_version", "engine", "model_type", "rank_by", "test_weights", "query", "msa",
        "ranking", "files", "timings",
    ]  # fmt: skip
    assert (wire["engine"], wire["model_type"], wire["rank_by"]) == (
        "alphafold2_ptm", "monomer_ptm", "plddt",
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
