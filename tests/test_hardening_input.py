"""Issue 12: everything decidable at submission is decided at ``/run``, and no body is a 500.

Each test here failed on the code before the fix: strict job input (no ``"3"``, ``true``, NaN),
the seed range JAX takes, JSON field paths, JSON nested 100,000 deep, lone surrogates, numbers
Python will not read, the MSA's rows and query length capped as it is read, row names in any
Unicode (PDB and mmCIF escape them; A3M and JSON keep them), sizes printed right, no ``error``
on a queued job, and no server path in a job's error.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from foldserve.errors import InputError, TooLarge
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.outputs import write_prediction
from foldserve.fold.results import PredictOptions
from foldserve.jobs.failures import crash_message
from foldserve.jobs.payload import inflate, pack_msa, unpack_msa
from foldserve.jobs.schema import JobStatus, Policy, parse_job_input, parse_run_request
from foldserve.msa.reading import read
from foldserve.server.status import status_body
from foldserve.server.store import JobStore
from tests.cli_runner import foldserve
from tests.conftest import data
from tests.serving import API_KEY, SMALL_MSA, Server, running_server

#: Row names no PDB or mmCIF file can hold: a snowman and a right-to-left override.
UNICODE_NAMES = ("\u2603", "\u202e\u2603 reversed")
#: The server's caps, by flag: the 6-row, 62-residue test MSA fits.
MAX_ROWS = 1000
MAX_LENGTH = 500


def small_input(**fields: Any) -> dict[str, Any]:
    return {"msa": data(SMALL_MSA).read_text(), "models": [1], "num_recycles": 0, **fields}


def renamed_query(name: str) -> str:
    """The small real MSA with its query (first record) renamed ``name``."""
    text = data(SMALL_MSA).read_text()
    header = next(line for line in text.splitlines() if line.startswith(">"))
    return text.replace(header, f">{name}", 1)


def gz_b64(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


def where_of(payload: dict[str, Any]) -> str:
    with pytest.raises(InputError) as caught:
        parse_job_input(payload)
    return str(caught.value.where)


# -- strict job input ------------------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_recycles", "3"),
        ("num_recycles", True),
        ("num_recycles", 3.0),
        ("seed", "0"),
        ("num_seeds", "2"),
        ("recycle_early_stop_tolerance", float("nan")),
        ("recycle_early_stop_tolerance", float("inf")),
        ("recycle_early_stop_tolerance", "0.5"),
    ],
)
def test_numbers_are_strict(field: str, value: Any) -> None:
    assert where_of(small_input(**{field: value})) == f"input.{field}"


@pytest.mark.timeout(30)
def test_policy_numbers_are_strict() -> None:
    with pytest.raises(InputError, match=r"^policy\.executionTimeout: .*whole number"):
        parse_run_request({"input": small_input(), "policy": {"executionTimeout": "600000"}})
    assert Policy(executionTimeout=1000).executionTimeout == 1000


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"seed": 2**70}, "at most 4294967295"),
        ({"seed": -1}, "0 or more"),
        ({"seed": 2**32 - 1, "num_seeds": 2}, r"outside 0\.\.4294967295"),
        ({"num_recycles": 49}, "at most 48"),
        ({"num_seeds": 1001}, "at most 1000"),
    ],
)
def test_seed_and_counts_are_within_what_the_engine_takes(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message) as caught:
        parse_job_input(small_input(**fields))
    assert str(caught.value.where).startswith("input.")
    assert parse_job_input(small_input(seed=2**32 - 2, num_seeds=2)).seed == 2**32 - 2
    with pytest.raises(InputError, match=r"outside 0\.\.4294967295"):
        PredictOptions(seed=2**70)


@pytest.mark.timeout(30)
def test_errors_name_the_json_path() -> None:
    assert where_of(small_input(models=["1"])) == "input.models[0]"
    assert where_of(small_input(outputs=["pdb", "png"])) == "input.outputs[1]"
    with pytest.raises(InputError) as caught:
        parse_run_request({"input": small_input(), "\u202e": 1})
    assert caught.value.where == "'\\u202e'"


@pytest.mark.timeout(30)
def test_a_missing_model_names_input_models_and_no_path(predictor: Predictor) -> None:
    with pytest.raises(InputError) as caught:
        predictor.check_models((1, 9), where="input.models")
    assert caught.value.where == "input.models"
    assert "/" not in caught.value.one_line().split("Fix:")[0]


@pytest.mark.timeout(30)
def test_a_lone_surrogate_names_its_field() -> None:
    with pytest.raises(InputError, match="lone surrogate U\\+D800") as caught:
        parse_run_request(json.loads('{"input": {"msa": "\\ud800"}}'))
    assert caught.value.where == "input.msa"
    with pytest.raises(InputError) as caught:
        parse_run_request({"input": small_input(query="q\udfff")})
    assert caught.value.where == "input.query"


@pytest.mark.parametrize("packed", ["§\U000fcfed\x0fÊ", "H4sI!!!!", "é"])
def test_base64_that_is_not_base64_is_one_error_not_a_crash(packed: str) -> None:
    """Found by schemathesis: characters outside ASCII made base64 raise ValueError (a 500)."""
    with pytest.raises(InputError) as caught:
        unpack_msa(parse_job_input({"msa_gz_b64": packed}))
    assert caught.value.where == "input.msa_gz_b64" and "not valid base64" in caught.value.problem


# -- MSA limits at submission ----------------------------------------------------------------
@pytest.mark.timeout(60)
def test_rows_past_the_cap_stop_the_reading() -> None:
    """A 1,000,905-row MSA (300 KB packed) is refused at the cap, in well under its full cost."""
    packed = gz_b64(">q\nMKV\n" + ">h\nMKV\n" * 1_000_904)
    assert len(packed) < 300_000
    job_input = parse_job_input({"msa_gz_b64": packed})
    started = time.perf_counter()
    with pytest.raises(TooLarge, match="more than 100,000 rows") as caught:
        unpack_msa(job_input)
    assert time.perf_counter() - started < 4.0
    assert caught.value.where == "input.msa_gz_b64"
    assert "foldserve msa filter --max-seqs" in str(caught.value.fix)


@pytest.mark.timeout(30)
def test_a_query_past_the_longest_is_refused_when_read() -> None:
    job_input = parse_job_input({"msa": ">long\n" + "ACDEFGHIKL" * 2000 + "\n"})
    with pytest.raises(TooLarge, match="20,000 residues, more than the 6,000") as caught:
        unpack_msa(job_input)
    assert caught.value.where == "input.msa"


@pytest.mark.timeout(30)
def test_sizes_are_printed_in_the_units_of_the_limit() -> None:
    with pytest.raises(TooLarge, match="more than 10 MB"):
        inflate(gzip.compress(b"x" * 10_000_001), limit=10_000_000, where="body")


# -- row names in any Unicode ----------------------------------------------------------------
@pytest.mark.timeout(300)
def test_unicode_row_names_through_the_python_api(predictor: Predictor, tmp_path: Path) -> None:
    """PDB and mmCIF escape what they cannot hold (the MSA file's name here); the A3M and the
    JSON keep the names."""
    name = UNICODE_NAMES[1]
    source = tmp_path / f"{name}.a3m"
    source.write_text(renamed_query(name), encoding="utf-8")
    msa = read(source)
    assert msa.query_name == UNICODE_NAMES[1].split()[0]
    prediction = predictor.predict(msa, PredictOptions(models=(1,), num_recycles=0))
    files = write_prediction(prediction, tmp_path / "out")
    for kind in ("ranked_0.pdb", "ranked_0.cif"):
        text = files[kind].read_bytes().decode("ascii")
        assert "\\u202e\\u2603" in text
    assert files["msa.a3m"].read_text(encoding="utf-8").startswith(f">{msa.query_name}")
    assert read(io.BytesIO(base64.b64decode(pack_msa(msa)))).query_name == msa.query_name


# -- status and errors -----------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_a_requeued_job_shows_no_error(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    job = store.submit(parse_job_input(small_input()), Policy(), None)
    claimed = store.claim("worker-0")
    assert claimed is not None
    store.requeue_or_fail(job.id, "the worker died")
    queued = store.get(job.id)
    assert queued is not None and queued.status == JobStatus.IN_QUEUE
    assert "error" not in status_body(queued, "http://127.0.0.1")
    running = store.claim("worker-0")
    assert running is not None
    assert "error" not in status_body(running, "http://127.0.0.1")
    store.finish(running, JobStatus.FAILED, error="input.msa: bad")
    failed = store.get(job.id)
    assert failed is not None
    assert status_body(failed, "http://127.0.0.1")["error"] == "input.msa: bad"


@pytest.mark.timeout(30)
def test_a_crash_message_holds_no_server_path() -> None:
    crash = FileNotFoundError(2, "No such file", "/srv/weights/params/params_model_2_ptm.npz")
    message = crash_message(crash, "it was restarted")
    assert "/srv" not in message and "params_model_2_ptm.npz" in message
    url = crash_message(RuntimeError("https://example.org/a/b failed"), "restarted")
    assert "https://example.org/a/b" in url


# -- the endpoint ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, test_params: Path) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("hardening") / "data"
    caps = ("--max-msa-rows", str(MAX_ROWS), "--max-query-length", str(MAX_LENGTH))
    with running_server(data_dir, test_params, *caps) as running:
        yield running


def refused(server: Server, body: bytes | dict[str, Any]) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server.request("POST", "/run", content=content)


@pytest.mark.timeout(120)
def test_deep_json_is_a_400_and_the_connection_answers_on(server: Server) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=60) as client:
        deep = client.post("/run", content=b"[" * 100_000 + b"]" * 100_000)
        assert deep.status_code == 400, deep.text
        assert deep.json()["field"] == "body"
        assert "nested too deeply" in deep.json()["error"]
        assert client.get("/health").status_code == 200


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (b'{"input": {"msa": "\\ud800"}}', "input.msa", "lone surrogate"),
        (b'{"input": {"msa": ">q\\nAC\\n", "seed": 1' + b"0" * 5000 + b"}}", "body", "4300"),
        (b'{"input": {"msa": ">q\\nAC\\n", "num_recycles": "3"}}', "input.num_recycles", "integer"),
        (b'{"input": {"msa": ">q\\nAC\\n", "seed": NaN}}', "input.seed", "integer"),
        (b"\xff\xfe{}", "body", "not valid JSON"),
    ],
)
def test_bad_bodies_are_400(server: Server, body: bytes, field: str, message: str) -> None:
    response = refused(server, body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field and message in response.json()["error"]


@pytest.mark.timeout(120)
def test_seed_too_large_is_refused_at_run(server: Server) -> None:
    response = refused(server, {"input": small_input(seed=2**70)})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "input.seed"


@pytest.mark.timeout(120)
def test_the_caps_are_the_servers_flags(server: Server) -> None:
    query = "ACDEFGHIKL" * 6
    rows = gz_b64(f">q\n{query}\n" * (MAX_ROWS + 1))
    deep = refused(server, {"input": {"msa_gz_b64": rows}})
    assert deep.status_code == 413, deep.text
    assert deep.json()["field"] == "input.msa_gz_b64"
    assert "more than 1,000 rows" in deep.json()["error"]
    assert "foldserve msa filter --max-seqs" in deep.json()["error"]
    long = refused(server, {"input": {"msa": ">q\n" + "ACDEFGHIKL" * 2000 + "\n"}})
    assert long.status_code == 413, long.text
    assert "20,000 residues, more than the 500" in long.json()["error"]


@pytest.mark.timeout(300)
def test_submit_of_a_unicode_named_msa_runs_to_the_end(server: Server, tmp_path: Path) -> None:
    """``foldserve submit`` sends the names (UTF-8); the worker writes its files and lives."""
    msa = tmp_path / "snow.a3m"
    msa.write_text(renamed_query(UNICODE_NAMES[0]), encoding="utf-8")
    best = tmp_path / "best.pdb"
    args = ("--msa", str(msa), "--url", server.root, "--output", str(best), "--models", "1")
    ran = foldserve("submit", *args, "--num-recycles", "0", env={"FOLDSERVE_API_KEY": API_KEY})
    assert ran.exit_code == 0, ran.stderr
    best.read_bytes().decode("ascii")
    job_id = json.loads(server.request("GET", "/health").text)["jobs"]
    assert job_id["failed"] == 0 and job_id["completed"] >= 1
